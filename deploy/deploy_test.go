package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const manifestFile = "kubernetes/tcpcryptd.yaml"

func readManifest(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(manifestFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The shipped manifest decodes strictly into the API types and passes every
// check against the packaged daemon.
func TestManifest(t *testing.T) {
	im := builtImage(t)
	m, err := LoadManifests(readManifest(t))
	if err != nil {
		t.Fatalf("%s: %v", manifestFile, err)
	}
	if len(m.Namespaces) != 1 || len(m.ConfigMaps) != 1 || len(m.DaemonSets) != 1 {
		t.Fatalf("%s: %d namespaces, %d config maps, %d daemon sets; want one each",
			manifestFile, len(m.Namespaces), len(m.ConfigMaps), len(m.DaemonSets))
	}
	for _, ns := range []string{m.ConfigMaps[0].Namespace, m.DaemonSets[0].Namespace} {
		if ns != m.Namespaces[0].Name {
			t.Errorf("object in namespace %q, want %q (the manifest's Namespace)", ns, m.Namespaces[0].Name)
		}
	}
	if err := Check(m, im.daemon); err != nil {
		t.Errorf("%s against the packaged daemon:\n%v", manifestFile, err)
	}
}

// Every way of breaking the manifest that matters here is caught: each
// mutation of the shipped file must fail to load or fail Check with the
// expected complaint.
func TestManifestMutations(t *testing.T) {
	im := builtImage(t)
	good := string(readManifest(t))
	tests := []struct {
		name, old, new, want string
	}{
		{"misspelt field", "hostNetwork: true", "hostNetwrok: true", "field spec.template.spec.hostNetwrok is not a field of the API type"},
		{"field in the wrong case", "hostNetwork: true", "hostnetwork: true", "hostnetwork is not a field of the API type"},
		{"duplicate field", "      hostNetwork: true\n", "      hostNetwork: true\n      hostNetwork: true\n", "already set in map"},
		{"no host network", "hostNetwork: true", "hostNetwork: false", "hostNetwork must be true"},
		{"extra capability", "                - NET_RAW\n", "                - NET_RAW\n                - SYS_ADMIN\n", "capabilities.add must be exactly"},
		{"capability missing", "                - NET_RAW\n", "", "capabilities.add must be exactly"},
		{"nothing dropped", "                - ALL\n", "                - SETUID\n", "capabilities.drop must be exactly [ALL]"},
		{"privileged", "privileged: false", "privileged: true", "privileged must not be true"},
		{"non-root", "runAsUser: 0", "runAsUser: 1000", "runAsUser must be 0"},
		{"escalation", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation must be false"},
		{"probe path", "path: /readyz", "path: /healthz", `readinessProbe path "/healthz", want the daemon's "/readyz"`},
		{"liveness path", "path: /livez", "path: /healthz", `livenessProbe path "/healthz"`},
		{"probe port", "              port: metrics\n            initialDelaySeconds: 2", "              port: 9465\n            initialDelaySeconds: 2", "readinessProbe port 9465 is not the metrics port 9464"},
		{"no readiness probe", "          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: metrics\n", "          readinessProbe:\n            exec:\n              command: [/bin/true]\n", "readinessProbe must be an httpGet probe"},
		{"hasty liveness", "failureThreshold: 6", "failureThreshold: 1", "livenessProbe restarts after 20s"},
		{"config key", "  tcpcryptd.conf: |", "  tcpcrypt.conf: |", "has no key tcpcryptd.conf"},
		{"config mount", "mountPath: /etc/tcpcrypt", "mountPath: /etc/tcpcryptd", "is not on a ConfigMap volume mounted at /etc/tcpcrypt"},
		{"config map name", "            name: tcpcryptd-config", "            name: tcpcryptd-conf", "ConfigMap tcpcryptd-conf is not in the manifests"},
		{"unknown setting", "verbose = 1", "verbosity = 1", `"verbosity" is not a setting of tcpcryptd`},
		{"control hostPath", "path: /run/tcpcrypt\n", "path: /var/run/tcpcrypt-pod\n", "mounted from the node's /var/run/tcpcrypt-pod"},
		{"control not on the node", "            path: /run/tcpcrypt\n            type: DirectoryOrCreate", "            path: /run/tcpcrypt\n            type: Socket", "must have type DirectoryOrCreate or Directory"},
		{"control elsewhere", "            - --metrics=$(NODE_IP):9464\n", "            - --metrics=$(NODE_IP):9464\n            - --control=/tmp/ctl\n", "--control /tmp/ctl is not /run/tcpcrypt/ctl"},
		{"unknown flag", "--metrics=$(NODE_IP):9464", "--metric=$(NODE_IP):9464", `tcpcryptd has no option "--metric=$(NODE_IP):9464"`},
		{"no metrics", "            - --metrics=$(NODE_IP):9464\n", "            - --pprof\n", "no --metrics"},
		{"undefined env", "--metrics=$(NODE_IP):9464", "--metrics=$(HOST_IP):9464", "$(HOST_IP) is not an env variable"},
		{"scrape port", `prometheus.io/port: "9464"`, `prometheus.io/port: "9100"`, `pod annotation prometheus.io/port = "9100", want "9464"`},
		{"scrape off", `prometheus.io/scrape: "true"`, `prometheus.io/scrape: "false"`, "prometheus.io/scrape"},
		{"container port", "containerPort: 9464\n              hostPort: 9464", "containerPort: 9465\n              hostPort: 9465", "the metrics port 9464 is not a container port"},
		{"memory request", "memory: 384Mi", "memory: 256Mi", "memory request 256Mi leaves less than 128 MiB above --memory-limit 256M"},
		{"memory-limit raised", "memory-limit = 256M", "memory-limit = 1G", "above --memory-limit 1G"},
		{"memory limit below request", "memory: 512Mi", "memory: 400Mi", "GOMEMLIMIT 448MiB must lie above --memory-limit 256M and below the memory limit 400Mi"},
		{"no memory limit", "            limits:\n              memory: 512Mi\n", "", "resources must request and limit memory"},
		{"surge", "maxSurge: 0", "maxSurge: 1", "maxSurge must be 0"},
		{"command overrides the entrypoint", "          args:\n", "          command: [/usr/sbin/tcpcryptd]\n          args:\n", "command must be unset"},
		{"unexpected kind", "kind: ConfigMap", "kind: Secret", `unexpected apiVersion "v1" kind "Secret"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(good, tt.old) {
				t.Fatalf("the manifest no longer contains %q: update the test", tt.old)
			}
			bad := strings.Replace(good, tt.old, tt.new, 1)
			err := func() error {
				m, err := LoadManifests([]byte(bad))
				if err != nil {
					return err
				}
				return Check(m, im.daemon)
			}()
			if err == nil {
				t.Fatalf("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not say %q:\n%v", tt.want, err)
			}
		})
	}
}

// The deliberately broken manifest in testdata fails, for each of its
// faults.
func TestBrokenManifest(t *testing.T) {
	im := builtImage(t)
	b, err := os.ReadFile("testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadManifests(b); err == nil || !strings.Contains(err.Error(), "field spec.template.spec.containers[0].securityContext.capabilites is not a field") {
		t.Errorf("strict decoding of testdata/broken.yaml: %v, want the misspelt capabilities field", err)
	}
	// Spelt right, the rest of its faults show.
	fixed := strings.Replace(string(b), "capabilites:", "capabilities:", 1)
	m, err := LoadManifests([]byte(fixed))
	if err != nil {
		t.Fatalf("testdata/broken.yaml with the field fixed: %v", err)
	}
	err = Check(m, im.daemon)
	for _, want := range []string{
		"hostNetwork must be true",
		"capabilities.add must be exactly",
		`readinessProbe path "/healthz"`,
		"has no key tcpcryptd.conf",
		"the control socket's directory /run/tcpcrypt is not a hostPath volume",
		`tcpcryptd has no option "--metrics-addr`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(testdata/broken.yaml) does not say %q:\n%v", want, err)
		}
	}
}

// The Containerfile COPYs the package the build produced, installs it with
// apt, runs as root and starts the daemon exactly as the systemd unit does.
func TestContainerfile(t *testing.T) {
	im := builtImage(t)
	froms := Find(im.instructions, "FROM")
	if len(froms) != 1 {
		t.Fatalf("%d FROM lines, want 1 (no build stage downloads anything)", len(froms))
	}
	base := strings.Fields(froms[0].Args)[0]
	if !strings.HasPrefix(base, "debian:") || !strings.HasSuffix(base, "-slim") || strings.Contains(base, "latest") {
		t.Errorf("FROM %s, want a named Debian slim release (debian:CODENAME-slim)", base)
	}

	copies := Find(im.instructions, "COPY")
	if len(copies) != 1 {
		t.Fatalf("%d COPY lines, want 1 (the package)", len(copies))
	}
	srcs := CopySources(copies[0])
	if len(srcs) != 1 {
		t.Fatalf("COPY %s: sources %v, want one", copies[0].Args, srcs)
	}
	deb := filepath.Join(im.context, srcs[0])
	out, err := exec.Command("dpkg-deb", "-f", deb, "Package").Output()
	if err != nil || strings.TrimSpace(string(out)) != "tcpcryptd" {
		t.Errorf("COPY %s: the build context's %s is not the tcpcryptd package (%v: %q)", srcs[0], deb, err, out)
	}
	if len(Find(im.instructions, "ADD")) != 0 {
		t.Error("ADD is not used (it can fetch URLs)")
	}
	dest := strings.Fields(copies[0].Args)[1]
	installs := false
	for _, r := range Find(im.instructions, "RUN") {
		for _, fetch := range []string{"curl", "wget", "git ", "go install", "pip"} {
			if strings.Contains(r.Args, fetch) {
				t.Errorf("line %d: RUN uses %s: nothing but apt may download at build time", r.Line, fetch)
			}
		}
		if strings.Contains(r.Args, "apt-get install") && strings.Contains(r.Args, dest) {
			installs = true
		}
	}
	if !installs {
		t.Errorf("no RUN installs the copied package %s with apt-get install", dest)
	}

	users := Find(im.instructions, "USER")
	if len(users) != 1 || (users[0].Args != "root" && users[0].Args != "0" && users[0].Args != "0:0") {
		t.Errorf("USER %v, want root: the daemon needs CAP_NET_ADMIN and CAP_NET_RAW in its effective set", users)
	}

	unit := unitExecStart(t)
	if !slices.Equal(im.daemon.Entrypoint, unit) {
		t.Errorf("ENTRYPOINT %q, want the unit's ExecStart %q", im.daemon.Entrypoint, unit)
	}
	for _, p := range []string{im.daemon.Entrypoint[0]} {
		fi, err := os.Stat(filepath.Join(im.root, p))
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("the package has no executable %s: %v", p, err)
		}
	}
	args, err := im.daemon.Flags.ParseArgs(im.daemon.Entrypoint[1:])
	if err != nil {
		t.Fatalf("ENTRYPOINT arguments: %v", err)
	}
	if conf, ok := Last(args, "config"); !ok {
		t.Error("ENTRYPOINT has no --config")
	} else if _, err := os.Stat(filepath.Join(im.root, conf)); err != nil {
		t.Errorf("the package does not ship %s (--config): %v", conf, err)
	}
	// EXPOSE names the manifest's metrics port.
	if ex := Find(im.instructions, "EXPOSE"); len(ex) != 1 || !strings.Contains(readManifestString(t), "containerPort: "+strings.TrimSuffix(ex[0].Args, "/tcp")) {
		t.Errorf("EXPOSE %v is not the manifest's metrics port", ex)
	}
}

func readManifestString(t *testing.T) string { return string(readManifest(t)) }
