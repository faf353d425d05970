/*
 * The reply side of the control protocol, without any I/O: a bounded JSON
 * reader for one reply line of a "sessid" request. Internal to libtcpcrypt
 * (hidden from the shared library's symbol table); the unit tests and the Go
 * fuzz target call it directly.
 */
#ifndef TCPCRYPT_REPLY_H
#define TCPCRYPT_REPLY_H

#include <stddef.h>
#include <stdint.h>

/* The longest session id a reply may carry, in bytes. tcpcrypt's are 33
 * (TCPCRYPT_SESSID_MAX); RFC 8547 allows longer ones for other TEPs, so the
 * reader takes up to this many and leaves the size check to the caller. */
#define TCPCRYPT_REPLY_SID_MAX 64

/* The deepest nesting of arrays and objects the reader accepts. */
#define TCPCRYPT_REPLY_DEPTH_MAX 32

struct tcpcrypt_reply {
	int ok;                     /* the reply's "ok" member */
	uint64_t id;                /* the reply's "id" member */
	char code[32];              /* error code when !ok ("" if absent; cut to 31 bytes) */
	unsigned char sid[TCPCRYPT_REPLY_SID_MAX];
	size_t sid_len;             /* 0 when the result has no session id */
	char role;                  /* 'A' or 'B' when sid_len > 0 */
};

/*
 * tcpcrypt_reply_parse reads one reply line (without its newline; a trailing
 * "\r" or other white space is allowed) of the sessid request with id want_id.
 * It returns 0 when the reply carries a session id, and otherwise an errno
 * value:
 *
 *   ENOENT      error not_found or no_session, or a result without session id
 *   EINPROGRESS error no_session with "pending": true (the daemon tracks the
 *               connection and its key exchange has not finished)
 *   EPROTO      not one well-formed reply object, a wrong "v", a foreign id,
 *               a stream item, a member of the wrong type, a bad session id
 *               or role, duplicate members, nesting over the limit; and the
 *               errors bad_request, too_large, unsupported_version (which
 *               mean this library and the daemon disagree on the protocol)
 *   EAGAIN      error busy (no client slot free at the daemon)
 *   EACCES      error forbidden
 *   EIO         error internal, or a code this library does not know
 *
 * r is filled as far as the line was read. The reader never reads outside
 * buf[0..len) and needs no terminating NUL.
 */
int tcpcrypt_reply_parse(const char *buf, size_t len, uint64_t want_id,
			 struct tcpcrypt_reply *r);

/* tcpcrypt_code_errno maps a protocol error code to the errno above. */
int tcpcrypt_code_errno(const char *code);

#endif
