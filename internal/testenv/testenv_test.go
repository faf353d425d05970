package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestHelperSkip is run by TestSkipBecomesFailure in a subprocess.
func TestHelperSkip(t *testing.T) {
	if os.Getenv("TESTENV_HELPER") != "1" {
		t.Skip("helper for TestSkipBecomesFailure")
	}
	Skip(t, "no frobnicator")
}

func TestSkipBecomesFailure(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		require  string
		wantFail bool
		want     string
	}{
		{"", false, "--- SKIP: TestHelperSkip"},
		{"0", false, "--- SKIP: TestHelperSkip"},
		{"1", true, "--- FAIL: TestHelperSkip"},
	} {
		cmd := exec.Command(self, "-test.run=^TestHelperSkip$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_HELPER=1", RequireEnv+"="+tt.require)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tt.wantFail {
			t.Errorf("%s=%q: failed=%v, want %v\n%s", RequireEnv, tt.require, failed, tt.wantFail, out)
		}
		if !strings.Contains(string(out), tt.want) || !strings.Contains(string(out), "no frobnicator") {
			t.Errorf("%s=%q: output lacks %q and the message:\n%s", RequireEnv, tt.require, tt.want, out)
		}
	}
}
