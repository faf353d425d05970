package packet

import (
	"errors"
	"fmt"
)

// Sentinel errors. Parse and the builders return these directly or wrapped
// with context; match them with errors.Is.
var (
	// ErrTruncated means the buffer is shorter than a header or a length
	// field says it should be.
	ErrTruncated = errors.New("packet: truncated")
	// ErrNotTCP means the IP packet carries a protocol other than TCP.
	ErrNotTCP = errors.New("packet: not TCP")
	// ErrIPv6ExtHeader means an IPv6 packet has an extension header before
	// TCP. See Parse for why these are refused.
	ErrIPv6ExtHeader = errors.New("packet: IPv6 extension header")
	// ErrFragment means an IPv4 packet is a fragment (MF set or a non-zero
	// fragment offset); only whole TCP segments can be rewritten.
	ErrFragment = errors.New("packet: IPv4 fragment")
	// ErrBadHeader means a header field is inconsistent: wrong IP version,
	// IPv4 IHL below 5 or beyond the total length, TCP data offset below 20,
	// or Fields that cannot describe a packet.
	ErrBadHeader = errors.New("packet: bad header")
	// ErrOptionsTooLong means a TCP option area would exceed MaxOptionsLen
	// bytes, or an option does not fit in what is left of it.
	ErrOptionsTooLong = errors.New("packet: TCP options too long")
	// ErrBadOption means a TCP option is malformed: its length byte is
	// missing, below 2, or runs past the end of the option area.
	ErrBadOption = errors.New("packet: malformed TCP option")
	// ErrTooLarge means a packet to be built would not fit the 16-bit
	// length field of its IP header.
	ErrTooLarge = errors.New("packet: packet too large")
)

// Wrapped errors with context, prepared once so that returning them does not
// allocate on the packet path.
var (
	errEmpty          = fmt.Errorf("packet: empty buffer: %w", ErrTruncated)
	errVersion        = fmt.Errorf("packet: IP version not 4 or 6: %w", ErrBadHeader)
	errIPv4Short      = fmt.Errorf("packet: IPv4 header: %w", ErrTruncated)
	errIPv4IHL        = fmt.Errorf("packet: IPv4 IHL below 5: %w", ErrBadHeader)
	errIPv4TotalLen   = fmt.Errorf("packet: IPv4 total length below header length: %w", ErrBadHeader)
	errIPv4Beyond     = fmt.Errorf("packet: IPv4 total length beyond buffer: %w", ErrTruncated)
	errIPv4Proto      = fmt.Errorf("packet: IPv4 protocol: %w", ErrNotTCP)
	errIPv6Short      = fmt.Errorf("packet: IPv6 header: %w", ErrTruncated)
	errIPv6Beyond     = fmt.Errorf("packet: IPv6 payload length beyond buffer: %w", ErrTruncated)
	errIPv6Next       = fmt.Errorf("packet: IPv6 next header: %w", ErrNotTCP)
	errTCPShort       = fmt.Errorf("packet: TCP header: %w", ErrTruncated)
	errTCPOffset      = fmt.Errorf("packet: TCP data offset below 5: %w", ErrBadHeader)
	errTCPOffBeyond   = fmt.Errorf("packet: TCP data offset beyond segment: %w", ErrTruncated)
	errOptShort       = fmt.Errorf("packet: TCP option length byte missing: %w", ErrBadOption)
	errOptLen         = fmt.Errorf("packet: TCP option length below 2: %w", ErrBadOption)
	errOptOverrun     = fmt.Errorf("packet: TCP option runs past the option area: %w", ErrBadOption)
	errOptSingle      = fmt.Errorf("packet: EOL/NOP option with data: %w", ErrBadOption)
	errOptDataLen     = fmt.Errorf("packet: TCP option data over 253 bytes: %w", ErrBadOption)
	errOptRawLen      = fmt.Errorf("packet: raw TCP option length byte disagrees with its size: %w", ErrBadOption)
	errOptNoFit       = fmt.Errorf("packet: TCP option does not fit in the 40-byte area: %w", ErrOptionsTooLong)
	errOptArea        = fmt.Errorf("packet: TCP option area over 40 bytes: %w", ErrOptionsTooLong)
	errOptPad         = fmt.Errorf("packet: TCP option area not a multiple of 4 bytes: %w", ErrBadHeader)
	errFamily         = fmt.Errorf("packet: source and destination are not one IP family: %w", ErrBadHeader)
	errIPv4TooLarge   = fmt.Errorf("packet: IPv4 total length over 65535: %w", ErrTooLarge)
	errIPv6TooLarge   = fmt.Errorf("packet: IPv6 payload length over 65535: %w", ErrTooLarge)
	errRebuildVersion = fmt.Errorf("packet: Rebuild of a packet that was not parsed: %w", ErrBadHeader)
)
