package packet

import (
	"encoding/hex"
	"strings"
	"testing"
)

// unhex decodes a hex fixture, ignoring whitespace and "//" comments.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	var sb strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		tb.Fatalf("bad fixture: %v", err)
	}
	return b
}

// ipv4SYN is an IPv4 SYN as Linux sends it, with the usual option layout
// MSS, SACK-permitted, Timestamps, NOP, Window Scale.
const ipv4SYN = `
45          // version 4, IHL 5 (20 bytes, no IP options)
00          // TOS
003c        // total length 60 = 20 IP + 40 TCP
1c46        // identification
4000        // flags DF, fragment offset 0
40          // TTL 64
06          // protocol TCP
9d22        // IPv4 header checksum
c0a80002    // source 192.168.0.2
c0a80001    // destination 192.168.0.1
d431        // TCP source port 54321
0050        // destination port 80
a1b2c3d4    // sequence number
00000000    // acknowledgment number (ACK not set)
a0          // data offset 10 words = 40 bytes, reserved 0
02          // flags SYN
faf0        // window 64240
666c        // TCP checksum
0000        // urgent pointer
020405b4    // MSS 1460
0402        // SACK permitted
080a 000a2b3c 00000000 // Timestamps TSval 0x000a2b3c TSecr 0
01          // NOP
030307      // Window Scale shift 7
`

// ipv6Data is an IPv6 data segment (PSH|ACK, 5 bytes of payload) with the
// NOP, NOP, Timestamps layout Linux uses after the handshake.
const ipv6Data = `
600abcde    // version 6, traffic class 0x00, flow label 0xabcde
0025        // payload length 37 = 32 TCP header + 5 data
06          // next header TCP
40          // hop limit 64
20010db8000000000000000000000001 // source 2001:db8::1
20010db8000000000000000000000002 // destination 2001:db8::2
01bb        // TCP source port 443
c350        // destination port 50000
00001000    // sequence number 0x1000
a1b2c3d5    // acknowledgment number
80          // data offset 8 words = 32 bytes
18          // flags PSH|ACK
01f5        // window 501
8d58        // TCP checksum
0000        // urgent pointer
0101        // NOP NOP
080a 0001e240 000a2b3c // Timestamps TSval 123456 TSecr 0x000a2b3c
68656c6c6f  // payload "hello"
`
