package eno

import (
	"errors"
	"fmt"
)

// ErrMalformed matches every error ParseSYN and FindENO return for bytes that
// break RFC 8547 §4.1/§4.4 or the TCP option length rules. RFC 8547 §4.4 says
// such a SYN-form option must be ignored and encryption disabled. Each case
// also has its own sentinel below, so callers (and counters) can tell them
// apart with errors.Is.
var ErrMalformed = errors.New("eno: malformed option")

// Sentinels for the individual malformed cases. Errors returned by ParseSYN
// match ErrMalformed and exactly one of these.
var (
	// ErrTruncated: fewer than the two bytes (kind, length) of an option.
	ErrTruncated = errors.New("eno: option truncated before its length byte")
	// ErrNotENO: the kind byte is not 69.
	ErrNotENO = errors.New("eno: option kind is not 69")
	// ErrOptionLength: the option's length byte is below 2.
	ErrOptionLength = errors.New("eno: option length below 2")
	// ErrOptionOverrun: the option's length byte runs past the end of the buffer.
	ErrOptionOverrun = errors.New("eno: option length runs past the buffer")
	// ErrTrailingBytes: the buffer handed to ParseSYN is longer than the
	// option's length byte says (ParseSYN wants exactly one whole option).
	ErrTrailingBytes = errors.New("eno: bytes after the end of the option")
	// ErrTooLong: more than 38 bytes of contents (a TCP header holds at most
	// 40 option bytes). Marshal and BuildSYN return it too, without
	// ErrMalformed.
	ErrTooLong = errors.New("eno: contents longer than 38 bytes")
	// ErrLengthByteOverrun: a suboption length byte (0x80-0x9f) is the last
	// byte, or claims more data than the option holds (RFC 8547 §4.4 case 1).
	ErrLengthByteOverrun = errors.New("eno: suboption length byte runs past the option")
	// ErrLengthByteTarget: a suboption length byte is followed by a byte in
	// 0x00-0x9f, i.e. not by a TEP id with v=1 (RFC 8547 §4.4 case 2).
	ErrLengthByteTarget = errors.New("eno: suboption length byte not followed by a TEP id with v=1")
	// ErrOptionArea: a TCP option area has an option whose length byte is
	// missing, below 2, or runs past the end of the area (FindENO).
	ErrOptionArea = errors.New("eno: malformed TCP option area")
)

// Errors for building options (Marshal, BuildSYN, Config.Validate). These are
// programmer or configuration errors, not malformed input.
var (
	// ErrBadTEP: a TEP id outside 0x20..0x7f.
	ErrBadTEP = errors.New("eno: TEP id outside 0x20..0x7f")
	// ErrBadSuboption: a suboption that cannot be encoded: data on a v=0
	// suboption, or a data-carrying suboption that is not last with 0 or more
	// than 32 bytes of data (a length byte encodes 1..32).
	ErrBadSuboption = errors.New("eno: suboption cannot be encoded")
	// ErrBadGlobal: a global suboption byte above 0x1f.
	ErrBadGlobal = errors.New("eno: global suboption above 0x1f")
	// ErrNoSpace: BuildSYN could not fit even one TEP suboption, or the
	// caller's extra suboptions alone, into the space budget.
	ErrNoSpace = errors.New("eno: not enough TCP option space")
	// ErrNoTEP: BuildSYN was asked to offer no TEP at all.
	ErrNoTEP = errors.New("eno: no TEP to offer")
)

// ParseError is the error type of ParseSYN and FindENO. It matches
// ErrMalformed and its specific sentinel Err.
type ParseError struct {
	Offset int   // byte offset of the problem inside the parsed buffer
	Err    error // one of the specific sentinels above
}

// Error describes the case and where in the buffer it was found.
func (e *ParseError) Error() string {
	return fmt.Sprintf("%v at byte %d", e.Err, e.Offset)
}

// Unwrap lets errors.Is match both ErrMalformed and the specific sentinel.
func (e *ParseError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

func malformed(off int, err error) error { return &ParseError{Offset: off, Err: err} }
