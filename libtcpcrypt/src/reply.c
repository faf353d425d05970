/*
 * A bounded JSON reader for one reply line of the control protocol
 * (docs/ctl-protocol.md), just large enough for the "sessid" reply. It reads
 * JSON as RFC 8259 defines it, skips members it does not know (the protocol
 * may grow), refuses duplicate members, member names that are not ASCII, and
 * nesting deeper than TCPCRYPT_REPLY_DEPTH_MAX, and never reads past the end
 * of its input. No allocation, no global state.
 */
#include "reply.h"

#include <errno.h>
#include <string.h>

struct rd {
	const char *p;
	const char *end;
};

/* A decoded string: bytes beyond the capacity are dropped and counted. */
struct str {
	char *buf;
	size_t cap, len;
	int over;       /* more bytes than cap */
	int nonascii;   /* a byte >= 0x80, or an escape for one, or a NUL */
};

static void ws(struct rd *d)
{
	while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
		d->p++;
}

static int peek(const struct rd *d)
{
	return d->p < d->end ? (unsigned char)*d->p : -1;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void put(struct str *s, unsigned char c)
{
	if (c == 0 || c >= 0x80) {
		s->nonascii = 1;
		c = 0xff; /* never equal to anything this reader compares with */
	}
	if (s->len < s->cap)
		s->buf[s->len++] = (char)c;
	else
		s->over = 1;
}

/* Reads a string at d->p (which must be '"'); decodes into s when s != NULL.
 * Returns 0, or -1 when malformed. */
static int rd_string(struct rd *d, struct str *s)
{
	if (peek(d) != '"')
		return -1;
	d->p++;
	for (;;) {
		int c = peek(d);
		if (c < 0 || c < 0x20)
			return -1; /* end of input, or an unescaped control character */
		d->p++;
		if (c == '"')
			return 0;
		if (c != '\\') {
			if (s)
				put(s, (unsigned char)c);
			continue;
		}
		c = peek(d);
		if (c < 0)
			return -1;
		d->p++;
		switch (c) {
		case '"': case '\\': case '/':
			break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u': {
			unsigned v = 0;
			int i;
			if (d->end - d->p < 4)
				return -1;
			for (i = 0; i < 4; i++) {
				int h = hexval((unsigned char)d->p[i]);
				if (h < 0)
					return -1;
				v = v << 4 | (unsigned)h;
			}
			d->p += 4;
			c = v < 0x80 ? (int)v : 0x80; /* only ASCII is kept as such */
			break;
		}
		default:
			return -1;
		}
		if (s)
			put(s, (unsigned char)c);
	}
}

/* Reads a number as RFC 8259 section 6 defines it. With u != NULL the number
 * must be a non-negative integer that fits in 64 bits, stored in *u. Returns
 * 0, or -1 when malformed or (with u) not such an integer. */
static int rd_number(struct rd *d, uint64_t *u)
{
	const char *start = d->p;
	int integer = 1, overflow = 0;
	uint64_t v = 0;

	if (peek(d) == '-') {
		d->p++;
		integer = 0;
	}
	if (peek(d) == '0') {
		d->p++;
	} else if (peek(d) >= '1' && peek(d) <= '9') {
		while (peek(d) >= '0' && peek(d) <= '9') {
			unsigned dig = (unsigned)(*d->p - '0');
			if (v > (UINT64_MAX - dig) / 10)
				overflow = 1;
			else
				v = v * 10 + dig;
			d->p++;
		}
	} else {
		return -1;
	}
	if (peek(d) == '.') {
		d->p++;
		integer = 0;
		if (!(peek(d) >= '0' && peek(d) <= '9'))
			return -1;
		while (peek(d) >= '0' && peek(d) <= '9')
			d->p++;
	}
	if (peek(d) == 'e' || peek(d) == 'E') {
		d->p++;
		integer = 0;
		if (peek(d) == '+' || peek(d) == '-')
			d->p++;
		if (!(peek(d) >= '0' && peek(d) <= '9'))
			return -1;
		while (peek(d) >= '0' && peek(d) <= '9')
			d->p++;
	}
	if (u) {
		if (!integer || overflow)
			return -1;
		if (start[0] == '-')
			return -1;
		*u = v;
	}
	return 0;
}

static int rd_literal(struct rd *d, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(d->end - d->p) < n || memcmp(d->p, lit, n) != 0)
		return -1;
	d->p += n;
	return 0;
}

/* Skips one value of any type. */
static int skip(struct rd *d, int depth)
{
	int c = peek(d);
	if (c == '{' || c == '[') {
		int close = c == '{' ? '}' : ']';
		if (depth >= TCPCRYPT_REPLY_DEPTH_MAX)
			return -1;
		d->p++;
		ws(d);
		if (peek(d) == close) {
			d->p++;
			return 0;
		}
		for (;;) {
			ws(d);
			if (close == '}') {
				if (rd_string(d, NULL) < 0)
					return -1;
				ws(d);
				if (peek(d) != ':')
					return -1;
				d->p++;
				ws(d);
			}
			if (skip(d, depth + 1) < 0)
				return -1;
			ws(d);
			c = peek(d);
			if (c < 0)
				return -1;
			d->p++;
			if (c == ',')
				continue;
			if (c == close)
				return 0;
			return -1;
		}
	}
	switch (c) {
	case '"':
		return rd_string(d, NULL);
	case 't':
		return rd_literal(d, "true");
	case 'f':
		return rd_literal(d, "false");
	case 'n':
		return rd_literal(d, "null");
	}
	return rd_number(d, NULL);
}

/* Member names this reader interprets, matched without regard to ASCII case
 * (as Go's encoding/json matches struct fields). */
static int name_is(const struct str *key, const char *name)
{
	size_t i, n = strlen(name);
	if (key->over || key->len != n)
		return 0;
	for (i = 0; i < n; i++) {
		char a = key->buf[i], b = name[i];
		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (a != b)
			return 0;
	}
	return 1;
}

typedef int (*member_fn)(struct rd *d, const struct str *key, void *ctx, int depth);

/* Reads an object at d->p, calling fn for each member with d->p at its value
 * (fn must consume the value). Names that are not ASCII are refused. */
static int rd_object(struct rd *d, int depth, member_fn fn, void *ctx)
{
	char kb[24];
	if (depth >= TCPCRYPT_REPLY_DEPTH_MAX || peek(d) != '{')
		return -1;
	d->p++;
	ws(d);
	if (peek(d) == '}') {
		d->p++;
		return 0;
	}
	for (;;) {
		struct str key = { kb, sizeof kb, 0, 0, 0 };
		int c;
		ws(d);
		if (rd_string(d, &key) < 0 || key.nonascii)
			return -1;
		ws(d);
		if (peek(d) != ':')
			return -1;
		d->p++;
		ws(d);
		if (fn(d, &key, ctx, depth + 1) < 0)
			return -1;
		ws(d);
		c = peek(d);
		if (c < 0)
			return -1;
		d->p++;
		if (c == ',')
			continue;
		if (c == '}')
			return 0;
		return -1;
	}
}

/* A string member into a bounded buffer; null leaves it empty. *seen guards
 * against duplicates. */
static int string_member(struct rd *d, struct str *s, int *seen)
{
	if ((*seen)++)
		return -1;
	if (peek(d) == 'n')
		return rd_literal(d, "null");
	return rd_string(d, s);
}

struct result_ctx {
	struct str sid, role;
	int seen_sid, seen_role;
};

static int result_member(struct rd *d, const struct str *key, void *vctx, int depth)
{
	struct result_ctx *rc = vctx;
	if (name_is(key, "session_id"))
		return string_member(d, &rc->sid, &rc->seen_sid);
	if (name_is(key, "role"))
		return string_member(d, &rc->role, &rc->seen_role);
	return skip(d, depth);
}

struct error_ctx {
	struct str code, msg;
	int seen_code, seen_msg, seen_pending;
	int pending; /* "pending": true */
};

static int error_member(struct rd *d, const struct str *key, void *vctx, int depth)
{
	struct error_ctx *ec = vctx;
	if (name_is(key, "code"))
		return string_member(d, &ec->code, &ec->seen_code);
	if (name_is(key, "message"))
		return string_member(d, &ec->msg, &ec->seen_msg);
	if (name_is(key, "pending")) {
		if (ec->seen_pending++)
			return -1;
		if (peek(d) == 't') {
			ec->pending = 1;
			return rd_literal(d, "true");
		}
		if (peek(d) == 'f')
			return rd_literal(d, "false");
		return -1; /* a boolean, nothing else */
	}
	return skip(d, depth);
}

struct top_ctx {
	uint64_t v, id;
	int seen_v, seen_id, seen_ok, seen_result, seen_error;
	int has_ok, ok;      /* "ok" present and not null */
	int has_result;      /* "result" present (null counts: a result without a session) */
	int has_error;       /* "error" present and not null */
	struct result_ctx res;
	struct error_ctx err;
	char sidhex[2 * TCPCRYPT_REPLY_SID_MAX];
	char rolebuf[2];
	char codebuf[31];
};

static int top_member(struct rd *d, const struct str *key, void *vctx, int depth)
{
	struct top_ctx *t = vctx;
	if (name_is(key, "v")) {
		if (t->seen_v++)
			return -1;
		return rd_number(d, &t->v);
	}
	if (name_is(key, "id")) {
		if (t->seen_id++)
			return -1;
		if (peek(d) == 'n')
			return rd_literal(d, "null");
		return rd_number(d, &t->id);
	}
	if (name_is(key, "ok")) {
		if (t->seen_ok++)
			return -1;
		if (peek(d) == 'n')
			return rd_literal(d, "null");
		t->has_ok = 1;
		if (peek(d) == 't') {
			t->ok = 1;
			return rd_literal(d, "true");
		}
		return rd_literal(d, "false");
	}
	if (name_is(key, "result")) {
		if (t->seen_result++)
			return -1;
		t->has_result = 1;
		if (peek(d) == 'n')
			return rd_literal(d, "null");
		return rd_object(d, depth, result_member, &t->res);
	}
	if (name_is(key, "error")) {
		if (t->seen_error++)
			return -1;
		if (peek(d) == 'n')
			return rd_literal(d, "null");
		t->has_error = 1;
		return rd_object(d, depth, error_member, &t->err);
	}
	return skip(d, depth);
}

int tcpcrypt_code_errno(const char *code)
{
	if (strcmp(code, "not_found") == 0 || strcmp(code, "no_session") == 0)
		return ENOENT;
	if (strcmp(code, "busy") == 0)
		return EAGAIN;
	if (strcmp(code, "forbidden") == 0)
		return EACCES;
	if (strcmp(code, "bad_request") == 0 || strcmp(code, "too_large") == 0 ||
	    strcmp(code, "unsupported_version") == 0)
		return EPROTO;
	return EIO; /* "internal", and codes newer than this library */
}

int tcpcrypt_reply_parse(const char *buf, size_t len, uint64_t want_id,
			 struct tcpcrypt_reply *r)
{
	struct top_ctx t;
	struct rd d = { buf, buf + len };
	size_t i;

	memset(r, 0, sizeof *r);
	memset(&t, 0, sizeof t);
	t.res.sid.buf = t.sidhex;
	t.res.sid.cap = sizeof t.sidhex;
	t.res.role.buf = t.rolebuf;
	t.res.role.cap = sizeof t.rolebuf;
	t.err.code.buf = t.codebuf;
	t.err.code.cap = sizeof t.codebuf;
	t.err.msg.buf = NULL; /* validated, not kept */
	t.err.msg.cap = 0;

	ws(&d);
	if (rd_object(&d, 0, top_member, &t) < 0)
		return EPROTO;
	ws(&d);
	if (d.p != d.end)
		return EPROTO; /* something after the object */

	r->id = t.id;
	if (!t.seen_v || t.v != 1)
		return EPROTO;
	/* A server that refuses a line before reading it (busy, too_large)
	 * cannot know the id and answers with 0. */
	if (t.id != want_id && !(t.id == 0 && t.has_error))
		return EPROTO;
	if (!t.has_ok)
		return EPROTO; /* a stream item: not part of a sessid reply */
	if (!t.ok) {
		if (!t.has_error)
			return EPROTO;
		memcpy(r->code, t.codebuf, t.err.code.len);
		r->code[t.err.code.len] = 0;
		if (t.err.code.over || t.err.code.nonascii)
			return EIO; /* not a code this library knows */
		if (t.err.pending && strcmp(r->code, "no_session") == 0)
			return EINPROGRESS; /* tracked, key exchange still running */
		return tcpcrypt_code_errno(r->code);
	}
	r->ok = 1;
	if (!t.has_result)
		return EPROTO;
	if (t.res.sid.len == 0)
		return ENOENT;
	if (t.res.sid.over || t.res.sid.nonascii || t.res.sid.len % 2 != 0)
		return EPROTO;
	for (i = 0; i < t.res.sid.len / 2; i++) {
		int hi = hexval((unsigned char)t.sidhex[2 * i]);
		int lo = hexval((unsigned char)t.sidhex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return EPROTO;
		r->sid[i] = (unsigned char)(hi << 4 | lo);
	}
	if (t.res.role.len != 1 || t.res.role.over || (t.rolebuf[0] != 'A' && t.rolebuf[0] != 'B'))
		return EPROTO; /* RFC 8547 section 4.3: every session has a role */
	r->sid_len = t.res.sid.len / 2;
	r->role = t.rolebuf[0];
	return 0;
}
