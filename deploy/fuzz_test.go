package deploy

import (
	"os"
	"testing"
)

// The parsers must not panic on any input, and what they accept must hold
// together.
func FuzzParseContainerfile(f *testing.F) {
	if b, err := os.ReadFile("Containerfile"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ins, err := ParseContainerfile(b)
		if err != nil {
			return
		}
		for _, in := range ins {
			if in.Cmd == "" || in.Args == "" || in.Line < 1 {
				t.Fatalf("accepted an empty instruction %+v", in)
			}
			_ = CopySources(in)
		}
	})
}

func FuzzParseHelp(f *testing.F) {
	f.Add([]byte(helpSample))
	f.Fuzz(func(t *testing.T, b []byte) {
		flags, err := ParseHelp(b)
		if err != nil {
			return
		}
		for k, fl := range flags {
			if k == "" || fl.Name == "" {
				t.Fatalf("accepted a flag without a name: %q %+v", k, fl)
			}
		}
		_, _ = flags.ParseArgs([]string{"--" + string(b)})
		_, _ = flags.ParseConfigFile(b)
	})
}

func FuzzLoadManifests(f *testing.F) {
	for _, name := range []string{manifestFile, "testdata/broken.yaml"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := LoadManifests(b)
		if err != nil {
			return
		}
		// Check must not panic on whatever loaded.
		_ = Check(m, Daemon{Entrypoint: []string{"/usr/sbin/tcpcryptd"}, Flags: Flags{}})
	})
}
