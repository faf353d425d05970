// Package bind turns a tcpcrypt session id into authentication: it binds
// the session id and the TCP-ENO role of a connection into a proof of a
// shared secret (PSK), or into a short string that people compare (SAS).
//
// tcpcrypt by itself encrypts against passive eavesdroppers only: an
// active attacker can run one tcpcrypt session with each end and relay the
// plaintext. The two sessions then have different session ids (RFC 8547
// §5.1 requires them to be unique, even against a cheating end), so an
// application that checks that both ends see the same session id, with
// opposite roles, detects the attacker (RFC 8547 §5.1 and §10).
//
// # PSK
//
// Both ends call PSK(ctx, conn, key) right after connecting, with the same
// key of at least MinKeyLen bytes. Each end asks its local tcpcryptd for
// the connection's session id and its own role (A is the active opener),
// sends one bind message, reads the peer's, and checks it. The message has
// a fixed length of MessageLen (38) bytes:
//
//	offset  length  field
//	0       4       magic 0x89 'T' 'C' 'B'
//	4       1       version, 1
//	5       1       the sender's role, 'A' or 'B'
//	6       32      MAC = HMAC-SHA256(K, "tcpcryptd bind psk v1 mac" || 0x00 || version || role || session id)
//
// where K = HKDF-SHA256(IKM = key, salt = "tcpcryptd bind psk v1", info =
// "mac key", 32 bytes). A peer passes when it claims the other role and its
// MAC is the one for that role and this session id, compared in constant
// time. What that rules out:
//
//   - a man in the middle, or a relay that splices two connections: each
//     end's session id differs, so the MACs differ (ErrMismatch at both
//     ends), and without the key the attacker cannot make the right ones;
//   - reflection (the attacker sends an end its own message back): the
//     role is ours, not the peer's (ErrSameRole, which matches
//     ErrMismatch);
//   - replay of a message recorded on another connection: its session id
//     is different (ErrMismatch);
//   - both ends with the same role, which happens when two clients each
//     dial a relay: ErrSameRole.
//
// The framing is chosen so that a peer that does not run the binding gives
// a clear error rather than a hang: the magic's first byte is not ASCII,
// and every byte is checked as it arrives, so a peer that speaks first in
// another protocol fails at its first byte with ErrProtocol; a peer that
// closes early is ErrProtocol too. A peer that stays silent (for example a
// server that waits for a request) shows as ErrTimeout at the deadline.
//
// Both ends write before they read. The write runs in its own goroutine,
// concurrently with the read, so PSK does not depend on the connection
// buffering the 38 bytes (TCP would; net.Pipe and some relays do not); the
// goroutine has finished when PSK returns. The context's deadline (or
// DefaultTimeout when it has none) becomes conn's deadline during the
// exchange, cancelling the context interrupts it, and on return conn's
// deadline is cleared to the zero time (net.Conn cannot report the deadline
// it had, so an earlier one is not restored). PSK reads exactly one message
// and nothing more.
//
// Each end decides alone. When PSK fails, close the connection: the peer's
// next read then fails. When PSK succeeds at an end, the peer it talks to
// through tcpcrypt holds the key; nothing is sent in the clear, since the
// bind messages travel inside the encrypted stream.
//
// # Threat model
//
// The binding protects against an active network attacker, including one
// that runs tcpcrypt with each end. It does not protect against:
//
//   - a weak key: a man in the middle receives a MAC over a session id he
//     knows, and can test guesses of the key offline. Use a random key of
//     at least 16 bytes (128 bits), not a password; for passwords use a
//     password-authenticated key exchange, which this package does not
//     provide;
//   - a compromised daemon or host: the session id comes from the local
//     tcpcryptd over its control socket, and whoever controls that can lie
//     about it, or read the plaintext anyway;
//   - a peer that holds the key: PSK authenticates the key, not a person
//     or a host; everyone with the key is "the peer".
//
// # Short authentication strings
//
// SAS(sessionID) derives SASWords (8) words from a list of 256 through
// SHA-256 with its own label: 64 bits, the same at both ends. People
// compare it by voice or on two screens; tcnetstat --sas shows it for every
// connection, ConnSAS for one. Equal strings mean both ends see the same
// session, up to a bound set by grinding: tcpcrypt has no commitment to key
// shares. The passive opener sends Init2 after it has seen Init1 (RFC 8548
// §3.3), and the session id is a hash over both (§3.4), so a man in the
// middle who has finished the other leg can vary his nonce N_B in Init2
// until this leg's SAS equals the other's. Each try costs a few hashes, no
// key agreement; matching 64 bits takes about 2^64 tries within the seconds
// a handshake waits, out of reach (some 10^10 GPU-seconds at today's
// SHA-256 speeds). Five words (40 bits) would fall to a hundred GPUs in
// seconds, which is why there are eight. Comparing the whole session id is
// not bounded this way.
//
// # The daemon
//
// The session id comes from the local tcpcryptd at $TCPCRYPT_CTL or
// ctl.DefaultAddress. Right after connect the key exchange may still be in
// flight; PSK and ConnSAS ask again until it completes or the context ends.
// A connection the daemon does not track (port not covered, TCP-ENO fell
// back) fails at once with ErrNotEncrypted. docs/binding.md has the full
// description.
package bind
