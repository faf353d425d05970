package bind

import (
	"context"
	"net"
)

// SetSessionSource replaces the daemon lookup for the tests of package
// bind_test and returns a function that puts the real one back.
func SetSessionSource(f func(ctx context.Context, conn net.Conn) (sid []byte, isA bool, err error)) (restore func()) {
	old := sessionSource
	sessionSource = f
	return func() { sessionSource = old }
}
