// Package crypto implements the cryptographic half of tcpcrypt (RFC 8548):
// key agreement for the four tcpcrypt TEPs, the Extract/CPRF key derivation,
// the Init1/Init2 key-exchange messages, the key schedule (session secrets,
// master keys, traffic keys, session ids, resumption ids), encryption frames
// with a streaming decoder and an encoder, and a bounded in-memory cache of
// session secrets for resumption.
//
// The package is pure: it does no I/O, starts no goroutines and reads no
// clock or randomness except what the caller injects. Nothing derived from
// the network can make it panic; malformed input is reported with the
// sentinel errors below, wrapped with context.
//
// Byte layouts follow RFC 8548 §4 and the project digest
// (docs: ../shared/spec/tcpcrypt-rfc-digest.md §2); where the RFC is silent
// the choice made here is documented on the identifier concerned.
package crypto
