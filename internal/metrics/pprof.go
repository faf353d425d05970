package metrics

import (
	"net/http"
	"net/http/pprof"
	"time"
)

// PprofPath is the prefix under which ListenPprof serves the Go runtime's
// profiles (net/http/pprof): the index, cmdline, profile, symbol and trace,
// and the named profiles (heap, goroutine, allocs, ...) through the index.
const PprofPath = "/debug/pprof/"

// pprofWriteTimeout bounds a response of the profiling endpoint: a CPU
// profile or a trace takes as long as it was asked to run (?seconds=N, 30 by
// default), so N may be at most 110.
const pprofWriteTimeout = 2 * time.Minute

// withPprof serves the profiling handlers under PprofPath and h at every
// other path.
func withPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PprofPath, pprof.Index)
	mux.HandleFunc(PprofPath+"cmdline", pprof.Cmdline)
	mux.HandleFunc(PprofPath+"profile", pprof.Profile)
	mux.HandleFunc(PprofPath+"symbol", pprof.Symbol)
	mux.HandleFunc(PprofPath+"trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

// ListenPprof is Listen with the profiling handlers added under PprofPath
// (the daemon's --pprof), and a write timeout long enough for a CPU profile.
// Profiles show the daemon's code paths and timing, nothing of the traffic's
// content, but they cost CPU while they run: listen on a local address.
func ListenPprof(addr string, h http.Handler) (*Server, error) {
	s, err := Listen(addr, withPprof(h))
	if err != nil {
		return nil, err
	}
	s.srv.WriteTimeout = pprofWriteTimeout
	return s, nil
}
