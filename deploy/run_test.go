package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// requireRoot skips a test that needs root, or fails it when
// TCPCRYPT_REQUIRE_ROOT_TESTS=1 (as CI sets it), like the daemon module's
// root tests.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("TCPCRYPT_REQUIRE_ROOT_TESTS") == "1" {
		t.Fatal("needs root (a network namespace and the daemon's capabilities); TCPCRYPT_REQUIRE_ROOT_TESTS=1 makes that a failure")
	}
	t.Skip("needs root (a network namespace and the daemon's capabilities)")
}

// lockedBuffer collects a process's output for reading while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestManifestRunsDaemon runs the packaged daemon the way the DaemonSet
// does, in a network namespace of its own: the image's entrypoint, the
// container's args (NODE_IP = 127.0.0.1) and env, the ConfigMap's file as
// the --config file, and the hostPath directories replaced by temporary
// ones. The daemon must accept all of it and answer the readiness probe's
// GET with 200 at the probe's port and path, and the liveness probe's too.
func TestManifestRunsDaemon(t *testing.T) {
	requireRoot(t)
	im := builtImage(t)
	m, err := LoadManifests(readManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(m, im.daemon); err != nil {
		t.Fatalf("the manifest does not pass Check: %v", err)
	}
	ctr := m.DaemonSets[0].Spec.Template.Spec.Containers[0]

	dir := t.TempDir()
	// The container's paths, moved under dir: the ConfigMap's files in the
	// config mount, empty directories for the hostPath ones.
	remap := map[string]string{}
	for _, vm := range ctr.VolumeMounts {
		local := filepath.Join(dir, strings.ReplaceAll(strings.Trim(vm.MountPath, "/"), "/", "_"))
		if err := os.MkdirAll(local, 0o755); err != nil {
			t.Fatal(err)
		}
		remap[vm.MountPath] = local
		for _, v := range m.DaemonSets[0].Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				for _, cm := range m.ConfigMaps {
					if cm.Name != v.ConfigMap.Name {
						continue
					}
					for k, text := range cm.Data {
						if err := os.WriteFile(filepath.Join(local, k), []byte(text), 0o644); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
	}
	moved := func(a string) string {
		for from, to := range remap {
			if rest, ok := strings.CutPrefix(a, from+"/"); ok {
				return filepath.Join(to, rest)
			}
			a = strings.ReplaceAll(a, "="+from+"/", "="+to+"/")
		}
		return a
	}
	env := map[string]string{"NODE_IP": "127.0.0.1"}
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	var args []string
	for _, a := range append(append([]string{}, im.daemon.Entrypoint[1:]...), ctr.Args...) {
		for k, v := range env {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		args = append(args, moved(a))
	}

	ns := fmt.Sprintf("tcpcrypt-deploy-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}

	bin := filepath.Join(im.root, im.daemon.Entrypoint[0])
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon %q:\n%s", args, log.String())
		}
	})

	probe := func(name string, p *corev1.Probe) {
		t.Helper()
		port := (&checker{ctr: &ctr}).resolvePort(p.HTTPGet.Port.String())
		url := fmt.Sprintf("http://127.0.0.1:%d%s", port, p.HTTPGet.Path)
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns,
				"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url).Output()
			cancel()
			if err == nil && string(out) == "200" {
				return
			}
			select {
			case <-exited:
				t.Fatalf("the daemon exited (%v) before %s answered 200", waitErr, name)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s GET %s: %q %v after 30s, want 200", name, url, out, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is required (scripts/setup.sh installs it)")
	}
	probe("readinessProbe", ctr.ReadinessProbe)
	probe("livenessProbe", ctr.LivenessProbe)
	if !strings.Contains(log.String(), "msg=ready") {
		t.Errorf("ready without a ready log line (the ConfigMap sets verbose = 1):\n%s", log.String())
	}
	// The control socket is where the hostPath directory was mounted.
	sock, _ := Last(mustParse(t, im.daemon.Flags, im.daemon.Entrypoint[1:]), "control")
	if fi, err := os.Stat(moved(sock)); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("no control socket at %s (the hostPath for %s): %v", moved(sock), sock, err)
	}
}

func mustParse(t *testing.T, f Flags, args []string) []Arg {
	t.Helper()
	a, err := f.ParseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
