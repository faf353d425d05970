// Package creply exposes libtcpcrypt's C reply reader (src/reply.c) to Go
// through cgo, for the fuzz target that compares it with encoding/json.
// Without cgo (no C compiler, CGO_ENABLED=0) the package is empty and its
// tests are left out; libtcpcrypt's own tests then fail or skip through
// internal/testenv.
package creply
