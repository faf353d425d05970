package bind

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"strings"
)

// SASWords is the number of words in a short authentication string. Each
// word is one of 256, so a SAS carries 8*SASWords = 64 bits: the package
// documentation explains why fewer would not do.
const SASWords = 8

// sasLabel separates the SAS hash from every other use of the session id.
const sasLabel = "tcpcryptd bind sas v1"

// SAS returns the short authentication string of a session id: SASWords
// words from a fixed list of 256, joined by '-', e.g.
// "comet-harbor-quail-ribbon-tiger-acorn-lemon-yacht". The words are the
// first SASWords bytes of SHA-256(label || 0x00 || session id), each byte
// picking one word, so the SAS is not a piece of the session id and
// reveals nothing of it beyond 64 bits of its hash. Both ends of one tcpcrypt session see the
// same SAS (it does not depend on the role). SAS returns "" for an empty
// session id.
//
// Two people who compare their connection's SAS (by voice, or on two
// screens) and find it equal know that both ends see the same session, so
// that no one terminates tcpcrypt between them, up to the grinding bound in
// the package documentation: a man in the middle who can compute about
// 2^64 hashes while the handshake is in progress can match it.
func SAS(sessionID []byte) string {
	if len(sessionID) == 0 {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(sasLabel))
	h.Write([]byte{0})
	h.Write(sessionID)
	d := h.Sum(nil)
	words := make([]string, SASWords)
	for i := range words {
		words[i] = wordList[d[i]]
	}
	return strings.Join(words, "-")
}

// ConnSAS returns the SAS of conn's tcpcrypt session, asking the local
// daemon for the session id (waiting, until ctx ends or DefaultTimeout,
// while the key exchange is still in flight). It fails with an error
// matching ErrNotEncrypted when the connection has none.
func ConnSAS(ctx context.Context, conn net.Conn) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	sid, _, err := sessionSource(ctx, conn)
	if err != nil {
		return "", err
	}
	if len(sid) == 0 {
		return "", fmt.Errorf("%w: empty session id", ErrNotEncrypted)
	}
	return SAS(sid), nil
}
