// Package packet provides allocation-free views over IPv4 and IPv6 packets
// that carry TCP, together with TCP option parsing and building, Internet
// checksums and a small packet builder.
//
// It is the lowest layer of tcpcryptd: it knows the wire formats of RFC 791
// (IPv4), RFC 8200 (IPv6) and RFC 9293 (TCP), and nothing about TCP-ENO or
// tcpcrypt. Everything here is pure: no I/O, no goroutines, no logging.
//
// Parsing never panics and never allocates. A packet that cannot be handled
// safely is reported with one of the sentinel errors (ErrTruncated,
// ErrNotTCP, ErrIPv6ExtHeader, ErrFragment, ErrBadHeader), so that the caller
// can count it and decide to pass or drop it.
//
// Views alias the buffer they were parsed from: setters write into that
// buffer, and any change to it is visible through the views.
package packet
