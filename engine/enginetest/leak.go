package enginetest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// leakGrace is how long CheckLeaks waits for goroutines to finish.
const leakGrace = 5 * time.Second

// CheckLeaks records the running goroutines and registers a tb.Cleanup that
// fails tb if, after a grace period, new goroutines remain whose stacks run
// gVisor or this package's code (pumps, links, tickers, test helpers). Call
// it before creating the Pair, so that the Pair's own Cleanup (Close) runs
// first. It cannot tell tests apart: do not use it in parallel tests.
func CheckLeaks(tb testing.TB) {
	tb.Helper()
	before := goroutineIDs()
	tb.Cleanup(func() {
		deadline := time.Now().Add(leakGrace)
		for {
			leaked := leakedStacks(before)
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				tb.Errorf("enginetest: %d goroutine(s) leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// allStacks returns the stack dump of every goroutine, one entry each; the
// first is the caller's.
func allStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineID extracts N from a stack entry starting "goroutine N [".
func goroutineID(stack string) string {
	rest, ok := strings.CutPrefix(stack, "goroutine ")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, " ")
	return id
}

func goroutineIDs() map[string]bool {
	ids := map[string]bool{}
	for _, s := range allStacks() {
		ids[goroutineID(s)] = true
	}
	return ids
}

// leakedStacks returns the stacks of goroutines not in before (other than
// the caller) that run gVisor or enginetest code.
func leakedStacks(before map[string]bool) []string {
	var out []string
	for i, s := range allStacks() {
		if i == 0 || before[goroutineID(s)] {
			continue
		}
		if strings.Contains(s, "gvisor.dev/gvisor/") || strings.Contains(s, "/engine/enginetest.") {
			out = append(out, s)
		}
	}
	return out
}
