package main

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The client opens every connection with a fixed header that tells the server
// what to expect and what to send:
//
//	"XFR1" | up uint64 | down uint64 | id uint32 | flags uint32   (big endian)
//
// Then the client sends up bytes of stream id while the server sends down
// bytes of stream id|downBit, at the same time. When both directions are
// complete, each side looks up its session id; the server then sends one
// syncByte, after which the client closes (FIN) and the server answers with
// its own FIN. The data is not followed by FIN directly so that the
// connection stays open, and tracked by the daemons, while both ends ask for
// their session ids.

const (
	headerLen = 28
	magic     = "XFR1"
	// downBit marks the server-to-client stream of a connection.
	downBit = uint32(1) << 31
	// syncByte is sent by the server after its session id lookup.
	syncByte = 'K'
)

// Header flags.
const (
	// flagRaw: the streams are a fixed repeating buffer, not checked and not
	// hashed (benchmarks).
	flagRaw uint32 = 1 << 0
	// flagFile: the client's stream is a file, not the pattern: the server
	// hashes it (and may save it) but does not check it.
	flagFile uint32 = 1 << 1
	flagAll         = flagRaw | flagFile
)

// errHeader matches errors of parseHeader.
var errHeader = errors.New("xfer: bad header")

// header is the connection's opening message.
type header struct {
	Up, Down uint64
	ID       uint32
	Flags    uint32
}

// maxStream bounds each direction (1 TiB): a garbled header must not make a
// server send forever.
const maxStream = 1 << 40

func (h header) marshal() []byte {
	b := make([]byte, headerLen)
	copy(b, magic)
	binary.BigEndian.PutUint64(b[4:], h.Up)
	binary.BigEndian.PutUint64(b[12:], h.Down)
	binary.BigEndian.PutUint32(b[20:], h.ID)
	binary.BigEndian.PutUint32(b[24:], h.Flags)
	return b
}

// parseHeader decodes a header of exactly headerLen bytes.
func parseHeader(b []byte) (header, error) {
	if len(b) != headerLen {
		return header{}, fmt.Errorf("%w: %d bytes, want %d", errHeader, len(b), headerLen)
	}
	if string(b[:4]) != magic {
		return header{}, fmt.Errorf("%w: magic %q", errHeader, b[:4])
	}
	h := header{
		Up:    binary.BigEndian.Uint64(b[4:]),
		Down:  binary.BigEndian.Uint64(b[12:]),
		ID:    binary.BigEndian.Uint32(b[20:]),
		Flags: binary.BigEndian.Uint32(b[24:]),
	}
	switch {
	case h.Up > maxStream || h.Down > maxStream:
		return header{}, fmt.Errorf("%w: stream lengths %d/%d over %d", errHeader, h.Up, h.Down, uint64(maxStream))
	case h.Flags&^flagAll != 0:
		return header{}, fmt.Errorf("%w: unknown flags %#x", errHeader, h.Flags)
	case h.ID&downBit != 0:
		return header{}, fmt.Errorf("%w: stream id %#x has the down bit", errHeader, h.ID)
	}
	return h, nil
}
