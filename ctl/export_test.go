package ctl

// TrustTestServer makes a zero Dialer.DaemonUID mean uid rather than root
// until the returned function is called.
func TrustTestServer(uid uint32) (restore func()) {
	old := testDaemonUID
	testDaemonUID = uid
	return func() { testDaemonUID = old }
}
