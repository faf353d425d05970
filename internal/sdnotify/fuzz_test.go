package sdnotify

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

// FuzzWatchdogInterval checks the parser of $WATCHDOG_USEC/$WATCHDOG_PID:
// never a panic, a negative interval, or an unmarked error, and an accepted
// value means what it says.
func FuzzWatchdogInterval(f *testing.F) {
	for _, s := range [][2]string{{"", ""}, {"30000000", ""}, {"1", "7"}, {"0", ""}, {"18446744073709551615", ""}, {"+5", ""}, {"5", "-1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, usec, pid string) {
		const self = 7
		d, err := watchdogInterval(usec, pid, self)
		if err != nil {
			if !errors.Is(err, ErrBadWatchdog) || d != 0 {
				t.Fatalf("(%q, %q): %v, %v", usec, pid, d, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("(%q, %q): negative interval %v", usec, pid, d)
		}
		if d > 0 {
			n, perr := strconv.ParseUint(usec, 10, 64)
			if perr != nil || time.Duration(n)*time.Microsecond != d {
				t.Fatalf("(%q, %q) = %v, but the value says %q", usec, pid, d, usec)
			}
			if pid != "" && pid != strconv.Itoa(self) {
				p, _ := strconv.Atoi(pid)
				if p != self {
					t.Fatalf("(%q, %q) = %v for another process", usec, pid, d)
				}
			}
		}
	})
}
