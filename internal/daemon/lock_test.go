package daemon

import (
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockStateFile: a second daemon on the same state file is refused with
// an error naming the file; after the first lets go, the lock is free.
func TestLockStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "rules.json")
	log := slog.New(slog.DiscardHandler)
	unlock, err := lockStateFile(path, log)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockStateFile(path, log)
	if !errors.Is(err, ErrStateInUse) || !strings.Contains(err.Error(), path+" is locked") {
		t.Fatalf("second lock: %v; want ErrStateInUse naming %s", err, path)
	}
	unlock()
	unlock2, err := lockStateFile(path, log)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
	// Another state file in the same directory is independent.
	other := filepath.Join(filepath.Dir(path), "other.json")
	u1, err1 := lockStateFile(path, log)
	u2, err2 := lockStateFile(other, log)
	if err1 != nil || err2 != nil {
		t.Fatalf("two state files in one directory: %v, %v", err1, err2)
	}
	u1()
	u2()
}
