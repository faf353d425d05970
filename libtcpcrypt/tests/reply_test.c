/*
 * Unit tests of the reply reader (src/reply.c): well-formed replies of every
 * kind, malformed and truncated ones, and hostile nesting. Run by
 * TestCReplyParser (libtcpcrypt/libtcpcrypt_test.go), with the address and
 * undefined-behaviour sanitizers when the compiler has them. Prints one line
 * per failure and exits 1 if any.
 */
#include "reply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define SID "23000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define CONN(role, sid) "{\"local\":\"192.0.2.1:40000\",\"remote\":\"[2001:db8::7]:443\",\"state\":\"established\"," \
	"\"role\":\"" role "\",\"tep\":{\"name\":\"TCPCRYPT_ECDHE_Curve25519\",\"id\":35},\"aead\":\"AEAD_AES_128_GCM\"," \
	"\"session_id\":\"" sid "\",\"resumed\":false,\"bytes_in\":0,\"bytes_out\":12,\"frames_in\":0,\"frames_out\":1," \
	"\"age_seconds\":0.25,\"last_error\":\"\"}"
#define OK(result) "{\"v\":1,\"id\":7,\"ok\":true,\"result\":" result "}"
#define ERR(code) "{\"v\":1,\"id\":7,\"ok\":false,\"error\":{\"code\":\"" code "\",\"message\":\"m\"}}"

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case ENOENT: return "ENOENT";
	case EPROTO: return "EPROTO";
	case EAGAIN: return "EAGAIN";
	case EACCES: return "EACCES";
	case EIO: return "EIO";
	}
	return "other";
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	size_t i;
	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = 0;
}

/* Parses a copy of line in a buffer of exactly its length (so that the
 * sanitizer catches any read past the end). */
static int parse(const char *line, size_t len, uint64_t id, struct tcpcrypt_reply *r)
{
	char *copy = malloc(len ? len : 1);
	int e;
	memcpy(copy, line, len);
	e = tcpcrypt_reply_parse(copy, len, id, r);
	free(copy);
	return e;
}

static void check(const char *name, const char *line, int want, const char *want_sid, char want_role)
{
	struct tcpcrypt_reply r;
	char got[2 * TCPCRYPT_REPLY_SID_MAX + 1];
	int e = parse(line, strlen(line), 7, &r);
	if (e != want) {
		printf("FAIL %s: got %s, want %s\n  line: %s\n", name, errname(e), errname(want), line);
		failures++;
		return;
	}
	if (want != 0)
		return;
	hex(r.sid, r.sid_len, got);
	if (strcmp(got, want_sid) != 0 || r.role != want_role || !r.ok || r.id != 7) {
		printf("FAIL %s: session %s role %c ok %d id %llu; want %s role %c\n", name, got,
		       r.role, r.ok, (unsigned long long)r.id, want_sid, want_role);
		failures++;
	}
}

/* Every strict prefix of a valid reply must be refused, and never read as a
 * session (a truncated reply is never taken for a complete one). */
static void check_prefixes(const char *name, const char *line)
{
	size_t n = strlen(line), i;
	for (i = 0; i < n; i++) {
		struct tcpcrypt_reply r;
		int e = parse(line, i, 7, &r);
		/* The only prefixes that are valid JSON end in the object's white space. */
		if (e == 0) {
			printf("FAIL %s: prefix of %zu bytes parsed as a session\n", name, i);
			failures++;
			return;
		}
		if (e != EPROTO) {
			printf("FAIL %s: prefix of %zu bytes gave %s, want EPROTO\n", name, i, errname(e));
			failures++;
			return;
		}
	}
}

/* Flips each byte to a few values: no crash, no read outside the buffer, and
 * a result that is one of the documented errnos. */
static void check_mutations(const char *line)
{
	static const char repl[] = { '"', '\\', '{', '}', '[', ']', ':', ',', '0', 'x', 0, (char)0xff, ' ' };
	size_t n = strlen(line), i, j;
	char *buf = malloc(n);
	for (i = 0; i < n; i++) {
		for (j = 0; j < sizeof repl; j++) {
			struct tcpcrypt_reply r;
			int e;
			memcpy(buf, line, n);
			buf[i] = repl[j];
			e = tcpcrypt_reply_parse(buf, n, 7, &r);
			if (e != 0 && e != ENOENT && e != EPROTO && e != EAGAIN && e != EACCES && e != EIO) {
				printf("FAIL mutation at %zu to %d: errno %d\n", i, repl[j], e);
				failures++;
			}
			if (e == 0 && (r.sid_len == 0 || r.sid_len > TCPCRYPT_REPLY_SID_MAX || (r.role != 'A' && r.role != 'B'))) {
				printf("FAIL mutation at %zu: success with session length %zu role %d\n", i, r.sid_len, r.role);
				failures++;
			}
		}
	}
	free(buf);
}

static void check_nesting(void)
{
	/* Unknown members may nest up to the limit and are skipped; deeper
	 * nesting is refused without recursion running away. */
	char line[4096];
	int depth, e;
	struct tcpcrypt_reply r;
	for (depth = 1; depth < 3000; depth = depth < 40 ? depth + 1 : depth * 2) {
		size_t n = 0;
		int i;
		n += (size_t)sprintf(line + n, "{\"v\":1,\"id\":7,\"x\":");
		if (depth > 1000) {
			/* only opening brackets: must fail fast */
			for (i = 0; i < depth && n < sizeof line - 1; i++)
				line[n++] = '[';
			e = tcpcrypt_reply_parse(line, n, 7, &r);
			if (e != EPROTO) {
				printf("FAIL nesting %d unterminated: %s\n", depth, errname(e));
				failures++;
			}
			continue;
		}
		for (i = 0; i < depth; i++)
			line[n++] = '[';
		for (i = 0; i < depth; i++)
			line[n++] = ']';
		n += (size_t)sprintf(line + n, ",\"ok\":true,\"result\":{\"session_id\":\"%s\",\"role\":\"A\"}}", SID);
		e = parse(line, n, 7, &r);
		/* The member is at depth 1; its arrays reach depth 1 + depth. */
		if ((1 + depth <= TCPCRYPT_REPLY_DEPTH_MAX) != (e == 0) || (e != 0 && e != EPROTO)) {
			printf("FAIL nesting %d: %s\n", depth, errname(e));
			failures++;
		}
	}
}

int main(void)
{
	char big[200000];
	struct tcpcrypt_reply r;
	size_t i;
	int e;

	/* Well-formed replies. */
	check("session", OK(CONN("A", SID)), 0, SID, 'A');
	check("role B", OK(CONN("B", SID)), 0, SID, 'B');
	check("upper case hex", OK("{\"session_id\":\"23ABCDEF\",\"role\":\"A\"}"), 0, "23abcdef", 'A');
	check("escaped hex digits", OK("{\"session_id\":\"\\u0032\\u0033ff\",\"role\":\"\\u0041\"}"), 0, "23ff", 'A');
	check("white space", " \t{ \"v\" : 1 ,\r\n\"id\":7, \"ok\" :true , \"result\" : { \"role\":\"A\" , \"session_id\" : \"" SID "\" } }\r ", 0, SID, 'A');
	check("members in any order", "{\"result\":{\"session_id\":\"" SID "\",\"role\":\"B\"},\"ok\":true,\"id\":7,\"v\":1}", 0, SID, 'B');
	check("unknown members skipped", "{\"v\":1,\"id\":7,\"future\":[1,2.5e-3,-0,{\"a\":[true,false,null]},\"\\\"\\u00e9\"],\"ok\":true,"
	      "\"result\":{\"x\":{\"y\":[]},\"session_id\":\"" SID "\",\"role\":\"A\",\"z\":null}}", 0, SID, 'A');
	check("member names in other case", "{\"V\":1,\"Id\":7,\"OK\":true,\"Result\":{\"Session_ID\":\"" SID "\",\"ROLE\":\"A\"}}", 0, SID, 'A');
	check("error reply after result", "{\"v\":1,\"id\":7,\"ok\":true,\"result\":" CONN("A", SID) ",\"error\":null}", 0, SID, 'A');
	check("session id over the limit", OK("{\"session_id\":\"" SID SID "\",\"role\":\"A\"}"), EPROTO, "", 0);

	/* Errors from the daemon. */
	check("not_found", ERR("not_found"), ENOENT, "", 0);
	check("no_session", ERR("no_session"), ENOENT, "", 0);
	check("no_session pending", "{\"v\":1,\"id\":7,\"ok\":false,\"error\":{\"code\":\"no_session\",\"pending\":true,\"message\":\"m\"}}", EINPROGRESS, "", 0);
	check("pending before the code", "{\"v\":1,\"id\":7,\"ok\":false,\"error\":{\"pending\" : true,\"code\":\"no_session\"}}", EINPROGRESS, "", 0);
	check("pending false", "{\"v\":1,\"id\":7,\"ok\":false,\"error\":{\"code\":\"no_session\",\"pending\":false}}", ENOENT, "", 0);
	check("pending with another code", "{\"v\":1,\"id\":7,\"ok\":false,\"error\":{\"code\":\"not_found\",\"pending\":true}}", ENOENT, "", 0);
	check("pending not a boolean", "{\"v\":1,\"id\":7,\"ok\":false,\"error\":{\"code\":\"no_session\",\"pending\":1}}", EPROTO, "", 0);
	check("pending null", "{\"v\":1,\"id\":7,\"ok\":false,\"error\":{\"code\":\"no_session\",\"pending\":null}}", EPROTO, "", 0);
	check("pending twice", "{\"v\":1,\"id\":7,\"ok\":false,\"error\":{\"code\":\"no_session\",\"pending\":true,\"pending\":true}}", EPROTO, "", 0);
	check("busy", ERR("busy"), EAGAIN, "", 0);
	check("busy with id 0", "{\"v\":1,\"id\":0,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"too many\"}}", EAGAIN, "", 0);
	check("forbidden", ERR("forbidden"), EACCES, "", 0);
	check("internal", ERR("internal"), EIO, "", 0);
	check("unknown code", ERR("brand_new"), EIO, "", 0);
	check("code with NUL escape", ERR("not_found\\u0000"), EIO, "", 0);
	check("code non-ASCII", ERR("not_f\\u00f6und"), EIO, "", 0);
	check("long code", ERR("not_found_not_found_not_found_not_found"), EIO, "", 0);
	check("bad_request", ERR("bad_request"), EPROTO, "", 0);
	check("too_large", ERR("too_large"), EPROTO, "", 0);
	check("unsupported_version", ERR("unsupported_version"), EPROTO, "", 0);
	check("error without code", "{\"v\":1,\"id\":7,\"ok\":false,\"error\":{}}", EIO, "", 0);
	check("result without session", OK("{\"session_id\":\"\",\"role\":\"\"}"), ENOENT, "", 0);
	check("result null", OK("null"), ENOENT, "", 0);
	check("result empty", OK("{}"), ENOENT, "", 0);

	/* Malformed. */
	check("empty", "", EPROTO, "", 0);
	check("blank", "   ", EPROTO, "", 0);
	check("not json", "hello", EPROTO, "", 0);
	check("array", "[1]", EPROTO, "", 0);
	check("two objects", OK(CONN("A", SID)) OK(CONN("A", SID)), EPROTO, "", 0);
	check("trailing garbage", OK(CONN("A", SID)) "x", EPROTO, "", 0);
	check("no v", "{\"id\":7,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("v 2", "{\"v\":2,\"id\":7,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("v 1.0", "{\"v\":1.0,\"id\":7,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("v string", "{\"v\":\"1\",\"id\":7,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("wrong id", "{\"v\":1,\"id\":8,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("id 0 on success", "{\"v\":1,\"id\":0,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("negative id", "{\"v\":1,\"id\":-7,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("id overflow", "{\"v\":1,\"id\":18446744073709551623,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("id exponent", "{\"v\":1,\"id\":7e0,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("leading zero", "{\"v\":1,\"id\":07,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("stream item", "{\"v\":1,\"id\":7,\"item\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("ok null", "{\"v\":1,\"id\":7,\"ok\":null,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("ok string", "{\"v\":1,\"id\":7,\"ok\":\"true\",\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("ok without result", "{\"v\":1,\"id\":7,\"ok\":true}", EPROTO, "", 0);
	check("result array", OK("[]"), EPROTO, "", 0);
	check("error without error", "{\"v\":1,\"id\":7,\"ok\":false}", EPROTO, "", 0);
	check("error string", "{\"v\":1,\"id\":7,\"ok\":false,\"error\":\"not_found\"}", EPROTO, "", 0);
	check("code number", "{\"v\":1,\"id\":7,\"ok\":false,\"error\":{\"code\":3}}", EPROTO, "", 0);
	check("message number", "{\"v\":1,\"id\":7,\"ok\":false,\"error\":{\"code\":\"not_found\",\"message\":3}}", EPROTO, "", 0);
	check("duplicate ok", "{\"v\":1,\"id\":7,\"ok\":false,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("duplicate ok other case", "{\"v\":1,\"id\":7,\"ok\":true,\"OK\":false,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("duplicate session", OK("{\"session_id\":\"" SID "\",\"session_id\":\"" SID "\",\"role\":\"A\"}"), EPROTO, "", 0);
	check("non-ASCII name", "{\"v\":1,\"id\":7,\"o\\u212a\":true,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("odd hex", OK("{\"session_id\":\"230\",\"role\":\"A\"}"), EPROTO, "", 0);
	check("not hex", OK("{\"session_id\":\"23zz\",\"role\":\"A\"}"), EPROTO, "", 0);
	check("hex with NUL escape", OK("{\"session_id\":\"23\\u0000f\",\"role\":\"A\"}"), EPROTO, "", 0);
	check("session number", OK("{\"session_id\":23,\"role\":\"A\"}"), EPROTO, "", 0);
	check("role C", OK(CONN("C", SID)), EPROTO, "", 0);
	check("role empty", OK(CONN("", SID)), EPROTO, "", 0);
	check("role AB", OK(CONN("AB", SID)), EPROTO, "", 0);
	check("role missing", OK("{\"session_id\":\"" SID "\"}"), EPROTO, "", 0);
	check("raw control char", OK("{\"session_id\":\"23\tff\",\"role\":\"A\"}"), EPROTO, "", 0);
	check("bad escape", OK("{\"session_id\":\"23\\xff\",\"role\":\"A\"}"), EPROTO, "", 0);
	check("short unicode escape", OK("{\"session_id\":\"\\u12\",\"role\":\"A\"}"), EPROTO, "", 0);
	check("single quotes", "{'v':1}", EPROTO, "", 0);
	check("trailing comma", "{\"v\":1,\"id\":7,\"ok\":true,\"result\":" CONN("A", SID) ",}", EPROTO, "", 0);
	check("missing colon", "{\"v\" 1}", EPROTO, "", 0);
	check("bare word", "{\"v\":1,\"id\":7,\"x\":nul,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("bad number", "{\"v\":1,\"id\":7,\"x\":1.,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("bad exponent", "{\"v\":1,\"id\":7,\"x\":1e+,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);
	check("plus sign", "{\"v\":1,\"id\":7,\"x\":+1,\"ok\":true,\"result\":" CONN("A", SID) "}", EPROTO, "", 0);

	/* A NUL byte inside the line is data, not an end: the line is refused. */
	{
		const char line[] = OK(CONN("A", SID));
		char buf[sizeof line + 1];
		memcpy(buf, line, sizeof line - 1);
		buf[sizeof line - 1] = 0;
		buf[sizeof line] = ' ';
		e = tcpcrypt_reply_parse(buf, sizeof line + 1, 7, &r);
		if (e != EPROTO) {
			printf("FAIL embedded NUL: %s\n", errname(e));
			failures++;
		}
	}

	/* A long unknown member is read through; the session still counts. */
	i = (size_t)sprintf(big, "{\"v\":1,\"id\":7,\"x\":\"");
	memset(big + i, 'a', 150000);
	i += 150000;
	sprintf(big + i, "\",\"ok\":true,\"result\":{\"session_id\":\"%s\",\"role\":\"A\"}}", SID);
	check("long unknown member", big, 0, SID, 'A');

	check_prefixes("session", OK(CONN("A", SID)));
	check_prefixes("not_found", ERR("not_found"));
	check_mutations(OK(CONN("A", SID)));
	check_mutations(ERR("no_session"));
	check_nesting();

	if (tcpcrypt_code_errno("not_found") != ENOENT || tcpcrypt_code_errno("") != EIO) {
		printf("FAIL tcpcrypt_code_errno\n");
		failures++;
	}
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("PASS\n");
	return 0;
}
