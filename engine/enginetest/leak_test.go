package enginetest

import (
	"testing"
	"time"
)

// TestLeakDetection checks that the leak filter sees a live Pair's
// goroutines, and none once it is closed.
func TestLeakDetection(t *testing.T) {
	before := goroutineIDs()
	p, err := New(Config{A: HostConfig{Middle: PassThrough{}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(leakedStacks(before)); n < 5 { // 2 pumps, 2 links, 1 ticker
		t.Errorf("%d goroutines seen while the Pair runs, want >= 5", n)
	}
	p.Close()
	p.Close() // idempotent
	deadline := time.Now().Add(leakGrace)
	for len(leakedStacks(before)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after Close:\n%v", leakedStacks(before))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewRejectsPartialChecksumWithoutGSO(t *testing.T) {
	if _, err := New(Config{B: HostConfig{GSOPartialChecksum: true}}); err == nil {
		t.Fatal("New accepted GSOPartialChecksum without GSO")
	}
}
