// Package eno implements TCP-ENO, the TCP Encryption Negotiation Option of
// RFC 8547, for a userspace rewriter: the SYN-form and non-SYN-form option
// codec, option-area scanning, the choice of roles and of the negotiated TEP,
// and the negotiation transcript.
//
// Everything here is pure: no I/O, no goroutines, no clock, no logging. The
// package never panics on bytes that came from the network; parse failures are
// reported with sentinel errors (all of them match ErrMalformed) and
// negotiation failures with a FallbackReason.
//
// Ownership: ParseSYN does not copy. The Option it returns (its Raw field and
// every Suboption.Data) aliases the caller's buffer; call Option.Clone before
// that buffer is reused. Result.Transcript from Negotiate is always a fresh
// copy, as are the suboption data in a Result.
package eno
