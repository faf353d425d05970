package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
)

// run executes cmd against the daemon and prints the result to w.
func run(ctx context.Context, cmd command, w io.Writer) error {
	if cmd.op == "version" {
		fmt.Fprintf(w, "tcpcryptctl %s (control protocol %d)\n", version, ctl.ProtocolVersion)
	}
	c, err := ctl.Dial(ctx, cmd.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	switch cmd.op {
	case "version":
		v, err := c.Version(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "tcpcryptd %s (control protocol %d)\n", v.Daemon, v.Protocol)
		return nil
	case "status":
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if cmd.json {
			return writeJSON(w, st)
		}
		return writeStatus(w, st, cmd.all)
	case "sessid":
		// The client's error names the connection already.
		conn, err := c.SessionIDFor(ctx, cmd.local, cmd.remote)
		if err != nil {
			return err // the daemon's message names the connection
		}
		if cmd.json {
			return writeJSON(w, conn)
		}
		_, err = fmt.Fprintf(w, "%s %s\n", conn.SessionID, conn.Role)
		return err
	case "flush-cache":
		n, err := c.FlushCache(ctx, cmd.local, cmd.remote)
		if err != nil {
			return err // the daemon's message names the connection
		}
		_, err = fmt.Fprintf(w, "flushed %d %s -> %s\n", n, cmd.local, cmd.remote)
		return err
	case "rules.list":
		rules, err := c.Rules(ctx)
		if err != nil {
			return err
		}
		if cmd.ports {
			return writePorts(w, rules)
		}
		if cmd.json {
			if rules == nil {
				rules = []ctl.Rule{}
			}
			return writeJSON(w, rules)
		}
		return writeRules(w, rules)
	case "rules.add":
		if err := c.AddRule(ctx, cmd.rule); err != nil {
			// Adding a rule that is already in force, exactly, succeeds
			// (scripts need not parse the message); an overlapping but
			// different rule is still refused.
			if errors.Is(err, ctl.ErrBadRequest) && ruleExists(ctx, c, cmd.rule) {
				_, err := fmt.Fprintf(w, "exists %s (already in force; nothing changed)\n", cmd.rule)
				return err
			}
			return err
		}
		_, err := fmt.Fprintf(w, "added %s\n", cmd.rule)
		return err
	case "rules.del":
		if err := c.DelRule(ctx, cmd.rule); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "deleted %s\n", cmd.rule)
		return err
	}
	return usagef("unknown command %q", cmd.op)
}

// ruleExists reports whether the daemon lists a rule equal to r in port,
// side, prefix, mode and options.
func ruleExists(ctx context.Context, c *ctl.Client, r ctl.Rule) bool {
	list, err := c.Rules(ctx)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(list, r.Equal)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writePorts prints the distinct ports of rules, one a line, in order.
func writePorts(w io.Writer, rules []ctl.Rule) error {
	ports := make([]uint16, 0, len(rules))
	for _, r := range rules {
		ports = append(ports, r.Port)
	}
	slices.Sort(ports)
	for _, p := range slices.Compact(ports) {
		if _, err := fmt.Fprintln(w, p); err != nil {
			return err
		}
	}
	return nil
}

// writeRules prints the rules as a table. The OPTIONS column appears only
// when some rule has options, so the output of a list without any is as
// before options existed.
func writeRules(w io.Writer, rules []ctl.Rule) error {
	withOpts := slices.ContainsFunc(rules, func(r ctl.Rule) bool { return len(r.Options) > 0 })
	withSource := slices.ContainsFunc(rules, func(r ctl.Rule) bool { return r.Source != "" })
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprint(tw, "PORT\tSIDE\tPREFIX\tMODE")
	if withOpts {
		fmt.Fprint(tw, "\tOPTIONS")
	}
	if withSource {
		fmt.Fprint(tw, "\tSOURCE")
	}
	fmt.Fprintln(tw)
	for _, r := range rules {
		prefix := "-"
		if r.Prefix.IsValid() {
			prefix = r.Prefix.String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s", r.Port, r.Side, prefix, r.Mode)
		if withOpts {
			opts := "-"
			if len(r.Options) > 0 {
				names := make([]string, len(r.Options))
				for i, o := range r.Options {
					names[i] = string(o)
				}
				opts = strings.Join(names, ",")
			}
			fmt.Fprintf(tw, "\t%s", opts)
		}
		if withSource {
			fmt.Fprintf(tw, "\t%s", cmp.Or(r.Source, "-"))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// writeStatus prints st for a person: the counters that are not zero, or
// all of them with all, and how many zeros were left out.
func writeStatus(w io.Writer, st ctl.Status, all bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	queues := make([]string, len(st.Queues))
	for i, q := range st.Queues {
		queues[i] = fmt.Sprint(q)
	}
	check := st.StartupCheck.Result
	if check == "" {
		check = "-"
	}
	if st.StartupCheck.Detail != "" {
		check += " (" + st.StartupCheck.Detail + ")"
	}
	failOpen := "no (covered traffic is dropped while the daemon is down)"
	if st.FailOpen {
		failOpen = "yes (covered traffic passes in plain text while the daemon is down)"
	}
	fmt.Fprintf(tw, "version:\t%s\n", st.Version)
	fmt.Fprintf(tw, "uptime:\t%s\n", time.Duration(st.UptimeSeconds*float64(time.Second)).Round(time.Second))
	q := strings.Join(queues, ",")
	switch st.Balance {
	case "flow":
		q += " (connections spread by flow)"
	case "address":
		q += " (connections spread by address pair: no nftables hash in this kernel)"
	}
	fmt.Fprintf(tw, "queues:\t%s\n", q)
	fmt.Fprintf(tw, "rules:\t%d\n", st.Rules)
	fmt.Fprintf(tw, "connections:\t%d\n", st.Connections)
	fmt.Fprintf(tw, "fail-open:\t%s\n", failOpen)
	fmt.Fprintf(tw, "startup check:\t%s\n", check)
	if err := tw.Flush(); err != nil {
		return err
	}
	names := make([]string, 0, len(st.Counters))
	zeros := 0
	for n, v := range st.Counters {
		if v == 0 && !all {
			zeros++
			continue
		}
		names = append(names, n)
	}
	slices.Sort(names)
	switch {
	case len(names) > 0:
		fmt.Fprintln(w, "counters:")
	case zeros > 0:
		fmt.Fprintln(w, "counters:       all zero")
	}
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%d\n", n, st.Counters[n])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if zeros > 0 && len(names) > 0 {
		fmt.Fprintf(w, "  (%d more are zero; --all shows them)\n", zeros)
	}
	return nil
}
