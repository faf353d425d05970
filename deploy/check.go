package deploy

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Daemon is what Check compares the manifests with, taken from the daemon
// and its image.
type Daemon struct {
	// Entrypoint is the image's ENTRYPOINT (program and arguments).
	Entrypoint []string
	// Flags are the options the packaged tcpcryptd accepts.
	Flags Flags
	// ReadyPath and LivePath are the daemon's health endpoints on its
	// --metrics listener.
	ReadyPath, LivePath string
	// MetricsPath is where it serves the metrics.
	MetricsPath string
	// DefaultControl is the control socket applications and tools use
	// unless told otherwise.
	DefaultControl string
	// DefaultMemoryLimit is --memory-limit's default ("256M").
	DefaultMemoryLimit string
}

// capabilities is what the daemon needs and all that it may have:
// CAP_NET_ADMIN (nftables, NFQUEUE, SO_MARK, sock_diag) and CAP_NET_RAW
// (raw sockets).
var capabilities = []corev1.Capability{"NET_ADMIN", "NET_RAW"}

// runtimeHeadroom is the least memory the container gets above
// --memory-limit for everything else the daemon keeps: flow tables, the Go
// runtime, the garbage collector's slack.
const runtimeHeadroom = 128 << 20

// Check checks the DaemonSet of m (there must be exactly one, with one
// container) against d and returns every problem found, joined.
func Check(m *Manifests, d Daemon) error {
	if len(m.DaemonSets) != 1 {
		return fmt.Errorf("want exactly one DaemonSet, have %d", len(m.DaemonSets))
	}
	c := &checker{m: m, d: d, ds: &m.DaemonSets[0]}
	c.run()
	return errors.Join(c.errs...)
}

type checker struct {
	m    *Manifests
	d    Daemon
	ds   *appsv1.DaemonSet
	pod  *corev1.PodSpec
	ctr  *corev1.Container
	args []Arg // entrypoint, then container args, then config file (in the daemon's precedence, last wins)
	errs []error
}

func (c *checker) errorf(format string, a ...any) {
	c.errs = append(c.errs, fmt.Errorf("DaemonSet %s: "+format, append([]any{c.ds.Name}, a...)...))
}

func (c *checker) run() {
	c.pod = &c.ds.Spec.Template.Spec
	if len(c.pod.Containers) != 1 {
		c.errorf("want one container, have %d", len(c.pod.Containers))
		return
	}
	c.ctr = &c.pod.Containers[0]
	if len(c.pod.InitContainers) != 0 {
		c.errorf("init containers are not expected")
	}
	if !c.pod.HostNetwork {
		c.errorf("hostNetwork must be true: the daemon works on the node's own connections and nftables table")
	}
	c.rollout()
	c.security()
	if !c.commandLine() {
		return
	}
	c.configMap()
	c.controlSocket()
	c.state()
	port := c.metrics()
	c.probes(port)
	c.memory()
}

// rollout: one daemon per node at any time (the instance lock and the
// hostPort forbid two), so no surge.
func (c *checker) rollout() {
	s := c.ds.Spec.UpdateStrategy
	if s.Type != appsv1.RollingUpdateDaemonSetStrategyType || s.RollingUpdate == nil {
		c.errorf("updateStrategy must be RollingUpdate with rollingUpdate set")
		return
	}
	if ms := s.RollingUpdate.MaxSurge; ms != nil && ms.String() != "0" && ms.String() != "0%" {
		c.errorf("maxSurge must be 0: two daemons cannot run on one node, have %s", ms.String())
	}
	if s.RollingUpdate.MaxUnavailable == nil {
		c.errorf("maxUnavailable must be set (docs/fleet.md: how many nodes lose their encrypted connections at once)")
	}
}

func (c *checker) security() {
	sc := c.ctr.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		c.errorf("the container needs a securityContext with capabilities drop [ALL] add %v", capabilities)
		return
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		c.errorf("capabilities.drop must be exactly [ALL], have %v", sc.Capabilities.Drop)
	}
	add := slices.Clone(sc.Capabilities.Add)
	for i, a := range add {
		add[i] = corev1.Capability(strings.TrimPrefix(strings.ToUpper(string(a)), "CAP_"))
	}
	slices.Sort(add)
	if !slices.Equal(add, capabilities) {
		c.errorf("capabilities.add must be exactly %v, have %v", capabilities, sc.Capabilities.Add)
	}
	if sc.Privileged != nil && *sc.Privileged {
		c.errorf("privileged must not be true: the daemon needs two capabilities, not all")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		c.errorf("allowPrivilegeEscalation must be false")
	}
	// The daemon checks its effective capability set; a non-root user does
	// not get the added capabilities there.
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		c.errorf("runAsUser must be 0: a non-root process does not get added capabilities in its effective set")
	}
	if sc.RunAsNonRoot != nil && *sc.RunAsNonRoot {
		c.errorf("runAsNonRoot must not be true")
	}
	if c.pod.HostPID || c.pod.HostIPC {
		c.errorf("hostPID and hostIPC are not needed")
	}
}

// commandLine parses the entrypoint, the container's args (with $(VAR)
// references to its env) and the config file named by --config. It
// reports whether there was a command line to go on with.
func (c *checker) commandLine() bool {
	if len(c.ctr.Command) != 0 {
		c.errorf("command must be unset: the image's entrypoint holds the systemd unit's arguments")
		return false
	}
	if len(c.d.Entrypoint) == 0 || path.Base(c.d.Entrypoint[0]) != "tcpcryptd" {
		c.errorf("the image's entrypoint %q does not run tcpcryptd", c.d.Entrypoint)
		return false
	}
	env := map[string]bool{}
	for _, e := range c.ctr.Env {
		env[e.Name] = true
	}
	for _, a := range c.ctr.Args {
		for _, ref := range varRef.FindAllStringSubmatch(a, -1) {
			if !env[ref[1]] {
				c.errorf("args: $(%s) is not an env variable of the container", ref[1])
			}
		}
	}
	args, err := c.d.Flags.ParseArgs(slices.Concat(c.d.Entrypoint[1:], c.ctr.Args))
	if err != nil {
		c.errorf("entrypoint and args: %v", err)
		// Go on with the entrypoint's alone, to report the other faults.
		if args, err = c.d.Flags.ParseArgs(c.d.Entrypoint[1:]); err != nil {
			c.errorf("entrypoint: %v", err)
			return false
		}
	}
	c.args = args
	return true
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// value returns the setting name as the daemon sees it: the command line
// wins over the config file.
func (c *checker) value(name string) (string, bool) {
	return Last(c.args, name)
}

// volumeFor returns the volume mounted at dir in the container.
func (c *checker) volumeFor(dir string) (*corev1.Volume, *corev1.VolumeMount) {
	for i := range c.ctr.VolumeMounts {
		vm := &c.ctr.VolumeMounts[i]
		if path.Clean(vm.MountPath) != path.Clean(dir) {
			continue
		}
		for j := range c.pod.Volumes {
			if c.pod.Volumes[j].Name == vm.Name {
				return &c.pod.Volumes[j], vm
			}
		}
		c.errorf("volumeMount %s names no volume", vm.Name)
		return nil, vm
	}
	return nil, nil
}

// configMap: the file --config names comes from a ConfigMap key of this
// manifest, and holds only settings the daemon knows.
func (c *checker) configMap() {
	file, ok := Last(c.args, "config")
	if !ok {
		c.errorf("the command line has no --config: the ConfigMap would not be read")
		return
	}
	v, vm := c.volumeFor(path.Dir(file))
	if v == nil || v.ConfigMap == nil {
		c.errorf("%s (--config) is not on a ConfigMap volume mounted at %s", file, path.Dir(file))
		return
	}
	if vm.SubPath != "" {
		c.errorf("the ConfigMap is mounted with subPath: it would not see updates")
	}
	key := path.Base(file)
	if len(v.ConfigMap.Items) > 0 {
		key = ""
		for _, it := range v.ConfigMap.Items {
			if path.Clean(it.Path) == path.Base(file) {
				key = it.Key
			}
		}
		if key == "" {
			c.errorf("the ConfigMap volume's items do not make %s", path.Base(file))
			return
		}
	}
	var cm *corev1.ConfigMap
	for i := range c.m.ConfigMaps {
		if c.m.ConfigMaps[i].Name == v.ConfigMap.Name && c.m.ConfigMaps[i].Namespace == c.ds.Namespace {
			cm = &c.m.ConfigMaps[i]
		}
	}
	if cm == nil {
		c.errorf("ConfigMap %s is not in the manifests (namespace %s)", v.ConfigMap.Name, c.ds.Namespace)
		return
	}
	text, ok := cm.Data[key]
	if !ok {
		c.errorf("ConfigMap %s has no key %s, the file --config %s reads", cm.Name, key, file)
		return
	}
	settings, err := c.d.Flags.ParseConfigFile([]byte(text))
	if err != nil {
		c.errorf("ConfigMap %s key %s: %v", cm.Name, key, err)
		return
	}
	// The config file comes first: the command line overrides it.
	c.args = append(settings, c.args...)
}

// controlSocket: the socket's directory is the node's, at the path
// node-local applications use by default.
func (c *checker) controlSocket() {
	sock, ok := c.value("control")
	if !ok {
		sock = c.d.DefaultControl
	}
	if !strings.HasPrefix(sock, "/") {
		c.errorf("--control %q is not a unix socket path: node-local applications could not reach it", sock)
		return
	}
	if sock != c.d.DefaultControl {
		c.errorf("--control %s is not %s, where applications, tcnetstat and libtcpcrypt look", sock, c.d.DefaultControl)
	}
	dir := path.Dir(sock)
	v, _ := c.volumeFor(dir)
	if v == nil || v.HostPath == nil {
		c.errorf("the control socket's directory %s is not a hostPath volume", dir)
		return
	}
	if path.Clean(v.HostPath.Path) != dir {
		c.errorf("the control socket's directory is mounted from the node's %s, want %s (the same path on the node)", v.HostPath.Path, dir)
	}
	if t := v.HostPath.Type; t == nil || (*t != corev1.HostPathDirectoryOrCreate && *t != corev1.HostPathDirectory) {
		c.errorf("hostPath %s must have type DirectoryOrCreate or Directory", v.HostPath.Path)
	}
}

// state: the rules added at run time survive a new pod.
func (c *checker) state() {
	f, ok := c.value("state")
	if !ok {
		c.errorf("the command line has no --state")
		return
	}
	if v, _ := c.volumeFor(path.Dir(f)); v == nil || v.HostPath == nil {
		c.errorf("the state file's directory %s is not a hostPath volume: rules added with tcpcryptctl would be lost with the pod", path.Dir(f))
	}
}

// metrics: the listener's port is a container port (= host port) and the
// pod is annotated for scraping it. It returns the port (0: none).
func (c *checker) metrics() int32 {
	addr, ok := c.value("metrics")
	if !ok {
		c.errorf("no --metrics: neither metrics nor the readiness endpoint would be served")
		return 0
	}
	_, ps, err := net.SplitHostPort(addr)
	port, perr := strconv.ParseUint(ps, 10, 16)
	if err != nil || perr != nil || port == 0 {
		c.errorf("--metrics %q has no port", addr)
		return 0
	}
	found := false
	for _, p := range c.ctr.Ports {
		if p.ContainerPort == int32(port) {
			found = true
			if p.HostPort != 0 && p.HostPort != p.ContainerPort {
				c.errorf("port %s: hostPort %d differs from containerPort %d (hostNetwork needs them equal)", p.Name, p.HostPort, p.ContainerPort)
			}
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				c.errorf("port %s must be TCP", p.Name)
			}
		}
	}
	if !found {
		c.errorf("the metrics port %d is not a container port", port)
	}
	ann := c.ds.Spec.Template.Annotations
	want := map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   strconv.FormatUint(port, 10),
		"prometheus.io/path":   c.d.MetricsPath,
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if ann[k] != want[k] {
			c.errorf("pod annotation %s = %q, want %q", k, ann[k], want[k])
		}
	}
	return int32(port)
}

// probes: readiness on the daemon's /readyz at the metrics port, liveness
// (if any) on /livez.
func (c *checker) probes(port int32) {
	check := func(name string, p *corev1.Probe, wantPath string) {
		if p == nil {
			return
		}
		g := p.HTTPGet
		if g == nil {
			c.errorf("%s must be an httpGet probe on %s", name, wantPath)
			return
		}
		if g.Path != wantPath {
			c.errorf("%s path %q, want the daemon's %q", name, g.Path, wantPath)
		}
		if g.Host != "" {
			c.errorf("%s must not set host", name)
		}
		if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
			c.errorf("%s scheme must be HTTP", name)
		}
		if got := c.resolvePort(g.Port.String()); port != 0 && got != port {
			c.errorf("%s port %s is not the metrics port %d", name, g.Port.String(), port)
		}
	}
	if c.ctr.ReadinessProbe == nil {
		c.errorf("no readinessProbe: the rollout could not wait for rules and queues to be live")
	}
	check("readinessProbe", c.ctr.ReadinessProbe, c.d.ReadyPath)
	check("livenessProbe", c.ctr.LivenessProbe, c.d.LivePath)
	if p := c.ctr.LivenessProbe; p != nil && p.FailureThreshold*p.PeriodSeconds < 60 {
		c.errorf("livenessProbe restarts after %ds: a restart resets every encrypted connection of the node, allow at least 60s",
			p.FailureThreshold*p.PeriodSeconds)
	}
}

// resolvePort turns a probe's port (number or container port name) into a
// number (0: unknown).
func (c *checker) resolvePort(s string) int32 {
	if n, err := strconv.ParseInt(s, 10, 32); err == nil {
		return int32(n)
	}
	for _, p := range c.ctr.Ports {
		if p.Name == s {
			return p.ContainerPort
		}
	}
	return 0
}

// memory: requests and limits leave room above --memory-limit, and
// GOMEMLIMIT (if set) lies between the two.
func (c *checker) memory() {
	ml, ok := c.value("memory-limit")
	if !ok {
		ml = c.d.DefaultMemoryLimit
	}
	budget, err := ParseSize(ml)
	if err != nil {
		c.errorf("--memory-limit %q: %v", ml, err)
		return
	}
	req, hasReq := c.ctr.Resources.Requests[corev1.ResourceMemory]
	lim, hasLim := c.ctr.Resources.Limits[corev1.ResourceMemory]
	if !hasReq || !hasLim {
		c.errorf("resources must request and limit memory")
		return
	}
	if req.Value() < int64(budget)+runtimeHeadroom {
		c.errorf("memory request %s leaves less than %d MiB above --memory-limit %s", req.String(), runtimeHeadroom>>20, ml)
	}
	if lim.Cmp(req) < 0 {
		c.errorf("memory limit %s is below the request %s", lim.String(), req.String())
	}
	for _, e := range c.ctr.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		g, err := parseGoMemLimit(e.Value)
		if err != nil {
			c.errorf("GOMEMLIMIT %q: %v", e.Value, err)
			continue
		}
		if g <= int64(budget) || g >= lim.Value() {
			c.errorf("GOMEMLIMIT %s must lie above --memory-limit %s and below the memory limit %s", e.Value, ml, lim.String())
		}
	}
}

// ParseSize reads a byte count the way tcpcryptd does (internal/daemon's
// parseSize): digits with an optional K, M or G suffix, powers of 1024.
func ParseSize(s string) (uint64, error) {
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

// parseGoMemLimit reads GOMEMLIMIT's syntax (package runtime): a byte
// count with an optional B, KiB, MiB, GiB or TiB suffix.
func parseGoMemLimit(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New("want a byte count such as 469762048 or 448MiB")
	}
	return n * mult, nil
}
