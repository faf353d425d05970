package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
	"github.com/tcpcryptd/tcpcrypt/internal/metrics"
	"github.com/tcpcryptd/tcpcrypt/internal/sdnotify"
	"github.com/tcpcryptd/tcpcrypt/nfq"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// Session cache for resumption (RFC 8548 §3.5): shared by every worker's
// engine, so a resumption works whichever worker the new connection lands
// on. Secrets live in memory only.
const (
	cacheSize = 8192
	cacheTTL  = time.Hour
)

// LevelNotice is the level of the few milestone lines an operator wants at
// the default verbosity (ready, stopped, a reload's result): above info,
// below warn. cmd/tcpcryptd logs it by default and prints it as NOTICE.
const LevelNotice = slog.LevelInfo + 2

// Options are Run's inputs.
type Options struct {
	// Config is the configuration at start.
	Config Config
	// Logger receives lifecycle events (nil: discard).
	Logger *slog.Logger
	// Reload re-reads the configuration (file and command line) on SIGHUP;
	// nil keeps Config.
	Reload func() (Config, error)
	// Hangup delivers SIGHUP (nil: never).
	Hangup <-chan os.Signal
}

// ruleTable is the part of *rules.Manager the daemon uses.
type ruleTable interface {
	Apply(cfg rules.Config, policies []rules.Policy) error
	Remove() error
	Balance() string
}

// Daemon is one running instance. It is made and driven by Run; its
// methods serve the control protocol and the checks.
type Daemon struct {
	log    *slog.Logger
	start  time.Time
	disp   engines
	keylog *KeyLog
	events *eventLogger
	policy policySwitch
	// fallbacks remembers connections that fell back (fallbacks.go).
	fallbacks *fallbackRecord

	// mu guards the fields below and serializes rule changes, so that the
	// table, the engines' policy and the state file change together.
	mu         sync.Mutex
	cfg        Config
	stateRules []rules.Policy
	internal   []rules.Policy // rules the daemon needs itself (check server port)
	temp       map[int][]rules.Policy
	nextTemp   int
	table      ruleTable
	rcfg       rules.Config

	checkMu sync.Mutex
	check   ctl.Check

	// guard releases the flows of check connections that the checks make
	// the engines forget (set by Run; nil in unit tests).
	guard interface{ Unprotect(...engine.Flow) error }

	// budget is the memory budget every worker's engine shares
	// (--memory-limit).
	budget *engine.Budget

	// ready is what the metrics listener's /readyz starts from: set once
	// the daemon is ready, cleared when it stops.
	ready metrics.Readiness
}

// newDaemon makes a Daemon without kernel resources (for Run and tests).
func newDaemon(cfg Config, log *slog.Logger) *Daemon {
	d := &Daemon{log: log, start: time.Now(), cfg: cfg, temp: map[int][]rules.Policy{},
		check: ctl.Check{Result: "skipped", Detail: "not run yet"}}
	d.rcfg = rulesConfig(cfg)
	d.events = newEventLogger(log, time.Now)
	d.events.handshakes = new(metrics.Handshakes)
	d.fallbacks = newFallbackRecord(fallbackRecordMax, fallbackRecordMaxAge, time.Now)
	d.policy.cur.Store(&Matcher{})
	d.budget = engine.NewBudget(int64(min(cfg.MemoryLimit, 1<<62)))
	return d
}

func rulesConfig(cfg Config) rules.Config {
	rc := rules.DefaultConfig()
	rc.QueueNum, rc.QueueCount = cfg.QueueNum, cfg.QueueCount
	rc.Bypass = rules.BypassPolicy{Opportunistic: cfg.FailOpen, Required: false}
	return rc
}

// engineConfig is worker w's engine configuration.
func (d *Daemon) engineConfig(cfg Config, cache *crypto.Cache) engine.Config {
	ec := engine.Config{
		Decide:           d.policy.Decide,
		TEPs:             cfg.TEPs,
		AEADs:            cfg.AEADs,
		RekeyBytes:       cfg.RekeyBytes,
		RekeyInterval:    cfg.RekeyInterval,
		LivenessInterval: cfg.Liveness,
		Budget:           d.budget,
	}
	ec.Events = d.onEvent
	if kl := d.keylog; kl != nil {
		ec.KeyLog = func(kind engine.KeyLogKind, a, b []byte) { kl.Log(kind.String(), a, b) }
	}
	if cfg.Resumption {
		ec.Cache = cache
	}
	if cfg.MaxFlows > 0 {
		n := max(int(cfg.QueueCount), 1) // one engine per queue
		ec.MaxFlows = max((cfg.MaxFlows+n-1)/n, 1)
	}
	return ec
}

// tempList returns the temporary rules in a stable order.
func (d *Daemon) tempList() []rules.Policy {
	keys := slices.Sorted(maps.Keys(d.temp))
	out := make([]rules.Policy, 0, len(keys))
	for _, k := range keys {
		out = append(out, d.temp[k]...)
	}
	return out
}

// effectiveLocked is every rule in force.
func (d *Daemon) effectiveLocked() []rules.Policy {
	return slices.Concat(d.cfg.Rules, d.stateRules, d.internal, d.tempList())
}

// applyLocked makes the effective rules the engines' policy and the table.
// The policy is switched first, so a connection queued by a new rule finds
// it; if the table cannot be applied the old policy comes back.
func (d *Daemon) applyLocked() error {
	eff := d.effectiveLocked()
	m, err := NewMatcher(eff)
	if err != nil {
		return err
	}
	old := d.policy.cur.Swap(m)
	if d.table == nil {
		return nil
	}
	if err := d.table.Apply(d.rcfg, eff); err != nil {
		d.policy.cur.Store(old)
		return err
	}
	return nil
}

// addTemp adds temporary rules (start-up check) and applies them, all in
// one apply; the returned id removes them, again in one apply. An entry
// that overlaps an existing one wraps rules.ErrDuplicate: the existing entry
// then decides.
func (d *Daemon) addTemp(ps ...rules.Policy) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := rules.Normalize(append(d.effectiveLocked(), ps...)); err != nil {
		return 0, err
	}
	d.nextTemp++
	id := d.nextTemp
	d.temp[id] = slices.Clone(ps)
	if err := d.applyLocked(); err != nil {
		delete(d.temp, id)
		return 0, err
	}
	return id, nil
}

func (d *Daemon) removeTemp(id int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.temp[id]; !ok {
		return
	}
	delete(d.temp, id)
	if err := d.applyLocked(); err != nil {
		d.log.Error("could not remove a temporary rule", "err", err)
	}
}

func (d *Daemon) setCheck(c ctl.Check) {
	d.checkMu.Lock()
	d.check = c
	d.checkMu.Unlock()
}

func (d *Daemon) checkResult() ctl.Check {
	d.checkMu.Lock()
	defer d.checkMu.Unlock()
	return d.check
}

// Run runs the daemon until ctx is cancelled (SIGTERM, SIGINT), then cleans
// up: the control server stops accepting, the encrypted connections are
// reset, the table is removed, the queue readers stop. It returns nil after
// a clean shutdown, and an error when start-up fails or the queue readers
// fail. It is start, serve and stop in turn.
func Run(ctx context.Context, opts Options) error {
	r, err := start(ctx, opts)
	if err != nil {
		return err
	}
	return r.stop(r.serve(ctx, opts))
}

// running is a started daemon: what start acquired, for serve and stop.
type running struct {
	d       *Daemon
	log     *slog.Logger
	cfg     Config
	disp    *nfq.Dispatcher
	nfqDone chan error // the queue readers' result
	// undo releases what start acquired, in reverse order (see release).
	undo []func() error
	// stopServers stops the control, metrics and check servers and waits
	// for them (nil until they run; safe to call twice).
	stopServers func()
}

// push records a release step for stop (or for a failed start).
func (r *running) push(fn func() error) { r.undo = append(r.undo, fn) }

// release runs the undo steps, last acquired first, and joins their errors.
func (r *running) release() error {
	if r.stopServers != nil {
		r.stopServers()
	}
	var errs []error
	for i := len(r.undo) - 1; i >= 0; i-- {
		errs = append(errs, r.undo[i]())
	}
	r.undo = nil
	return errors.Join(errs...)
}

// fail releases what a failed start acquired and returns err with any
// release errors.
func (r *running) fail(err error) error {
	return errors.Join(err, r.release())
}

// start checks the configuration and acquires everything in order: the
// instance and state-file locks, the watchdog, the key log, the state file's
// rules, the nftables connection (clearing a previous instance's table with
// restart safety), the guard, the queue readers, the table, the control,
// metrics and check servers, and finally runs the start-up check and
// reports ready. On failure it releases what it had acquired.
func start(ctx context.Context, opts Options) (*running, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkPrivileges(); err != nil {
		return nil, err
	}
	r := &running{log: log, cfg: cfg}
	lock, err := lockInstance()
	if err != nil {
		return nil, err
	}
	r.push(func() error { lock.release(); return nil })
	unlockState, err := lockStateFile(cfg.StateFile, log)
	if err != nil {
		return nil, r.fail(err)
	}
	r.push(func() error { unlockState(); return nil })
	// systemd (Type=notify): keep-alive pings while the daemon runs;
	// no-ops without $NOTIFY_SOCKET.
	stopWatchdog, err := sdnotify.StartWatchdog(func(err error) { log.Warn("watchdog ping failed", "err", err) })
	if err != nil {
		log.Warn("ignoring the watchdog setting", "err", err)
	}
	r.push(func() error { stopWatchdog(); return nil })
	d := newDaemon(cfg, log)
	r.d = d
	log.Info("tcpcryptd starting", "version", cfg.Version, "pid", os.Getpid(),
		"queues", fmt.Sprint(cfg.queues()), "when_stopped", whenStopped(cfg.FailOpen))

	// Catch a bad engine configuration before touching the kernel.
	cache := crypto.NewCache(cacheSize, nil, cacheTTL)
	if _, err := engine.New(d.engineConfig(cfg, cache)); err != nil {
		return nil, r.fail(fmt.Errorf("engine configuration: %w", err))
	}
	if cfg.KeyLog != "" {
		kl, err := OpenKeyLog(cfg.KeyLog)
		if err != nil {
			return nil, r.fail(err)
		}
		d.keylog = kl
		r.push(kl.Close)
		log.Warn("KEY LOG ENABLED: the secrets of every encrypted connection (TCPCRYPT_ES and TCPCRYPT_SS lines) "+
			"are appended to the key log; anyone who can read it can decrypt those connections", "file", cfg.KeyLog)
	}

	m, err := r.loadRules()
	if err != nil {
		return nil, r.fail(err)
	}
	// One lasting netlink socket: the guard adds and removes a set element
	// per encrypted connection, and a socket per change would cost more
	// than the change.
	conn, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, r.fail(fmt.Errorf("nftables: %w", err))
	}
	r.push(func() error { _ = conn.CloseLasting(); return nil })
	mgr := rules.NewManager(conn, log)
	stale, err := staleTable(conn)
	if err != nil {
		return nil, r.fail(err)
	}
	if stale {
		log.Warn("found table inet " + rules.TableName + " of a previous instance that did not exit cleanly")
		// Kill its connections while its table still holds them (the
		// encrypted ones, listed in its guard sets, are queued to nobody and
		// dropped), then remove it.
		_ = restartSafety(log, conn, m)
		if err := mgr.Remove(); err != nil {
			return nil, r.fail(err)
		}
	}

	g := newGuard(mgr, log)
	d.guard = g
	gctx, gcancel := context.WithCancel(context.Background())
	go g.run(gctx)
	r.push(func() error { gcancel(); <-g.done; return nil })
	if err := r.startQueues(g, cache); err != nil {
		return nil, r.fail(err)
	}

	d.mu.Lock()
	d.table = mgr
	err = d.applyLocked()
	d.mu.Unlock()
	if err != nil {
		return nil, r.fail(err)
	}
	// From here on, every exit removes the table.
	r.push(func() error {
		if err := mgr.Remove(); err != nil {
			log.Error("could not remove the nftables table", "err", err)
			return err
		}
		return nil
	})
	if err := r.startServers(); err != nil {
		return nil, r.fail(err)
	}

	d.startupCheck(ctx, cfg)
	n := len(cfg.Rules) + len(d.stateRules)
	log.Log(context.Background(), LevelNotice, "ready", "rules", n, "queues", fmt.Sprint(cfg.queues()),
		"control", cfg.Control, "previous_instance", stale)
	// READY=1 only now: rules installed, queues bound, check done.
	if err := sdnotify.Ready(fmt.Sprintf("ready: %d rules, queues %v, start-up check %s",
		n, cfg.queues(), d.checkResult().Result)); err != nil {
		log.Warn("could not notify the service manager", "err", err)
	}
	d.ready.SetReady()
	return r, nil
}

// loadRules reads the state file and checks the rules in force together;
// the returned matcher is what restart safety uses.
func (r *running) loadRules() (*Matcher, error) {
	d, cfg, log := r.d, r.cfg, r.log
	st, err := LoadState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	d.stateRules = st
	if cfg.CheckListen != "" {
		d.internal = checkListenRule(cfg, d.effectiveLocked())
	}
	m, err := NewMatcher(d.effectiveLocked())
	if err != nil {
		return nil, fmt.Errorf("rules (configuration and %s together): %w", cfg.StateFile, err)
	}
	log.Info("rules loaded", "configured", len(cfg.Rules), "state_file", cfg.StateFile, "from_state", len(st))
	if len(cfg.Rules)+len(st) == 0 {
		log.Warn("no rules: no port is covered; add some with --rule or tcpcryptctl rules add")
	}
	return m, nil
}

// startQueues opens the queues and starts their readers and workers.
func (r *running) startQueues(g *guard, cache *crypto.Cache) error {
	d, cfg := r.d, r.cfg
	disp, err := nfq.Open(nfq.Config{
		QueueNum:   cfg.QueueNum,
		QueueCount: cfg.QueueCount,
		Mark:       d.rcfg.Mark,
		PeerMark:   d.rcfg.PeerMark,
		Logger:     r.log,
		Guard:      g,
		NewEngine: func(int) (nfq.Engine, error) {
			return engine.New(d.engineConfig(cfg, cache))
		},
	})
	if err != nil {
		return err
	}
	d.disp, r.disp = disp, disp
	nctx, ncancel := context.WithCancel(context.Background())
	r.nfqDone = make(chan error, 1)
	go func() { r.nfqDone <- disp.Run(nctx) }()
	r.push(func() error {
		ncancel()
		return <-r.nfqDone
	})
	return nil
}

// startServers starts the control server and, when configured, the metrics
// and check servers.
func (r *running) startServers() error {
	d, cfg, log := r.d, r.cfg, r.log
	srv, err := ctlserver.NewServer(ctlserver.Config{Backend: backend{d}, DaemonVersion: cfg.Version, Logger: log,
		// cache.flush by the connection's owner (RFC 8548 §3.5 is an
		// application's call), looked up with sock_diag.
		SocketOwner: func(_ context.Context, local, remote netip.AddrPort) (uint32, error) {
			return kernelSockets{}.owner(local, remote)
		}})
	if err == nil {
		err = srv.Listen(cfg.Control)
	}
	if errors.Is(err, ctlserver.ErrInUse) {
		return fmt.Errorf("control socket %s is taken by another daemon (one per network namespace is allowed, "+
			"so probably one in another namespace): give each its own --control and --state, "+
			"as tcpcryptd@NAME.service does: %w", cfg.Control, err)
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r.stopServers = func() { scancel(); wg.Wait() }
	wg.Go(func() { _ = srv.Serve(sctx) })
	log.Info("control server listening", "address", cfg.Control)

	if cfg.Metrics != "" {
		ms, err := listenMetrics(cfg, r.disp, d, log)
		if err != nil {
			return err
		}
		wg.Go(func() { _ = ms.Serve(sctx) })
		log.Info("metrics server listening", "address", ms.Addr().String())
	}
	if cfg.CheckListen != "" {
		cs, err := d.listenCheckServer(cfg.CheckListen)
		if err != nil {
			return err
		}
		wg.Go(func() { cs.serve(sctx) })
	}
	return nil
}

// serve waits for the end (ctx cancelled, or the queue readers failing) and
// reloads on SIGHUP meanwhile. Its error is the queue readers' failure.
func (r *running) serve(ctx context.Context, opts Options) error {
	for {
		select {
		case <-ctx.Done():
			r.log.Info("shutting down")
			return nil
		case err := <-r.nfqDone:
			r.nfqDone <- nil // the failure is reported here, not again by stop
			r.log.Error("queue readers failed; shutting down", "err", err)
			return fmt.Errorf("queue readers stopped: %w", err)
		case <-opts.Hangup:
			r.d.reload(opts.Reload)
		}
	}
}

// stop shuts down after serve: the servers stop, the encrypted connections
// are reset (shutdown safety), then the table goes, the queue readers stop
// and the rest is released. runErr is serve's error.
func (r *running) stop(runErr error) error {
	r.d.ready.SetNotReady("stopping")
	if err := sdnotify.Stopping("stopping: removing the nftables table"); err != nil {
		r.log.Warn("could not notify the service manager", "err", err)
	}
	r.stopServers()
	r.d.shutdownSafety(r.log)
	if err := errors.Join(runErr, r.release()); err != nil {
		return err
	}
	r.log.Log(context.Background(), LevelNotice, "tcpcryptd stopped")
	return nil
}

// whenStopped names what covered traffic does while the daemon is not
// running (--fail-open, --fail-closed), for the start line. It is not nfq's
// fail_open, which is about a full queue while the daemon runs.
func whenStopped(failOpen bool) string {
	if failOpen {
		return "fail-open"
	}
	return "fail-closed"
}

// listenMetrics opens the Prometheus endpoint (--metrics) and /readyz. Its
// collector reads the engines through disp at scrape time, like Status.
func listenMetrics(cfg Config, disp *nfq.Dispatcher, d *Daemon, log *slog.Logger) (*metrics.Server, error) {
	o := d.metricsOptions(cfg, metrics.FromDispatcher(disp))
	reg, err := metrics.NewRegistry(o)
	if err != nil {
		return nil, err
	}
	h := metrics.Handler(reg, metrics.NewProbe(o), log)
	if cfg.Pprof {
		return metrics.ListenPprof(cfg.Metrics, h)
	}
	return metrics.Listen(cfg.Metrics, h)
}

// checkListenRule returns the rule that covers the check server's port,
// unless the configured rules already have an entry for it.
func checkListenRule(cfg Config, eff []rules.Policy) []rules.Policy {
	ap, err := parseListen(cfg.CheckListen)
	if err != nil {
		return nil
	}
	p := rules.Policy{Port: ap.Port(), Side: rules.SideLocal, Mode: rules.ModeOpportunistic}
	if _, err := rules.Normalize(append(slices.Clone(eff), p)); err != nil {
		return nil
	}
	return []rules.Policy{p}
}

// reload re-reads the configuration and the state file and re-applies the
// rules (SIGHUP). Settings other than rules take effect at the next start.
func (d *Daemon) reload(fn func() (Config, error)) {
	d.log.Info("SIGHUP: reloading configuration and state file")
	d.mu.Lock()
	defer d.mu.Unlock()
	next := d.cfg
	if fn != nil {
		c, err := fn()
		if err == nil {
			err = c.Validate()
		}
		if err != nil {
			d.log.Error("reload: configuration refused; keeping the current one", "err", err)
			return
		}
		next = c
	}
	st, err := LoadState(next.StateFile)
	if err != nil {
		d.log.Error("reload: state file refused; keeping the current rules", "err", err)
		return
	}
	for _, k := range restartOnly(d.cfg, next) {
		d.log.Warn("reload: setting changed; it takes effect at the next start", "setting", k)
	}
	before := slices.Concat(d.cfg.Rules, d.stateRules)
	prevCfg, prevState := d.cfg, d.stateRules
	d.cfg.Rules, d.cfg.StateFile = next.Rules, next.StateFile
	d.stateRules = st
	if err := d.applyLocked(); err != nil {
		d.cfg, d.stateRules = prevCfg, prevState
		d.log.Error("reload: rules refused; keeping the current ones", "err", err)
		return
	}
	after := slices.Concat(d.cfg.Rules, d.stateRules)
	added, removed := diffRules(before, after)
	d.log.Log(context.Background(), LevelNotice, "reload: rules applied", "rules", len(after), "added", added, "removed", removed)
}

// restartOnly names the settings that differ between a and b and cannot
// change while running.
func restartOnly(a, b Config) []string {
	var out []string
	add := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	add("queue", a.QueueNum == b.QueueNum && a.QueueCount == b.QueueCount)
	add("control", a.Control == b.Control)
	add("workers", a.Workers == b.Workers)
	add("fail-open", a.FailOpen == b.FailOpen)
	add("teps", slices.Equal(a.TEPs, b.TEPs))
	add("aeads", slices.Equal(a.AEADs, b.AEADs))
	add("resumption", a.Resumption == b.Resumption)
	add("rekey-bytes", a.RekeyBytes == b.RekeyBytes)
	add("rekey-interval", a.RekeyInterval == b.RekeyInterval)
	add("liveness", a.Liveness == b.Liveness)
	add("max-flows", a.MaxFlows == b.MaxFlows)
	add("memory-limit", a.MemoryLimit == b.MemoryLimit)
	add("keylog", a.KeyLog == b.KeyLog)
	add("check-listen", a.CheckListen == b.CheckListen)
	add("metrics", a.Metrics == b.Metrics)
	add("pprof", a.Pprof == b.Pprof)
	return out
}

// diffRules lists the rules only in after (added) and only in before
// (removed), in ParseRule form.
func diffRules(before, after []rules.Policy) (added, removed []string) {
	for _, p := range after {
		if !slices.Contains(before, p) {
			added = append(added, FormatRule(p))
		}
	}
	for _, p := range before {
		if !slices.Contains(after, p) {
			removed = append(removed, FormatRule(p))
		}
	}
	return added, removed
}
