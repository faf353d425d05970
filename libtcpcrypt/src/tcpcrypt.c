/*
 * libtcpcrypt: the original libtcpcrypt API on top of tcpcryptd's control
 * protocol (docs/ctl-protocol.md). Each call that needs the daemon opens a
 * new control connection (SOCK_CLOEXEC, non-blocking), sends one "sessid"
 * request, reads one reply line of bounded size with poll() against one
 * deadline for the whole call, and closes; while the answer is that the key
 * exchange is still running, it asks again within the same deadline. Nothing
 * survives a call except the control address set by tcpcrypt_setparam(),
 * which is guarded by a mutex (with fork handlers, so a child never inherits
 * it locked).
 */
#define _GNU_SOURCE
#include <tcpcrypt/tcpcrypt.h>

#include "reply.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define API __attribute__((visibility("default")))

/* The longest control address tcpcrypt_setparam() keeps. */
#define CTL_ADDR_MAX 4096
/* The longest reply line read from the daemon, newline included. */
#define REPLY_LINE_MAX (64 * 1024)
/* A formatted endpoint: "[" IPv6 "]:" port. */
#define ENDPOINT_MAX (INET6_ADDRSTRLEN + 8)

static pthread_mutex_t ctl_mu = PTHREAD_MUTEX_INITIALIZER;
static char ctl_addr[CTL_ADDR_MAX]; /* guarded by ctl_mu */
static int ctl_addr_state;          /* 0 unset, 1 set, -1 set but too long; guarded by ctl_mu */

static void fork_prepare(void) { pthread_mutex_lock(&ctl_mu); }
static void fork_release(void) { pthread_mutex_unlock(&ctl_mu); }

__attribute__((constructor)) static void tcpcrypt_init(void)
{
	pthread_atfork(fork_prepare, fork_release, fork_release);
}

/* ---- the control address ---- */

struct target {
	int unix_sock; /* 1: un; 0: tcp[0..ntcp) */
	struct sockaddr_un un;
	socklen_t unlen;
	int ntcp;
	struct sockaddr_storage tcp[2];
	socklen_t tcplen[2];
};

/* Copies the address to use into buf: the one set with tcpcrypt_setparam(),
 * else $TCPCRYPT_CTL, else the default. Returns 0 or EINVAL. */
static int current_addr(char *buf, size_t cap)
{
	const char *env;
	int state;

	pthread_mutex_lock(&ctl_mu);
	state = ctl_addr_state;
	if (state == 1)
		memcpy(buf, ctl_addr, strlen(ctl_addr) + 1);
	pthread_mutex_unlock(&ctl_mu);
	if (state == 1)
		return 0;
	if (state < 0)
		return EINVAL;
	env = getenv(TCPCRYPT_CTL_ENV);
	if (env == NULL || env[0] == 0)
		env = TCPCRYPT_CTL_DEFAULT;
	if (strlen(env) >= cap)
		return EINVAL;
	memcpy(buf, env, strlen(env) + 1);
	return 0;
}

static int set_unix(struct target *t, const char *path)
{
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof t->un.sun_path)
		return EINVAL;
	memset(&t->un, 0, sizeof t->un);
	t->un.sun_family = AF_UNIX;
	memcpy(t->un.sun_path, path, n);
	t->unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	if (path[0] == '@') { /* an abstract socket, as Go's net package reads "@name" */
		t->un.sun_path[0] = 0;
		t->unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	t->unix_sock = 1;
	return 0;
}

static void add_tcp4(struct target *t, const struct in_addr *a, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->tcp[t->ntcp];
	memset(sin, 0, sizeof *sin);
	sin->sin_family = AF_INET;
	sin->sin_addr = *a;
	sin->sin_port = htons(port);
	t->tcplen[t->ntcp++] = sizeof *sin;
}

static void add_tcp6(struct target *t, const struct in6_addr *a, uint16_t port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->tcp[t->ntcp];
	memset(sin6, 0, sizeof *sin6);
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = *a;
	sin6->sin6_port = htons(port);
	t->tcplen[t->ntcp++] = sizeof *sin6;
}

/* Parses a control address the way the Go client does (ctl.ParseAddress):
 * "unix:PATH", anything with a '/' (a socket path), or [HOST]:PORT with a
 * loopback HOST, "localhost" or nothing (both 127.0.0.1 and ::1). */
static int parse_target(const char *s, struct target *t)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	size_t hl;
	unsigned long port = 0;
	const char *q;
	struct in_addr a4;
	struct in6_addr a6;

	memset(t, 0, sizeof *t);
	if (strncmp(s, "unix:", 5) == 0)
		return set_unix(t, s + 5);
	if (strchr(s, '/'))
		return set_unix(t, s);
	colon = strrchr(s, ':');
	if (colon == NULL)
		return EINVAL;
	hl = (size_t)(colon - s);
	if (colon[1] == 0 || strlen(colon + 1) > 5)
		return EINVAL;
	for (q = colon + 1; *q; q++) {
		if (*q < '0' || *q > '9')
			return EINVAL;
		port = port * 10 + (unsigned long)(*q - '0');
	}
	if (port == 0 || port > 65535)
		return EINVAL;
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		s++;
		hl -= 2;
		if (hl >= sizeof host)
			return EINVAL;
		memcpy(host, s, hl);
		host[hl] = 0;
		if (inet_pton(AF_INET, host, &a4) == 1) {
			if ((ntohl(a4.s_addr) >> 24) != 127)
				return EINVAL;
			add_tcp4(t, &a4, (uint16_t)port);
			return 0;
		}
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return EINVAL;
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			memcpy(&a4, &a6.s6_addr[12], 4);
			if ((ntohl(a4.s_addr) >> 24) != 127)
				return EINVAL;
			add_tcp4(t, &a4, (uint16_t)port);
			return 0;
		}
		if (!IN6_IS_ADDR_LOOPBACK(&a6))
			return EINVAL;
		add_tcp6(t, &a6, (uint16_t)port);
		return 0;
	}
	if (hl >= sizeof host || memchr(s, ':', hl))
		return EINVAL; /* an IPv6 host must be in brackets */
	memcpy(host, s, hl);
	host[hl] = 0;
	if (hl == 0 || strcmp(host, "localhost") == 0) {
		a4.s_addr = htonl(INADDR_LOOPBACK);
		add_tcp4(t, &a4, (uint16_t)port);
		add_tcp6(t, &in6addr_loopback, (uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET, host, &a4) != 1 || (ntohl(a4.s_addr) >> 24) != 127)
		return EINVAL; /* the control port is only offered on loopback */
	add_tcp4(t, &a4, (uint16_t)port);
	return 0;
}

/* ---- bounded I/O ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms milliseconds; a signal only shortens the pause (the caller's
 * deadline still bounds the call). */
static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Waits for events on fd until the deadline. Returns 0, ETIMEDOUT, or an
 * errno of poll(). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { fd, events, 0 };
		int64_t left = deadline - now_ms();
		int n;
		if (left <= 0)
			return ETIMEDOUT;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return ETIMEDOUT;
		if (errno != EINTR)
			return errno;
	}
}

/* Connects fd to sa (non-blocking) by the deadline. Returns 0 or an errno. */
static int connect_by(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline)
{
	for (;;) {
		int err, r = connect(fd, sa, len);
		socklen_t el = sizeof err;
		if (r == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/* A unix socket whose backlog is full: try again shortly. */
			struct pollfd none = { -1, 0, 0 };
			if (deadline - now_ms() <= 0)
				return ETIMEDOUT;
			poll(&none, 0, 10);
			continue;
		}
		if (errno != EINPROGRESS)
			return errno;
		if ((err = wait_fd(fd, POLLOUT, deadline)) != 0)
			return err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			return errno;
		return err;
	}
}

/* Maps a failure to reach the daemon to the documented errno. */
static int unreachable(int err)
{
	switch (err) {
	case ENOENT: case ENOTDIR: case ECONNREFUSED: case ECONNRESET:
	case EADDRNOTAVAIL: case ENETUNREACH: case EHOSTUNREACH: case EAFNOSUPPORT:
		return ECONNREFUSED;
	}
	return err; /* ETIMEDOUT, EACCES, EMFILE, ... */
}

/* Opens a control connection. Returns an fd, or -1 with *err set. */
static int dial(const struct target *t, int64_t deadline, int *err)
{
	int i, fd, e = ECONNREFUSED;

	if (t->unix_sock) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			*err = errno;
			return -1;
		}
		e = connect_by(fd, (const struct sockaddr *)&t->un, t->unlen, deadline);
		if (e == 0)
			return fd;
		close(fd);
		*err = unreachable(e);
		return -1;
	}
	for (i = 0; i < t->ntcp; i++) {
		fd = socket(t->tcp[i].ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			e = errno;
			continue;
		}
		e = connect_by(fd, (const struct sockaddr *)&t->tcp[i], t->tcplen[i], deadline);
		if (e == 0)
			return fd;
		close(fd);
		if (e == ETIMEDOUT)
			break;
	}
	*err = unreachable(e);
	return -1;
}

/* ---- who serves the control socket ----
 *
 * Session ids are only believed from a server whose socket belongs to root
 * (tcpcryptd) or to this process's own uid (which could do nothing worse to
 * us than we can ourselves; it lets an application's tests run their own
 * server): otherwise another local user who binds the control address while
 * the daemon is down could answer with session ids of its choosing and
 * defeat the application's authentication. The Go client (ctl.Dialer) checks
 * the same way. */

/* unix_server_uid: the uid the kernel recorded for the listener's creator
 * (SO_PEERCRED), which the server cannot forge. */
static int unix_server_uid(int fd, uid_t *uid)
{
	struct ucred uc;
	socklen_t n = sizeof uc;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &n) < 0)
		return errno;
	*uid = uc.uid;
	return 0;
}

/* tcp_server_uid: TCP carries no credentials, but the kernel knows who owns
 * the server's end of our loopback connection and tells any user through
 * sock_diag (as ss -e shows it). */
static int tcp_server_uid(int fd, uid_t *uid, int64_t deadline)
{
	struct sockaddr_storage la, ra;
	socklen_t ll = sizeof la, rl = sizeof ra;
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req;
	union {
		struct nlmsghdr nh;
		char buf[1024];
	} resp;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	const struct inet_diag_msg *m;
	const struct nlmsgerr *ne;
	ssize_t n;
	int nl, e;

	if (getsockname(fd, (struct sockaddr *)&la, &ll) < 0 ||
	    getpeername(fd, (struct sockaddr *)&ra, &rl) < 0)
		return errno;
	if (la.ss_family != ra.ss_family || (la.ss_family != AF_INET && la.ss_family != AF_INET6))
		return EPROTO;
	memset(&req, 0, sizeof req);
	req.nh.nlmsg_len = sizeof req;
	req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = 1;
	req.r.sdiag_family = (unsigned char)la.ss_family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	/* The socket to find is the server's: its end is our peer. */
	if (la.ss_family == AF_INET) {
		const struct sockaddr_in *l = (const struct sockaddr_in *)&la;
		const struct sockaddr_in *r = (const struct sockaddr_in *)&ra;
		req.r.id.idiag_sport = r->sin_port;
		req.r.id.idiag_dport = l->sin_port;
		memcpy(req.r.id.idiag_src, &r->sin_addr, 4);
		memcpy(req.r.id.idiag_dst, &l->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *l = (const struct sockaddr_in6 *)&la;
		const struct sockaddr_in6 *r = (const struct sockaddr_in6 *)&ra;
		req.r.id.idiag_sport = r->sin6_port;
		req.r.id.idiag_dport = l->sin6_port;
		memcpy(req.r.id.idiag_src, &r->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst, &l->sin6_addr, 16);
	}
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return errno;
	if (sendto(nl, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
		e = errno;
		close(nl);
		return e;
	}
	for (;;) {
		n = recv(nl, &resp, sizeof resp, 0);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			break;
		if (errno == EAGAIN && (e = wait_fd(nl, POLLIN, deadline)) != 0) {
			close(nl);
			return e;
		}
	}
	e = errno;
	close(nl);
	if (n < 0)
		return e;
	if ((size_t)n < sizeof resp.nh || resp.nh.nlmsg_len > (size_t)n || resp.nh.nlmsg_seq != 1)
		return EPROTO;
	if (resp.nh.nlmsg_type == NLMSG_ERROR) {
		if (resp.nh.nlmsg_len < NLMSG_LENGTH(sizeof *ne))
			return EPROTO;
		ne = NLMSG_DATA(&resp.nh);
		return ne->error < 0 ? -ne->error : EPROTO;
	}
	if (resp.nh.nlmsg_type != SOCK_DIAG_BY_FAMILY || resp.nh.nlmsg_len < NLMSG_LENGTH(sizeof *m))
		return EPROTO;
	m = NLMSG_DATA(&resp.nh);
	*uid = m->idiag_uid;
	return 0;
}

/* check_server returns 0 when the server on fd may be believed, EPERM when
 * it runs as another user, or the errno of a failed look-up. */
static int check_server(int fd, int unix_sock, int64_t deadline)
{
	uid_t uid = (uid_t)-1;
	int e = unix_sock ? unix_server_uid(fd, &uid) : tcp_server_uid(fd, &uid, deadline);
	if (e != 0)
		return e == ETIMEDOUT ? e : EPERM; /* no owner known: not believed */
	if (uid != 0 && uid != getuid())
		return EPERM;
	return 0;
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		int e;
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return errno;
		if ((e = wait_fd(fd, POLLOUT, deadline)) != 0)
			return e;
	}
	return 0;
}

/* Reads up to the first newline (or the end of the stream) into buf. Sets
 * *len to the line's length without the newline. Returns 0, ECONNRESET when
 * the daemon closed without a byte, EPROTO for a line over cap bytes,
 * ETIMEDOUT, or an errno of recv(). */
static int read_line(int fd, char *buf, size_t cap, size_t *len, int64_t deadline)
{
	size_t got = 0;
	for (;;) {
		ssize_t n;
		char *nl;
		int e;
		if (got == cap)
			return EPROTO;
		n = recv(fd, buf + got, cap - got, 0);
		if (n > 0) {
			nl = memchr(buf + got, '\n', (size_t)n);
			got += (size_t)n;
			if (nl) {
				*len = (size_t)(nl - buf);
				return 0;
			}
			continue;
		}
		if (n == 0) {
			/* A final line without a newline is a line (docs/ctl-protocol.md). */
			*len = got;
			return got > 0 ? 0 : ECONNRESET;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return errno == ECONNRESET ? ECONNRESET : errno;
		if ((e = wait_fd(fd, POLLIN, deadline)) != 0)
			return e;
	}
}

/* current_target resolves the control address in force now. */
static int current_target(struct target *t)
{
	char addr[CTL_ADDR_MAX];
	int e;

	if ((e = current_addr(addr, sizeof addr)) != 0)
		return e;
	return parse_target(addr, t);
}

/* query_once sends one request op about local -> remote to the server at t,
 * after checking who serves it, and reads the reply into r. Returns what
 * tcpcrypt_reply_parse returns, or the errno of a failed step. */
static int query_once(const struct target *t, const char *op, const char *local, const char *remote,
		      struct tcpcrypt_reply *r, int64_t deadline)
{
	char req[2 * ENDPOINT_MAX + 96];
	int fd, e, werr;
	char *line;
	size_t len = 0;

	snprintf(req, sizeof req,
		 "{\"v\":1,\"id\":1,\"op\":\"%s\",\"args\":{\"local\":\"%s\",\"remote\":\"%s\"}}\n",
		 op, local, remote);
	if ((fd = dial(t, deadline, &e)) < 0)
		return e;
	if ((e = check_server(fd, t->unix_sock, deadline)) != 0) {
		close(fd);
		return e;
	}
	/* If the write fails, the daemon may have refused us (busy) and closed:
	 * read its reply anyway, for the reason. */
	werr = send_all(fd, req, strlen(req), deadline);
	if (werr == ETIMEDOUT) {
		close(fd);
		return ETIMEDOUT;
	}
	line = malloc(REPLY_LINE_MAX);
	if (line == NULL) {
		close(fd);
		return ENOMEM;
	}
	e = read_line(fd, line, REPLY_LINE_MAX, &len, deadline);
	close(fd);
	if (e == 0)
		e = tcpcrypt_reply_parse(line, len, 1, r);
	else if (werr != 0 && e != ETIMEDOUT)
		e = ECONNRESET;
	free(line);
	return e;
}

/* Pauses between the questions of a wait for a pending key exchange: 5 ms
 * first, doubling up to 100 ms (the Go client's ctl.WaitSession does the
 * same). */
#define PENDING_FIRST_MS 5
#define PENDING_MAX_MS 100

/* query asks the daemon for the session of local/remote. While the daemon
 * answers that the key exchange is still running (a client that asks right
 * after connect() returns, before the peer's Init2 arrived), it asks again,
 * on a new connection each time, until the answer is another one or the
 * call's deadline passes; then the connection is still pending, as far as
 * the daemon last said: EINPROGRESS. */
static int query(const char *local, const char *remote, struct tcpcrypt_reply *r)
{
	struct target t;
	int64_t deadline = now_ms() + TCPCRYPT_CTL_TIMEOUT_MS;
	int64_t left;
	int pause = PENDING_FIRST_MS;
	int e;

	if ((e = current_target(&t)) != 0)
		return e;
	for (int asked = 0;; asked++) {
		e = query_once(&t, "sessid", local, remote, r, deadline);
		if (e == ETIMEDOUT && asked > 0)
			return EINPROGRESS; /* the deadline ended a later question */
		if (e != EINPROGRESS)
			return e;
		left = deadline - now_ms();
		if (left <= 0)
			return EINPROGRESS;
		if (left > pause)
			left = pause;
		sleep_ms((int)left);
		pause = pause * 2 > PENDING_MAX_MS ? PENDING_MAX_MS : pause * 2;
	}
}

/* flush asks the daemon to flush the resumption cache state of the
 * connection local/remote ("cache.flush"). The reply reader is the sessid
 * one: a successful reply has no session id (ENOENT with r->ok set), so
 * success is told by r->ok. */
static int flush(const char *local, const char *remote)
{
	struct target t;
	struct tcpcrypt_reply r;
	int e;

	if ((e = current_target(&t)) != 0)
		return e;
	memset(&r, 0, sizeof r); /* query_once may fail before it reads a reply */
	e = query_once(&t, "cache.flush", local, remote, &r, now_ms() + TCPCRYPT_CTL_TIMEOUT_MS);
	if (r.ok && (e == 0 || e == ENOENT))
		return 0;
	return e;
}

/* ---- endpoints ---- */

/* Formats an address and a port (host byte order) as the protocol wants
 * them: "192.0.2.1:443", "[2001:db8::1]:443". IPv4-mapped IPv6 addresses
 * are written as IPv4. */
static void format_v4(char *out, const struct in_addr *a, uint16_t port)
{
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, a, ip, sizeof ip);
	snprintf(out, ENDPOINT_MAX, "%s:%u", ip, (unsigned)port);
}

static void format_v6(char *out, const struct in6_addr *a, uint16_t port)
{
	char ip[INET6_ADDRSTRLEN];
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		struct in_addr a4;
		memcpy(&a4, &a->s6_addr[12], 4);
		format_v4(out, &a4, port);
		return;
	}
	inet_ntop(AF_INET6, a, ip, sizeof ip);
	snprintf(out, ENDPOINT_MAX, "[%s]:%u", ip, (unsigned)port);
}

static int format_sockaddr(char *out, const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		format_v4(out, &sin->sin_addr, ntohs(sin->sin_port));
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		format_v6(out, &sin6->sin6_addr, ntohs(sin6->sin6_port));
		return 0;
	}
	return ENOPROTOOPT;
}

/* Parses a text address ("192.0.2.1", "2001:db8::1", optionally in brackets
 * or with a "%zone", which is dropped) and formats it with port. */
static int format_text(char *out, const char *ip, uint16_t port)
{
	char buf[INET6_ADDRSTRLEN + 1];
	size_t n;
	const char *pct;
	struct in_addr a4;
	struct in6_addr a6;

	if (ip == NULL)
		return EINVAL;
	n = strlen(ip);
	if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']') {
		ip++;
		n -= 2;
	}
	pct = memchr(ip, '%', n);
	if (pct)
		n = (size_t)(pct - ip);
	if (n == 0 || n >= sizeof buf)
		return EINVAL;
	memcpy(buf, ip, n);
	buf[n] = 0;
	if (inet_pton(AF_INET, buf, &a4) == 1 && !pct) {
		format_v4(out, &a4, port);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &a6) == 1) {
		format_v6(out, &a6, port);
		return 0;
	}
	return EINVAL;
}

/* Finds the endpoints of a connected TCP socket. */
static int socket_endpoints(int s, char *local, char *remote)
{
	struct sockaddr_storage la, ra;
	socklen_t ll = sizeof la, rl = sizeof ra;
	int type = 0, proto = 0;
	socklen_t tl = sizeof type, pl = sizeof proto;

	if (getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
		return errno; /* EBADF, ENOTSOCK */
	if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &proto, &pl) < 0)
		return errno;
	if (type != SOCK_STREAM || proto != IPPROTO_TCP)
		return ENOPROTOOPT;
	if (getsockname(s, (struct sockaddr *)&la, &ll) < 0)
		return errno;
	if (la.ss_family != AF_INET && la.ss_family != AF_INET6)
		return ENOPROTOOPT;
	if (getpeername(s, (struct sockaddr *)&ra, &rl) < 0)
		return errno; /* ENOTCONN */
	if (format_sockaddr(local, &la) != 0 || format_sockaddr(remote, &ra) != 0)
		return ENOPROTOOPT;
	return 0;
}

/* ---- the API ---- */

static int fail(int err)
{
	errno = err;
	return -1;
}

API int tcpcrypt_getsockopt(int s, int level, int optname, void *optval, socklen_t *optlen)
{
	char local[ENDPOINT_MAX], remote[ENDPOINT_MAX];
	struct tcpcrypt_reply r;
	int e;

	if (level != IPPROTO_TCP)
		return fail(ENOPROTOOPT);
	if (optname != TCP_CRYPT_SESSID && optname != TCP_CRYPT_ENABLE)
		return fail(ENOPROTOOPT);
	if (optval == NULL || optlen == NULL)
		return fail(EINVAL);
	if (optname == TCP_CRYPT_ENABLE && *optlen < (socklen_t)sizeof(int)) {
		*optlen = sizeof(int);
		return fail(ERANGE);
	}
	if ((e = socket_endpoints(s, local, remote)) != 0)
		return fail(e);
	e = query(local, remote, &r);
	if (optname == TCP_CRYPT_ENABLE) {
		int on = e == 0;
		if (e != 0 && e != ENOENT)
			return fail(e);
		memcpy(optval, &on, sizeof on);
		*optlen = sizeof on;
		return 0;
	}
	if (e != 0)
		return fail(e);
	if (*optlen < r.sid_len) {
		*optlen = (socklen_t)r.sid_len;
		return fail(ERANGE);
	}
	memcpy(optval, r.sid, r.sid_len);
	*optlen = (socklen_t)r.sid_len;
	return 0;
}

API int tcpcrypt_setsockopt(int s, int level, int optname, const void *optval, socklen_t optlen)
{
	char local[ENDPOINT_MAX], remote[ENDPOINT_MAX];
	int on, e;

	/* Policy is per port, in the daemon's rules; the one thing a socket
	 * can ask for is TCP_CRYPT_NOCACHE on its established connection: RFC
	 * 8548 section 3.5's "flush cache state", which removes the secret the
	 * connection used or created from the daemon's cache and caches none
	 * from it later. (For new connections "do not cache" is the rule
	 * option nocache.) */
	if (level != IPPROTO_TCP || optname != TCP_CRYPT_NOCACHE)
		return fail(ENOPROTOOPT);
	if (optval == NULL || optlen < (socklen_t)sizeof(int))
		return fail(EINVAL);
	memcpy(&on, optval, sizeof on);
	if (on == 0)
		return fail(EINVAL); /* a flushed secret cannot come back */
	if ((e = socket_endpoints(s, local, remote)) != 0)
		return fail(e);
	if ((e = flush(local, remote)) != 0)
		return fail(e);
	return 0;
}

API char *tcpcrypt_getsessid(char *remote_ip, uint16_t remote_port, char *local_ip, uint16_t local_port)
{
	static const char digits[] = "0123456789abcdef";
	char local[ENDPOINT_MAX], remote[ENDPOINT_MAX];
	struct tcpcrypt_reply r;
	char *hex;
	size_t i;
	int e;

	if ((e = format_text(remote, remote_ip, remote_port)) != 0 ||
	    (e = format_text(local, local_ip, local_port)) != 0) {
		errno = e;
		return NULL;
	}
	if ((e = query(local, remote, &r)) != 0) {
		errno = e;
		return NULL;
	}
	hex = malloc(2 * r.sid_len + 1);
	if (hex == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < r.sid_len; i++) {
		hex[2 * i] = digits[r.sid[i] >> 4];
		hex[2 * i + 1] = digits[r.sid[i] & 15];
	}
	hex[2 * r.sid_len] = 0;
	return hex;
}

API void tcpcrypt_setparam(int param, void *val)
{
	const char *s = val;
	if (param != TCPCRYPT_PARAM_CTLPATH)
		return;
	pthread_mutex_lock(&ctl_mu);
	if (s == NULL || s[0] == 0) {
		ctl_addr_state = 0;
	} else if (strlen(s) >= sizeof ctl_addr) {
		ctl_addr_state = -1;
	} else {
		memcpy(ctl_addr, s, strlen(s) + 1);
		ctl_addr_state = 1;
	}
	pthread_mutex_unlock(&ctl_mu);
}
