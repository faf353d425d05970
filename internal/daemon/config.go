package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/nfq"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// ErrUsage matches every error about a setting's value (from a flag or the
// configuration file). The command line turns it into exit status 2.
var ErrUsage = errors.New("bad setting")

// Defaults of settings that are not plain zero values.
const (
	// DefaultStateFile is where rules added at run time are kept.
	DefaultStateFile = "/var/lib/tcpcrypt/rules.json"
	// DefaultCheckPort is the port of a remote check server given without
	// one (-s host). It is the echo port, which tcpcrypt check servers have
	// traditionally used.
	DefaultCheckPort = 7
	// minMemoryLimit is the smallest memory-limit accepted: below it a few
	// connections would fill the budget.
	minMemoryLimit = 1 << 20
)

// Config is everything the daemon is told at start. Its settings have names
// (Keys) shared by the long command-line options and the configuration file;
// Set applies one of them from its text form.
type Config struct {
	// Version is the daemon's version string (not a setting).
	Version string

	// QueueNum and QueueCount are the NFQUEUE numbers (setting "queue":
	// "7463" or "7463-7466"). Each queue has its own engine on its own
	// goroutine. QueueCount 0 (a single number) means Workers queues from
	// QueueNum; Validate fills it in.
	QueueNum, QueueCount uint16
	// Control is the control socket address (setting "control"; see
	// ctl.ParseAddress).
	Control string
	// Verbosity is 0 for warnings and errors, 1 adds info, 2 adds debug
	// (setting "verbose", a number; -v on the command line, repeatable).
	Verbosity int
	// CheckServer is the remote check server, host[:port] (setting
	// "check-server"). It is resolved only when the check runs.
	CheckServer string
	// NoCheck skips the start-up check (setting "no-check").
	NoCheck bool
	// StateFile keeps rules added at run time (setting "state").
	StateFile string
	// Rules are the configured rules (setting "rule", repeatable:
	// PORT[:SIDE][:MODE][@PREFIX]).
	Rules []rules.Policy
	// RulesFrom says where Rules came from: "" or SourceCommandLine for
	// --rule, or the configuration file's path (the command line's --rule
	// replaces the file's rules, so they never mix). See RulesWithSource.
	RulesFrom string
	// Workers is the number of queues, and so of engines, when "queue" is
	// a single number (setting "workers"; 0: one per CPU). With a queue
	// range it must be 0 or the range's length.
	Workers int
	// FailOpen puts the nftables bypass flag on opportunistic rules: while
	// the daemon is not running, covered traffic passes in plaintext instead
	// of being dropped (settings "fail-open" and "fail-closed"). Required
	// rules never bypass.
	FailOpen bool
	// TEPs are the key agreements, most preferred first (setting "teps",
	// comma separated).
	TEPs []uint8
	// AEADs are the frame ciphers, most preferred first (setting "aeads").
	AEADs []crypto.AEADID
	// Resumption enables session resumption with a shared cache (setting
	// "resumption").
	Resumption bool
	// RekeyBytes and RekeyInterval start a rekey after that many bytes or
	// that much time under one key generation; 0 never (settings
	// "rekey-bytes", with an optional K, M or G suffix, and "rekey-interval",
	// a Go duration).
	RekeyBytes    uint64
	RekeyInterval time.Duration
	// Liveness probes an encrypted connection that was idle this long
	// with a rekey the peer must answer (RFC 8548 §3.9); a dead peer's
	// connection is then reset after the retransmissions (setting
	// "liveness", a Go duration; 0 turns probing off).
	Liveness time.Duration
	// MaxFlows bounds the tracked connections over all workers (setting
	// "max-flows"; 0: the engine's default per worker).
	MaxFlows int
	// MemoryLimit is the memory budget, in bytes, for the stream buffers of
	// every connection over all workers (setting "memory-limit", with an
	// optional K, M or G suffix; 0: engine.DefaultMemoryLimit).
	MemoryLimit uint64
	// KeyLog, when set, is a file that receives the session secrets, for
	// debugging with a packet analyser (setting "keylog"). It defeats the
	// encryption for anyone who can read it.
	KeyLog string
	// CheckListen, when set, runs a check server on this address (setting
	// "check-listen", host:port or :port).
	CheckListen string
	// Metrics, when set, serves Prometheus metrics at /metrics on this
	// address (setting "metrics", ip:port or :port).
	Metrics string
	// Pprof adds the Go runtime's profiles (net/http/pprof) under
	// /debug/pprof/ on the Metrics listener (setting "pprof"; needs
	// Metrics).
	Pprof bool
}

// DefaultConfig returns the settings used when nothing is configured.
func DefaultConfig() Config {
	return Config{
		QueueNum:   rules.DefaultQueueNum,
		Control:    ctl.DefaultAddress,
		StateFile:  DefaultStateFile,
		FailOpen:   true,
		Resumption: true,
		Liveness:   DefaultLiveness,
	}
}

// DefaultLiveness is how long an encrypted connection may be idle before
// it is probed: well inside the engine's 2-hour idle timeout, so a live
// idle connection is never aborted for idleness, and inside common NAT and
// firewall idle timeouts.
const DefaultLiveness = 10 * time.Minute

// Keys lists the setting names, in the order the documentation gives them.
var Keys = []string{
	"queue", "control", "verbose", "check-server", "no-check", "state", "rule",
	"workers", "fail-open", "fail-closed", "teps", "aeads", "resumption",
	"rekey-bytes", "rekey-interval", "liveness", "max-flows", "memory-limit", "keylog", "check-listen", "metrics",
	"pprof",
}

// Set applies setting key from its text form. "rule" appends; every other
// key replaces. Errors wrap ErrUsage.
func (c *Config) Set(key, value string) error {
	value = strings.TrimSpace(value)
	bad := func(err error) error { return fmt.Errorf("%w: %s %q: %w", ErrUsage, key, value, err) }
	var err error
	switch key {
	case "queue":
		var n, cnt uint16
		n, cnt, err = nfq.ParseQueueRange(value)
		if err == nil {
			if !strings.ContainsAny(value, "-:") {
				cnt = 0 // one number: the first of Workers queues
			}
			c.QueueNum, c.QueueCount = n, cnt
		}
	case "control":
		_, err = ctl.ParseAddress(value)
		if err == nil {
			c.Control = value
		}
	case "verbose":
		var n int
		n, err = strconv.Atoi(value)
		if err == nil && (n < 0 || n > 3) {
			err = errors.New("want 0..3")
		}
		c.Verbosity = n
	case "check-server":
		_, _, err = SplitCheckServer(value)
		c.CheckServer = value
	case "no-check":
		c.NoCheck, err = parseBool(value)
	case "state":
		if value == "" {
			err = errors.New("empty path")
		}
		c.StateFile = value
	case "rule":
		// ParseRule's errors name the rule and wrap ErrUsage already.
		p, err := ParseRule(value)
		if err != nil {
			return err
		}
		c.Rules = append(c.Rules, p)
	case "workers":
		c.Workers, err = parseCount(value, 1024)
	case "fail-open", "fail-closed":
		var b bool
		b, err = parseBool(value)
		c.FailOpen = b == (key == "fail-open")
	case "teps":
		c.TEPs, err = ParseTEPs(value)
	case "aeads":
		c.AEADs, err = ParseAEADs(value)
	case "resumption":
		c.Resumption, err = parseBool(value)
	case "rekey-bytes":
		c.RekeyBytes, err = parseSize(value)
	case "rekey-interval":
		c.RekeyInterval, err = parseDuration(value)
	case "liveness":
		c.Liveness, err = parseDuration(value)
	case "max-flows":
		c.MaxFlows, err = parseCount(value, 1<<24)
	case "memory-limit":
		c.MemoryLimit, err = parseSize(value)
		if err == nil && c.MemoryLimit < minMemoryLimit {
			err = fmt.Errorf("want at least %d bytes (1M)", minMemoryLimit)
		}
	case "keylog":
		c.KeyLog = value
	case "check-listen":
		if value != "" {
			_, err = netip.ParseAddrPort(normalizeListen(value))
		}
		c.CheckListen = value
	case "metrics":
		if value != "" {
			var ap netip.AddrPort
			ap, err = netip.ParseAddrPort(normalizeListen(value))
			if err == nil && ap.Port() == 0 {
				err = errors.New("want ip:port or :port with a port 1..65535")
			}
		}
		c.Metrics = value
	case "pprof":
		c.Pprof, err = parseBool(value)
	default:
		return fmt.Errorf("%w: unknown setting %q", ErrUsage, key)
	}
	if err != nil {
		return bad(err)
	}
	return nil
}

// Validate checks the settings together.
func (c *Config) Validate() error {
	switch w := c.workers(); {
	case c.QueueCount == 0:
		c.QueueCount = uint16(min(w, 0x10000-int(c.QueueNum)))
	case c.Workers > 0 && c.Workers != int(c.QueueCount):
		return fmt.Errorf("%w: workers %d does not match the %d queues of queue %d-%d (one engine per queue)",
			ErrUsage, c.Workers, c.QueueCount, c.QueueNum, int(c.QueueNum)+int(c.QueueCount)-1)
	}
	if _, err := rules.Normalize(c.Rules); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if c.StateFile == "" {
		return fmt.Errorf("%w: state: empty path", ErrUsage)
	}
	if c.Pprof && c.Metrics == "" {
		return fmt.Errorf("%w: pprof: needs a metrics address", ErrUsage)
	}
	return nil
}

// workers is the number of engines asked for: Workers, or one per CPU.
func (c *Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// queues lists the queue numbers.
func (c *Config) queues() []uint16 {
	out := make([]uint16, 0, c.QueueCount)
	for i := range c.QueueCount {
		out = append(out, c.QueueNum+i)
	}
	return out
}

// ParseRule parses PORT[:SIDE][:MODE][+OPTION]...[@PREFIX], e.g. "443",
// "443:remote:required", "25:both:exclude@10.0.0.0/8",
// "443:required+noresume+appaware@10.0.0.0/8". SIDE is local (the
// default), remote or both; MODE is opportunistic (the default), required or
// exclude. SIDE and MODE may come in either order, since their names differ.
// Each OPTION is one of noresume, nocache and appaware (see rules.Options),
// in any order, each at most once; an exclude rule takes none.
func ParseRule(s string) (rules.Policy, error) {
	var p rules.Policy
	body, pfx, hasPfx := strings.Cut(strings.TrimSpace(s), "@")
	body, opts, hasOpts := strings.Cut(body, "+")
	parts := strings.Split(body, ":")
	if len(parts) > 3 {
		return p, fmt.Errorf("%w: rule %q: want PORT[:SIDE][:MODE][+OPTION]...[@PREFIX]", ErrUsage, s)
	}
	port, err := strconv.ParseUint(parts[0], 10, 16)
	if err != nil || port == 0 {
		return p, fmt.Errorf("%w: rule %q: port must be 1..65535", ErrUsage, s)
	}
	p.Port, p.Side, p.Mode = uint16(port), rules.SideLocal, rules.ModeOpportunistic
	var sawSide, sawMode bool
	for _, w := range parts[1:] {
		var side rules.Side
		var mode rules.Mode
		switch {
		case !sawSide && side.UnmarshalText([]byte(w)) == nil:
			p.Side, sawSide = side, true
		case !sawMode && mode.UnmarshalText([]byte(w)) == nil:
			p.Mode, sawMode = mode, true
		default:
			return p, fmt.Errorf("%w: rule %q: %q is not a side (local, remote, both) or mode (opportunistic, required, exclude)", ErrUsage, s, w)
		}
	}
	if hasOpts {
		for _, w := range strings.Split(opts, "+") {
			bit, err := rules.ParseOption(w)
			if err != nil {
				return p, fmt.Errorf("%w: rule %q: %w", ErrUsage, s, err)
			}
			if p.Options&bit != 0 {
				return p, fmt.Errorf("%w: rule %q: option %s given twice", ErrUsage, s, w)
			}
			p.Options |= bit
		}
	}
	if hasPfx {
		pp, err := rules.ParsePrefix(pfx)
		if err != nil {
			return p, fmt.Errorf("%w: rule %q: %w", ErrUsage, s, err)
		}
		p.Prefix = pp
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%w: rule %q: %w", ErrUsage, s, err)
	}
	return p, nil
}

// FormatRule is the inverse of ParseRule.
func FormatRule(p rules.Policy) string {
	s := fmt.Sprintf("%d:%v:%v", p.Port, p.Side, p.Mode)
	if p.Options != 0 {
		s += "+" + p.Options.String()
	}
	if p.Prefix.IsValid() {
		s += "@" + p.Prefix.String()
	}
	return s
}

// tepNames maps TEP ids to their IANA names (RFC 8548 §7) and short names.
var tepNames = []struct {
	id          uint8
	iana, short string
}{
	{crypto.TEPX25519, "TCPCRYPT_ECDHE_Curve25519", "x25519"},
	{crypto.TEPX448, "TCPCRYPT_ECDHE_Curve448", "x448"},
	{crypto.TEPP256, "TCPCRYPT_ECDHE_P256", "p256"},
	{crypto.TEPP521, "TCPCRYPT_ECDHE_P521", "p521"},
}

// TEPName returns the IANA name of a TEP id ("" for 0, hex for unknown ids).
func TEPName(id uint8) string {
	id &^= crypto.TEPResumeBit
	if id == 0 {
		return ""
	}
	for _, t := range tepNames {
		if t.id == id {
			return t.iana
		}
	}
	return fmt.Sprintf("TEP(0x%02x)", id)
}

// ParseTEPs parses a comma-separated list of TEP names (x25519, x448, p256,
// p521, or the IANA names), case-insensitively.
func ParseTEPs(s string) ([]uint8, error) {
	var out []uint8
	for _, w := range splitList(s) {
		i := slices.IndexFunc(tepNames, func(t struct {
			id          uint8
			iana, short string
		}) bool {
			return strings.EqualFold(w, t.iana) || strings.EqualFold(w, t.short)
		})
		if i < 0 {
			return nil, fmt.Errorf("unknown TEP %q (want x25519, x448, p256 or p521)", w)
		}
		if slices.Contains(out, tepNames[i].id) {
			return nil, fmt.Errorf("TEP %q listed twice", w)
		}
		out = append(out, tepNames[i].id)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

var aeadNames = []struct {
	id    crypto.AEADID
	short string
}{
	{crypto.AES128GCM, "aes128gcm"},
	{crypto.AES256GCM, "aes256gcm"},
	{crypto.ChaCha20Poly1305, "chacha20poly1305"},
}

// ParseAEADs parses a comma-separated list of AEAD names (aes128gcm,
// aes256gcm, chacha20poly1305, or the IANA names such as AEAD_AES_128_GCM).
func ParseAEADs(s string) ([]crypto.AEADID, error) {
	var out []crypto.AEADID
	for _, w := range splitList(s) {
		var id crypto.AEADID
		for _, a := range aeadNames {
			if strings.EqualFold(w, a.short) || strings.EqualFold(w, a.id.String()) {
				id = a.id
			}
		}
		if id == 0 {
			return nil, fmt.Errorf("unknown AEAD %q (want aes128gcm, aes256gcm or chacha20poly1305)", w)
		}
		if slices.Contains(out, id) {
			return nil, fmt.Errorf("AEAD %q listed twice", w)
		}
		out = append(out, id)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

// SplitCheckServer splits host[:port]; the port defaults to
// DefaultCheckPort. It does not resolve the host.
func SplitCheckServer(s string) (host string, port uint16, err error) {
	if s == "" {
		return "", 0, errors.New("empty address")
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a bare name, IPv4 address, or IPv6 address (bracketed or not).
		h = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		if strings.ContainsAny(h, "[]") {
			return "", 0, errors.New("malformed address")
		}
		return h, DefaultCheckPort, nil
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 || h == "" {
		return "", 0, errors.New("want host[:port] with port 1..65535")
	}
	return h, uint16(n), nil
}

// normalizeListen turns ":port" into "0.0.0.0:port" for parsing.
func normalizeListen(s string) string {
	if strings.HasPrefix(s, ":") {
		return "0.0.0.0" + s
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for w := range strings.SplitSeq(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "t", "true", "yes", "on":
		return true, nil
	case "0", "f", "false", "no", "off":
		return false, nil
	}
	return false, errors.New("want true or false")
}

// parseDuration parses a Go duration that must not be negative.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		return 0, errors.New("negative duration")
	}
	return d, err
}

func parseCount(s string, limit int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > limit {
		return 0, fmt.Errorf("want a number 0..%d", limit)
	}
	return n, nil
}

// parseSize parses a byte count with an optional K, M or G suffix (powers of
// 1024).
func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > (1<<62)/mult {
		return 0, errors.New("want a byte count such as 1073741824 or 1G")
	}
	return n * mult, nil
}
