package bind

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestWordList(t *testing.T) {
	seen := map[string]bool{}
	prefix := map[string]string{}
	word := regexp.MustCompile(`^[a-z]{4,8}$`)
	for i, w := range wordList {
		if !word.MatchString(w) {
			t.Errorf("word %d %q is not 4 to 8 lower case letters", i, w)
		}
		if seen[w] {
			t.Errorf("word %q twice", w)
		}
		seen[w] = true
		if p, ok := prefix[w[:3]]; ok {
			t.Errorf("%q and %q share their first three letters", p, w)
		}
		prefix[w[:3]] = w
	}
}

// indexOf maps SAS words back to their byte values.
func indexOf(t *testing.T, sas string) []byte {
	t.Helper()
	var out []byte
	for _, w := range strings.Split(sas, "-") {
		i := -1
		for j, x := range wordList {
			if x == w {
				i = j
			}
		}
		if i < 0 {
			t.Fatalf("%q in %q is not a list word", w, sas)
		}
		out = append(out, byte(i))
	}
	return out
}

func TestSASVector(t *testing.T) {
	// The first eight bytes of SHA-256("tcpcryptd bind sas v1" || 0 ||
	// vectorSID), computed with Python's hashlib.
	const want = "\xa2\xb3\x92\x47\x6e\xea\xca\x22"
	if got := indexOf(t, SAS(vectorSID)); string(got) != want {
		t.Errorf("SAS(vector) = %q: bytes % x, want % x", SAS(vectorSID), got, want)
	}
}

func TestSAS(t *testing.T) {
	if got := SAS(nil); got != "" {
		t.Errorf("SAS(nil) = %q, want empty", got)
	}
	seen := map[string]bool{}
	for range 2000 {
		sid := make([]byte, 33)
		rand.Read(sid)
		s := SAS(sid)
		if s != SAS(append([]byte(nil), sid...)) {
			t.Fatal("SAS is not a function of the session id")
		}
		d := sha256.Sum256(append([]byte(sasLabel+"\x00"), sid...))
		if got := indexOf(t, s); len(got) != SASWords || string(got) != string(d[:SASWords]) {
			t.Fatalf("SAS %q is bytes % x, want % x", s, got, d[:SASWords])
		}
		if strings.Contains(s, " ") {
			t.Fatalf("SAS %q contains a space (it must stay one column)", s)
		}
		// 64 bits: 2000 random ids collide with probability ~1e-13.
		if seen[s] {
			t.Fatalf("two random session ids gave the SAS %q", s)
		}
		seen[s] = true
		// Changing any byte, the TEP byte too, changes the SAS.
		for _, i := range []int{0, 16, 32} {
			c := append([]byte(nil), sid...)
			c[i] ^= 1
			if SAS(c) == s {
				t.Fatalf("flipping byte %d left the SAS %q", i, s)
			}
		}
	}
}

func TestConnSAS(t *testing.T) {
	f := useFakeSessions(t)
	a, b := f.session(t, vectorSID)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	sa, errA := ConnSAS(ctx, a)
	sb, errB := ConnSAS(ctx, b)
	if errA != nil || errB != nil || sa != SAS(vectorSID) || sb != sa {
		t.Errorf("ConnSAS: %q (%v), %q (%v); want %q at both ends", sa, errA, sb, errB, SAS(vectorSID))
	}
	plain, _ := net.Pipe()
	defer plain.Close()
	f.fail(plain, errors.Join(ErrNotEncrypted, errors.New("fake")))
	if s, err := ConnSAS(ctx, plain); !errors.Is(err, ErrNotEncrypted) || s != "" {
		t.Errorf("plain: %q, %v; want ErrNotEncrypted", s, err)
	}
}
