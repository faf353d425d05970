package packet

import (
	"encoding/binary"

	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// TCP flag bits, as found in byte 13 of the TCP header (RFC 9293 §3.1,
// RFC 3168 §6.1 for ECE and CWR). Test flags with a mask, never with ==:
// ECN-capable handshakes set ECE and CWR alongside SYN.
const (
	FlagFIN uint8 = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

// TCPHeaderLen is the length of a TCP header without options.
const TCPHeaderLen = 20

// Offsets of the fields in a TCP header.
const (
	tcpSrcPort  = 0
	tcpDstPort  = 2
	tcpSeq      = 4
	tcpAck      = 8
	tcpDataOff  = 12
	tcpFlags    = 13
	tcpWindow   = 14
	tcpChecksum = 16
	tcpUrgent   = 18
)

// TCP is a view of a TCP segment: the header, its options and the payload.
//
// A TCP obtained from Parse is at least 20 bytes long and its data offset is
// valid, so every method is safe on it. The fixed-field getters and setters
// panic on a slice shorter than 20 bytes (a programmer error); Options and
// Payload never panic.
type TCP []byte

// SrcPort returns the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[tcpSrcPort:]) }

// DstPort returns the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[tcpDstPort:]) }

// Seq returns the sequence number.
func (t TCP) Seq() seq.Value { return seq.Value(binary.BigEndian.Uint32(t[tcpSeq:])) }

// Ack returns the acknowledgment number (meaningful when FlagACK is set).
func (t TCP) Ack() seq.Value { return seq.Value(binary.BigEndian.Uint32(t[tcpAck:])) }

// DataOffset returns the header length in bytes (the data offset field
// times 4), options included.
func (t TCP) DataOffset() int { return int(t[tcpDataOff]>>4) * 4 }

// Flags returns the eight flag bits of byte 13 (FlagFIN ... FlagCWR).
func (t TCP) Flags() uint8 { return t[tcpFlags] }

// HasFlags reports whether every bit of mask is set.
func (t TCP) HasFlags(mask uint8) bool { return t[tcpFlags]&mask == mask }

// Window returns the raw (unscaled) window field.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[tcpWindow:]) }

// Checksum returns the checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[tcpChecksum:]) }

// Urgent returns the urgent pointer field.
func (t TCP) Urgent() uint16 { return binary.BigEndian.Uint16(t[tcpUrgent:]) }

// headerLen returns the header length clamped to [20, len(t)], so that
// slicing with it never panics even on a view that Parse did not check.
func (t TCP) headerLen() int {
	if len(t) < TCPHeaderLen {
		return len(t)
	}
	off := t.DataOffset()
	if off < TCPHeaderLen {
		return TCPHeaderLen
	}
	return min(off, len(t))
}

// Options returns the raw option bytes between the fixed header and the
// payload. The slice aliases t; writing to it rewrites the options in place.
func (t TCP) Options() []byte {
	if len(t) < TCPHeaderLen {
		return nil
	}
	return t[TCPHeaderLen:t.headerLen()]
}

// Payload returns the segment data after the header. The slice aliases t.
func (t TCP) Payload() []byte { return t[t.headerLen():] }

// SetSrcPort sets the source port. It does not update the checksum.
func (t TCP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(t[tcpSrcPort:], p) }

// SetDstPort sets the destination port. It does not update the checksum.
func (t TCP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(t[tcpDstPort:], p) }

// SetSeq sets the sequence number. It does not update the checksum.
func (t TCP) SetSeq(v seq.Value) { binary.BigEndian.PutUint32(t[tcpSeq:], uint32(v)) }

// SetAck sets the acknowledgment number. It does not update the checksum.
func (t TCP) SetAck(v seq.Value) { binary.BigEndian.PutUint32(t[tcpAck:], uint32(v)) }

// SetFlags sets the eight flag bits of byte 13. It does not update the
// checksum.
func (t TCP) SetFlags(f uint8) { t[tcpFlags] = f }

// SetWindow sets the raw window field. It does not update the checksum.
func (t TCP) SetWindow(w uint16) { binary.BigEndian.PutUint16(t[tcpWindow:], w) }

// SetChecksum sets the checksum field.
func (t TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(t[tcpChecksum:], c) }

// SetUrgent sets the urgent pointer. It does not update the checksum.
func (t TCP) SetUrgent(u uint16) { binary.BigEndian.PutUint16(t[tcpUrgent:], u) }
