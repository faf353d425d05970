package pcapio

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Writer writes a pcap file (microsecond timestamps, little-endian).
type Writer struct {
	w    io.Writer
	snap uint32
	hdr  [16]byte
}

// NewWriter writes the pcap file header for link type link and returns
// a Writer. Packets longer than snap are cut (0 means 262144).
func NewWriter(w io.Writer, link uint32, snap uint32) (*Writer, error) {
	if snap == 0 {
		snap = 262144
	}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snap)
	binary.LittleEndian.PutUint32(h[20:], link)
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcapio: write header: %w", err)
	}
	return &Writer{w: w, snap: snap}, nil
}

// WritePacket appends one packet captured at t.
func (w *Writer) WritePacket(t time.Time, data []byte) error {
	orig := len(data)
	if uint32(len(data)) > w.snap {
		data = data[:w.snap]
	}
	binary.LittleEndian.PutUint32(w.hdr[0:], uint32(t.Unix()))
	binary.LittleEndian.PutUint32(w.hdr[4:], uint32(t.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(w.hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(w.hdr[12:], uint32(orig))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return fmt.Errorf("pcapio: write record: %w", err)
	}
	if _, err := w.w.Write(data); err != nil {
		return fmt.Errorf("pcapio: write record: %w", err)
	}
	return nil
}
