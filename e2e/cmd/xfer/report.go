package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Report is one JSON line on standard output.
type Report struct {
	// Event is "listening" (server ready), "conn" (one connection done),
	// "held" (one connection reached its hold point: data through, session
	// looked up, still open), "holding" (every connection is open and
	// waiting for stdin to close), or "summary".
	Event string `json:"event"`
	Side  string `json:"side"` // "client" or "server"
	Addr  string `json:"addr,omitempty"`

	ID         uint32  `json:"id,omitempty"`
	Local      string  `json:"local,omitempty"`
	Remote     string  `json:"remote,omitempty"`
	Sent       uint64  `json:"sent,omitempty"`
	Received   uint64  `json:"received,omitempty"`
	SentSHA256 string  `json:"sent_sha256,omitempty"`
	RecvSHA256 string  `json:"recv_sha256,omitempty"`
	Verified   bool    `json:"verified,omitempty"` // every received byte was the expected stream byte
	SessionID  string  `json:"session_id,omitempty"`
	Role       string  `json:"role,omitempty"`
	TEP        string  `json:"tep,omitempty"`
	AEAD       string  `json:"aead,omitempty"`
	SessErr    string  `json:"sess_err,omitempty"`
	Phase      string  `json:"phase,omitempty"` // where Err happened
	Err        string  `json:"err,omitempty"`
	Errno      string  `json:"errno,omitempty"` // ECONNRESET, ECONNABORTED, ECONNREFUSED, ETIMEDOUT, EPIPE, EHOSTUNREACH, timeout, EOF
	Seconds    float64 `json:"seconds,omitempty"`
	// FirstByteMS (client) is the time from the start of the dial to the
	// first byte from the server, in milliseconds: handshake, header and
	// the server's first write.
	FirstByteMS float64 `json:"first_byte_ms,omitempty"`

	// Summary members.
	Conns     int     `json:"conns,omitempty"`
	OK        int     `json:"ok,omitempty"`
	Failed    int     `json:"failed,omitempty"`
	Encrypted int     `json:"encrypted,omitempty"`
	Bytes     uint64  `json:"bytes,omitempty"`
	MbitPerS  float64 `json:"mbit_per_s,omitempty"`
	ConnsPerS float64 `json:"conns_per_s,omitempty"`
	// FirstByteP50MS and FirstByteP99MS (client) are percentiles of
	// FirstByteMS over the completed connections that received data.
	FirstByteP50MS float64        `json:"first_byte_p50_ms,omitempty"`
	FirstByteP99MS float64        `json:"first_byte_p99_ms,omitempty"`
	Errors         map[string]int `json:"errors,omitempty"`
}

// ok reports whether the connection completed without any error.
func (r *Report) ok() bool { return r.Err == "" }

// fail records the first error and the phase it happened in.
func (r *Report) fail(phase string, err error) {
	if r.Err != "" || err == nil {
		return
	}
	r.Phase, r.Err, r.Errno = phase, err.Error(), errnoName(err)
}

// errnoName classifies err for tests that expect a reset or a refusal.
func errnoName(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "ECONNRESET"
	case errors.Is(err, syscall.ECONNABORTED):
		return "ECONNABORTED"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "ECONNREFUSED"
	case errors.Is(err, syscall.ETIMEDOUT):
		return "ETIMEDOUT"
	case errors.Is(err, syscall.EPIPE):
		return "EPIPE"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "EHOSTUNREACH"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return ""
}

// printer writes reports as JSON lines, one at a time.
type printer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newPrinter(w io.Writer) *printer { return &printer{enc: json.NewEncoder(w)} }

func (p *printer) print(r *Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enc.Encode(r); err != nil {
		// Standard output is gone: nobody reads the results any more.
		os.Exit(3)
	}
}
