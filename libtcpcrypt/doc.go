// Package libtcpcrypt holds the tests of libtcpcrypt, the C library with
// the original libtcpcrypt API (tcpcrypt/tcpcrypt.h) that applications in C
// and other languages use to get the session ids of their connections from
// tcpcryptd. The library itself is C: include/, src/, built by `make
// libtcpcrypt` (mk/libtcpcrypt.mk) and documented in libtcpcrypt(3) and
// docs/libtcpcrypt.md.
//
// The tests compile the C sources with gcc (they skip, or fail under
// TCPCRYPT_REQUIRE_ROOT_TESTS=1, when it is missing): the reply reader's
// unit tests (tests/reply_test.c), and tests/tcprobe.c, a program using only
// the public header, run against the daemon's control server (internal/ctlserver) with a
// scripted backend, and against fake daemons that stay silent, close, or
// answer garbage. Package internal/creply drives the reply reader from a Go
// fuzz target.
package libtcpcrypt
