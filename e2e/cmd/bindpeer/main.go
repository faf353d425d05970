// Command bindpeer is the e2e tests' application for package ctl/bind: it
// opens or accepts one TCP connection, runs bind.PSK on it, and prints one
// JSON line with the outcome and the connection's SAS. As relay it
// terminates one connection and opens another to a target, forwarding
// bytes both ways, as a man in the middle would. The daemon is found
// through $TCPCRYPT_CTL, as in any application.
//
//	bindpeer listen -l ADDR -key HEX
//	bindpeer dial   -c ADDR -key HEX
//	bindpeer relay  -l ADDR -c TARGET
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl/bind"
)

// result is the JSON line printed at the end (and "listening" at start).
type result struct {
	Event  string `json:"event"`
	Side   string `json:"side,omitempty"`
	Local  string `json:"local,omitempty"`
	Remote string `json:"remote,omitempty"`
	OK     bool   `json:"ok"`
	Kind   string `json:"kind,omitempty"` // which sentinel the error matched
	Err    string `json:"err,omitempty"`
	SAS    string `json:"sas,omitempty"`
	SASErr string `json:"sas_err,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bindpeer listen|dial|relay [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	listen := fs.String("l", "", "address to listen on")
	connect := fs.String("c", "", "address to connect to")
	keyHex := fs.String("key", "", "shared key, hex")
	timeout := fs.Duration("timeout", 15*time.Second, "bound on PSK")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "listen":
		err = serve(*listen, *keyHex, *timeout)
	case "dial":
		err = dial(*connect, *keyHex, *timeout)
	case "relay":
		err = relay(*listen, *connect)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bindpeer:", err)
		os.Exit(1)
	}
}

func emit(r result) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

func serve(addr, keyHex string, d time.Duration) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	emit(result{Event: "listening", Local: l.Addr().String()})
	c, err := l.Accept()
	if err != nil {
		return err
	}
	return run("server", c, keyHex, d)
}

func dial(addr, keyHex string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return err
	}
	return run("client", c, keyHex, d)
}

// run binds c and reports. The SAS is looked up after PSK (the session is
// established by then, or PSK said why not).
func run(side string, c net.Conn, keyHex string, d time.Duration) error {
	defer c.Close()
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		return fmt.Errorf("-key: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r := result{Event: "result", Side: side, Local: c.LocalAddr().String(), Remote: c.RemoteAddr().String()}
	err = bind.PSK(ctx, c, key)
	r.OK, r.Kind = err == nil, kind(err)
	if err != nil {
		r.Err = err.Error()
	}
	sas, err := bind.ConnSAS(ctx, c)
	r.SAS = sas
	if err != nil {
		r.SASErr = err.Error()
	}
	emit(r)
	return nil
}

// kind names the bind sentinel err matches ("" for nil).
func kind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, bind.ErrSameRole):
		return "same_role"
	case errors.Is(err, bind.ErrMismatch):
		return "mismatch"
	case errors.Is(err, bind.ErrNotEncrypted):
		return "not_encrypted"
	case errors.Is(err, bind.ErrTimeout):
		return "timeout"
	case errors.Is(err, bind.ErrProtocol):
		return "protocol"
	}
	return "other"
}

// relay accepts one connection, opens one to target and copies both ways
// until both directions end.
func relay(listen, target string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	defer l.Close()
	emit(result{Event: "listening", Local: l.Addr().String()})
	in, err := l.Accept()
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		return err
	}
	defer out.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	go pipe(out, in)
	go pipe(in, out)
	wg.Wait()
	emit(result{Event: "relayed", Local: in.LocalAddr().String(), Remote: out.RemoteAddr().String(), OK: true})
	return nil
}
