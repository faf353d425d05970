// Package vectors generates the tcpcrypt test vectors of
// testdata/vectors/tcpcrypt.json from fixed keys, nonces and plaintexts
// (no randomness), so the generator command and the tests in crypto/ share
// one definition. Values that no RFC fixes are derived as SHA-256 (or
// SHA-512) of a fixed ASCII label; the X25519 and X448 cases use the key
// pairs of RFC 7748 §6.1 and §6.2 so their ES can be checked against that
// RFC.
package vectors

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/tcpcryptd/tcpcrypt/crypto"
)

// File is the top level of tcpcrypt.json.
type File struct {
	Version int    `json:"version"`
	Cases   []Case `json:"cases"`
}

// Case is one connection. Byte strings are lowercase hex. Fields marked
// fresh-only are empty (and omitted) in resumed cases, and vice versa.
type Case struct {
	Name    string `json:"name"`
	TEP     uint8  `json:"tep"`
	AEAD    uint16 `json:"aead"`
	Resumed bool   `json:"resumed"`
	// Fresh only. X25519/X448: RFC 7748 scalar bytes; P-256/P-521:
	// big-endian scalar.
	PrivA string `json:"priv_a,omitempty"`
	PrivB string `json:"priv_b,omitempty"`
	NA    string `json:"n_a,omitempty"`
	NB    string `json:"n_b,omitempty"`
	// ENO options (kind, length, contents) of A's SYN and B's SYN-ACK.
	EnoA string `json:"eno_a"`
	EnoB string `json:"eno_b"`
	// Fresh only: the Init messages as transmitted, and ES.
	Init1 string `json:"init1,omitempty"`
	Init2 string `json:"init2,omitempty"`
	ES    string `json:"es,omitempty"`
	// Resumed only: ss[i-1] held by both hosts, and the resumption nonces
	// of the originally-A and originally-B hosts.
	SSPrev string `json:"ss_prev,omitempty"`
	NonceA string `json:"nonce_a,omitempty"`
	NonceB string `json:"nonce_b,omitempty"`
	// ss[i] keying this connection (ss[0] when fresh).
	SS        string  `json:"ss"`
	SessionID string  `json:"session_id"`
	ResumeID  string  `json:"resume_id"`
	Frames    []Frame `json:"frames"`
}

// Frame is one encryption frame of a case.
type Frame struct {
	Key        string `json:"key"` // "ab" or "ba"
	Generation uint32 `json:"generation"`
	Offset     uint64 `json:"offset"`
	Rekey      bool   `json:"rekey"`
	// Plaintext is the AEAD plaintext: flags, urgent field if URGp, data.
	Plaintext string `json:"plaintext"`
	// Wire is control | clen | ciphertext.
	Wire string `json:"wire"`
}

// frameSpec is one frame to seal: its direction, whether the sender raises
// its generation first, and the content.
type frameSpec struct {
	dir   crypto.Direction
	rekey bool
	plain crypto.Plain
}

type freshSpec struct {
	name         string
	tep          uint8
	ciphers      []crypto.AEADID // A's list
	prefs        []crypto.AEADID // B's order
	privA, privB []byte
	nA, nB       []byte
	enoA, enoB   []byte
	frames       []frameSpec
}

func label(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// nistScalar is a fixed scalar for P-256 (32 bytes) or P-521 (66 bytes,
// the two top bytes zero, so below the group order).
func nistScalar(tep uint8, s string) []byte {
	if tep == crypto.TEPP256 {
		return label(s)
	}
	h := sha512.Sum512([]byte(s))
	return append([]byte{0, 0}, h[:]...)
}

func data(s string) crypto.Plain { return crypto.Plain{Data: []byte(s)} }

func freshSpecs() []freshSpec {
	return []freshSpec{
		{
			name:    "x25519-fresh-aes128gcm",
			tep:     crypto.TEPX25519,
			ciphers: []crypto.AEADID{crypto.AES128GCM, crypto.ChaCha20Poly1305},
			prefs:   []crypto.AEADID{crypto.AES128GCM},
			// RFC 7748 §6.1.
			privA: unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
			privB: unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
			nA:    label("tcpcrypt vectors: x25519 N_A"),
			nB:    label("tcpcrypt vectors: x25519 N_B"),
			// Digest §3: A offers 0x23, 0x24, 0x21; B picks 0x23.
			enoA: []byte{0x45, 0x05, 0x23, 0x24, 0x21},
			enoB: []byte{0x45, 0x04, 0x01, 0x23},
			frames: []frameSpec{
				{dir: crypto.DirAB, plain: data("hello")},
				{dir: crypto.DirBA, plain: data("world")},
				{dir: crypto.DirAB, plain: crypto.Plain{URG: true, Urgent: 6, Data: []byte("urgent!")}},
				{dir: crypto.DirBA, plain: crypto.Plain{}},
				{dir: crypto.DirAB, plain: crypto.Plain{FIN: true}},
				{dir: crypto.DirBA, plain: crypto.Plain{FIN: true, Data: []byte("bye")}},
			},
		},
		{
			name:    "x448-fresh-chacha20poly1305-rekey",
			tep:     crypto.TEPX448,
			ciphers: []crypto.AEADID{crypto.ChaCha20Poly1305, crypto.AES128GCM},
			prefs:   []crypto.AEADID{crypto.ChaCha20Poly1305, crypto.AES128GCM},
			// RFC 7748 §6.2.
			privA: unhex("9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf574a9419744897391006382a6f127ab1d9ac2d8c0a598726b"),
			privB: unhex("1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d6927c120bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d"),
			nA:    label("tcpcrypt vectors: x448 N_A"),
			nB:    label("tcpcrypt vectors: x448 N_B"),
			// A sets the a bit (global 0x02) and offers 0x24 then 0x23.
			enoA: []byte{0x45, 0x05, 0x02, 0x24, 0x23},
			enoB: []byte{0x45, 0x04, 0x01, 0x24},
			frames: []frameSpec{
				{dir: crypto.DirAB, plain: data("generation zero")},
				{dir: crypto.DirBA, plain: data("reply in generation zero")},
				{dir: crypto.DirAB, rekey: true, plain: data("first frame of generation one")},
				{dir: crypto.DirAB, plain: data("second frame of generation one")},
				{dir: crypto.DirBA, rekey: true, plain: crypto.Plain{}}, // the answer to a rekey, empty
				{dir: crypto.DirBA, plain: crypto.Plain{FIN: true, Data: []byte("done")}},
				{dir: crypto.DirAB, plain: crypto.Plain{FIN: true}},
			},
		},
		{
			name: "p256-fresh-aes256gcm",
			tep:  crypto.TEPP256,
			// 0x7777 is unknown: skipped when B selects.
			ciphers: []crypto.AEADID{0x7777, crypto.AES256GCM, crypto.AES128GCM},
			prefs:   []crypto.AEADID{crypto.AES256GCM, crypto.AES128GCM},
			privA:   nistScalar(crypto.TEPP256, "tcpcrypt vectors: p256 private A"),
			privB:   nistScalar(crypto.TEPP256, "tcpcrypt vectors: p256 private B"),
			nA:      label("tcpcrypt vectors: p256 N_A"),
			nB:      label("tcpcrypt vectors: p256 N_B"),
			enoA:    []byte{0x45, 0x03, 0x21},
			enoB:    []byte{0x45, 0x04, 0x01, 0x21},
			frames: []frameSpec{
				{dir: crypto.DirAB, plain: data("GET / HTTP/1.0\r\n\r\n")},
				{dir: crypto.DirBA, plain: crypto.Plain{URG: true, Urgent: 0, Data: []byte("!")}},
				{dir: crypto.DirBA, plain: crypto.Plain{FIN: true, Data: bytes.Repeat([]byte("0123456789abcdef"), 20)}},
			},
		},
		{
			name:    "p521-fresh-aes128gcm",
			tep:     crypto.TEPP521,
			ciphers: []crypto.AEADID{crypto.AES128GCM},
			prefs:   []crypto.AEADID{crypto.ChaCha20Poly1305, crypto.AES128GCM},
			privA:   nistScalar(crypto.TEPP521, "tcpcrypt vectors: p521 private A"),
			privB:   nistScalar(crypto.TEPP521, "tcpcrypt vectors: p521 private B"),
			nA:      label("tcpcrypt vectors: p521 N_A"),
			nB:      label("tcpcrypt vectors: p521 N_B"),
			enoA:    []byte{0x45, 0x04, 0x22, 0x23},
			enoB:    []byte{0x45, 0x04, 0x01, 0x22},
			frames: []frameSpec{
				{dir: crypto.DirBA, plain: data("server speaks first")},
				{dir: crypto.DirAB, plain: crypto.Plain{FIN: true, URG: true, Urgent: 1, Data: []byte("ok")}},
			},
		},
	}
}

// sealFrames seals specs in order with one Encoder per direction, starting
// at offAB and offBA.
func sealFrames(s *crypto.Schedule, offAB, offBA uint64, specs []frameSpec) ([]Frame, error) {
	enc := map[crypto.Direction]*crypto.Encoder{
		crypto.DirAB: crypto.NewEncoder(s, crypto.DirAB, offAB),
		crypto.DirBA: crypto.NewEncoder(s, crypto.DirBA, offBA),
	}
	var out []Frame
	for i, f := range specs {
		e := enc[f.dir]
		if f.rekey && !e.Rekey() {
			return nil, fmt.Errorf("frame %d: rekey refused", i)
		}
		off := e.Offset()
		gen := e.Generation()
		rekey := e.RekeyPending()
		wire, err := e.Seal(nil, f.plain)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", i, err)
		}
		out = append(out, Frame{
			Key:        f.dir.String(),
			Generation: gen,
			Offset:     off,
			Rekey:      rekey,
			Plaintext:  hex.EncodeToString(PlaintextBytes(f.plain)),
			Wire:       hex.EncodeToString(wire),
		})
	}
	return out, nil
}

// PlaintextBytes encodes the AEAD plaintext of p: flags | urgent | data
// (RFC 8548 §4.2.1), independently of crypto's sealing code.
func PlaintextBytes(p crypto.Plain) []byte {
	var flags byte
	if p.FIN {
		flags |= 0x01
	}
	if p.URG {
		flags |= 0x02
	}
	b := []byte{flags}
	if p.URG {
		b = append(b, byte(p.Urgent>>8), byte(p.Urgent))
	}
	return append(b, p.Data...)
}

// fresh runs a fresh key exchange between A and B and returns the case
// and its ss[0].
func fresh(sp freshSpec) (Case, []byte, error) {
	ka, err := crypto.NewPrivateKey(sp.tep, sp.privA)
	if err != nil {
		return Case{}, nil, err
	}
	kb, err := crypto.NewPrivateKey(sp.tep, sp.privB)
	if err != nil {
		return Case{}, nil, err
	}
	m1 := crypto.Init1{Ciphers: sp.ciphers, Nonce: sp.nA, Pub: ka.Public()}
	init1 := m1.Marshal(nil)
	aead, ok := crypto.SelectCipher(sp.ciphers, sp.prefs)
	if !ok {
		return Case{}, nil, fmt.Errorf("%s: no common cipher", sp.name)
	}
	m2 := crypto.Init2{Cipher: aead, Nonce: sp.nB, Pub: kb.Public()}
	init2 := m2.Marshal(nil)
	esA, err := ka.ECDH(kb.Public())
	if err != nil {
		return Case{}, nil, err
	}
	esB, err := kb.ECDH(ka.Public())
	if err != nil {
		return Case{}, nil, err
	}
	if !bytes.Equal(esA, esB) {
		return Case{}, nil, fmt.Errorf("%s: ES differs between A and B", sp.name)
	}
	transcript := append(append([]byte{}, sp.enoA...), sp.enoB...)
	ss := crypto.FreshSecret(sp.nA, transcript, init1, init2, esA)
	s, err := crypto.NewSchedule(ss, nil, aead)
	if err != nil {
		return Case{}, nil, err
	}
	frames, err := sealFrames(s, uint64(len(init1)), uint64(len(init2)), sp.frames)
	if err != nil {
		return Case{}, nil, fmt.Errorf("%s: %w", sp.name, err)
	}
	rid := crypto.ResumeID(ss)
	return Case{
		Name:      sp.name,
		TEP:       sp.tep,
		AEAD:      uint16(aead),
		PrivA:     hex.EncodeToString(sp.privA),
		PrivB:     hex.EncodeToString(sp.privB),
		NA:        hex.EncodeToString(sp.nA),
		NB:        hex.EncodeToString(sp.nB),
		EnoA:      hex.EncodeToString(sp.enoA),
		EnoB:      hex.EncodeToString(sp.enoB),
		Init1:     hex.EncodeToString(init1),
		Init2:     hex.EncodeToString(init2),
		ES:        hex.EncodeToString(esA),
		SS:        hex.EncodeToString(ss),
		SessionID: hex.EncodeToString(crypto.SessionID(sp.tep, ss, nil)),
		ResumeID:  hex.EncodeToString(rid[:]),
		Frames:    frames,
	}, ss, nil
}

// resumed builds the case of a connection resuming with ss[1] of a fresh
// X25519 session: the host that was A originally is the active opener
// again and also offers a fresh X448 exchange; B accepts the resumption
// (digest §3 layout).
func resumed(ssPrev []byte, aead crypto.AEADID) (Case, error) {
	const tep = crypto.TEPX25519
	ss := crypto.NextSecret(ssPrev)
	nonceA := label("tcpcrypt vectors: resumption nonce_a")[:8]
	nonceB := label("tcpcrypt vectors: resumption nonce_b")[:8]
	rid := crypto.ResumeID(ss)
	// A: 45 15 | 24 | a3 <resume[0:9]> <nonce_a>  (resumption suboption last)
	enoA := append([]byte{0x45, 0x15, crypto.TEPX448, tep | crypto.TEPResumeBit}, rid[:9]...)
	enoA = append(enoA, nonceA...)
	// B: 45 15 | 01 | a3 <resume[9:18]> <nonce_b>
	enoB := append([]byte{0x45, 0x15, 0x01, tep | crypto.TEPResumeBit}, rid[9:]...)
	enoB = append(enoB, nonceB...)
	sn := crypto.SessionNonce(nonceA, nonceB)
	s, err := crypto.NewSchedule(ss, sn, aead)
	if err != nil {
		return Case{}, err
	}
	frames, err := sealFrames(s, 0, 0, []frameSpec{
		{dir: crypto.DirAB, plain: data("resumed hello")},
		{dir: crypto.DirBA, plain: data("resumed reply")},
		{dir: crypto.DirBA, plain: crypto.Plain{FIN: true}},
		{dir: crypto.DirAB, plain: crypto.Plain{FIN: true, Data: []byte("resumed bye")}},
	})
	if err != nil {
		return Case{}, fmt.Errorf("resumed: %w", err)
	}
	return Case{
		Name:      "x25519-resumed-aes128gcm",
		TEP:       tep,
		AEAD:      uint16(aead),
		Resumed:   true,
		EnoA:      hex.EncodeToString(enoA),
		EnoB:      hex.EncodeToString(enoB),
		SSPrev:    hex.EncodeToString(ssPrev),
		NonceA:    hex.EncodeToString(nonceA),
		NonceB:    hex.EncodeToString(nonceB),
		SS:        hex.EncodeToString(ss),
		SessionID: hex.EncodeToString(crypto.SessionID(tep|crypto.TEPResumeBit, ss, sn)),
		ResumeID:  hex.EncodeToString(rid[:]),
		Frames:    frames,
	}, nil
}

// Generate builds every case.
func Generate() (*File, error) {
	f := &File{Version: 1}
	var ss0 []byte
	var aead0 crypto.AEADID
	for i, sp := range freshSpecs() {
		c, ss, err := fresh(sp)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			ss0, aead0 = ss, crypto.AEADID(c.AEAD)
		}
		f.Cases = append(f.Cases, c)
	}
	c, err := resumed(ss0, aead0)
	if err != nil {
		return nil, err
	}
	f.Cases = append(f.Cases, c)
	return f, nil
}

// Encode renders f as the file's bytes: indented JSON and a final newline.
func Encode(f *File) ([]byte, error) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Bytes generates the vectors and encodes them: exactly the contents of
// testdata/vectors/tcpcrypt.json.
func Bytes() ([]byte, error) {
	f, err := Generate()
	if err != nil {
		return nil, err
	}
	return Encode(f)
}
