/*
 * tcprobe: a test program that uses libtcpcrypt exactly as an application
 * would, through <tcpcrypt/tcpcrypt.h> only. It makes or accepts a TCP
 * connection, asks for its session id with TCP_CRYPT_SESSID, TCP_CRYPT_ENABLE
 * and tcpcrypt_getsessid(), and prints one JSON line with what it got (hex,
 * or the errno name). The Go tests (libtcpcrypt_test.go, e2e) run it.
 *
 *   tcprobe [-len N] [-hold] [-early] connect HOST PORT
 *                                                connect, exchange a line, look up
 *   tcprobe [-len N] serve HOST PORT             accept one, exchange a line, look up
 *   tcprobe [-len N] self HOST                   connect to itself over HOST, look up
 *   tcprobe unconnected                          an unconnected TCP socket
 *   tcprobe udp                                  a connected UDP socket
 *   tcprobe sessid RIP RPORT LIP LPORT           tcpcrypt_getsessid() alone
 *   tcprobe setsockopt                           every option, set
 *   tcprobe nocache HOST                         TCP_CRYPT_NOCACHE on a connection of its own
 *   tcprobe threads HOST N ITER                  N threads looking up at once
 *   tcprobe fork HOST                            a child looks up after fork()
 *   tcprobe cloexec HOST                         the flags of the control socket, mid-call
 *
 * -len N passes N as the TCP_CRYPT_SESSID buffer length (default
 * TCPCRYPT_SESSID_MAX); -hold keeps the connection open until standard input
 * ends; -early also looks up right after connect() returns, before any data
 * (event client_early). With TCPROBE_CTL set, the program calls tcpcrypt_setparam() with it.
 */
#define _GNU_SOURCE
#include <tcpcrypt/tcpcrypt.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static socklen_t opt_len = TCPCRYPT_SESSID_MAX;
static int opt_hold;
static int opt_early;

static const char *errname(int e)
{
	static char other[32];
	switch (e) {
	case 0: return "";
	case ENOENT: return "ENOENT";
	case EINPROGRESS: return "EINPROGRESS";
	case ENOTCONN: return "ENOTCONN";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ENOPROTOOPT: return "ENOPROTOOPT";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EPROTO: return "EPROTO";
	case EINVAL: return "EINVAL";
	case ERANGE: return "ERANGE";
	case EAGAIN: return "EAGAIN";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EIO: return "EIO";
	case ECONNRESET: return "ECONNRESET";
	case EBADF: return "EBADF";
	case ENOTSOCK: return "ENOTSOCK";
	}
	snprintf(other, sizeof other, "errno%d", e);
	return other;
}

static void die(const char *what)
{
	fprintf(stderr, "tcprobe: %s: %s\n", what, strerror(errno));
	exit(2);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void tohex(const unsigned char *b, size_t n, char *out)
{
	size_t i;
	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = 0;
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof *sin;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof *sin6;
		return 0;
	}
	fprintf(stderr, "tcprobe: bad address %s\n", host);
	exit(2);
}

static void endpoint(const struct sockaddr_storage *ss, char *ip, size_t cap, uint16_t *port, char *text)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)cap);
		*port = ntohs(sin->sin_port);
		sprintf(text, "%s:%u", ip, *port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)cap);
		*port = ntohs(sin6->sin6_port);
		sprintf(text, "[%s]:%u", ip, *port);
	}
}

/* What one socket's lookups gave. */
struct lookup {
	char local[80], remote[80];
	char sockopt[2 * 64 + 1];
	int sockopt_err;
	socklen_t sockopt_len;
	int enable, enable_err;
	char getsessid[2 * 64 + 1];
	int getsessid_err;
	double seconds;
};

static void look_up(int s, struct lookup *l)
{
	unsigned char buf[64];
	struct sockaddr_storage la, ra;
	socklen_t ll = sizeof la, rl = sizeof ra;
	char lip[64], rip[64];
	uint16_t lport = 0, rport = 0;
	socklen_t len = opt_len;
	int on = -1;
	socklen_t onlen = sizeof on;
	char *hex;
	double t0 = now();

	memset(l, 0, sizeof *l);
	l->enable = -1;
	if (getsockname(s, (struct sockaddr *)&la, &ll) == 0 && getpeername(s, (struct sockaddr *)&ra, &rl) == 0) {
		endpoint(&la, lip, sizeof lip, &lport, l->local);
		endpoint(&ra, rip, sizeof rip, &rport, l->remote);
	}
	if (len > sizeof buf)
		len = sizeof buf;
	if (tcpcrypt_getsockopt(s, IPPROTO_TCP, TCP_CRYPT_SESSID, buf, &len) == 0)
		tohex(buf, len, l->sockopt);
	else
		l->sockopt_err = errno;
	l->sockopt_len = len;
	if (tcpcrypt_getsockopt(s, IPPROTO_TCP, TCP_CRYPT_ENABLE, &on, &onlen) == 0)
		l->enable = on;
	else
		l->enable_err = errno;
	if (l->local[0]) {
		hex = tcpcrypt_getsessid(rip, rport, lip, lport);
		if (hex) {
			snprintf(l->getsessid, sizeof l->getsessid, "%s", hex);
			free(hex);
		} else {
			l->getsessid_err = errno;
		}
	}
	l->seconds = now() - t0;
}

static void print_lookup(const char *event, const struct lookup *l)
{
	printf("{\"event\":\"%s\",\"local\":\"%s\",\"remote\":\"%s\",\"sockopt\":\"%s\",\"sockopt_errno\":\"%s\","
	       "\"sockopt_len\":%u,\"enable\":%d,\"enable_errno\":\"%s\",\"getsessid\":\"%s\",\"getsessid_errno\":\"%s\","
	       "\"seconds\":%.3f}\n",
	       event, l->local, l->remote, l->sockopt, errname(l->sockopt_err), (unsigned)l->sockopt_len,
	       l->enable, errname(l->enable_err), l->getsessid, errname(l->getsessid_err), l->seconds);
	fflush(stdout);
}

static void read_line(int s, char *buf, size_t cap)
{
	size_t got = 0;
	while (got < cap - 1) {
		ssize_t n = read(s, buf + got, 1);
		if (n <= 0)
			die("read");
		if (buf[got++] == '\n')
			break;
	}
	buf[got] = 0;
}

static void write_all(int s, const char *p)
{
	size_t n = strlen(p);
	while (n > 0) {
		ssize_t w = write(s, p, n);
		if (w <= 0)
			die("write");
		p += w;
		n -= (size_t)w;
	}
}

static void wait_stdin(void)
{
	char b[256];
	while (read(0, b, sizeof b) > 0)
		;
}

static int cmd_connect(const char *host, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct lookup l;
	char line[64];
	int s;

	resolve(host, (uint16_t)atoi(port), &ss, &len);
	if ((s = socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
		die("socket");
	if (connect(s, (struct sockaddr *)&ss, len) < 0)
		die("connect");
	if (opt_early) {
		/* At once, as an application that checks the session before it
		 * sends anything: the key exchange may still be running. */
		look_up(s, &l);
		print_lookup("client_early", &l);
	}
	/* One line each way: the key exchange is over at both ends once the
	 * answer arrives. */
	write_all(s, "ping\n");
	read_line(s, line, sizeof line);
	look_up(s, &l);
	print_lookup("client", &l);
	if (opt_hold)
		wait_stdin();
	close(s);
	return 0;
}

static int cmd_serve(const char *host, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct lookup l;
	char line[64];
	int ls, s, one = 1;

	resolve(host, (uint16_t)atoi(port), &ss, &len);
	if ((ls = socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
		die("socket");
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(ls, (struct sockaddr *)&ss, len) < 0 || listen(ls, 1) < 0)
		die("bind/listen");
	printf("{\"event\":\"listening\"}\n");
	fflush(stdout);
	if ((s = accept(ls, NULL, NULL)) < 0)
		die("accept");
	read_line(s, line, sizeof line);
	write_all(s, "pong\n");
	look_up(s, &l);
	print_lookup("server", &l);
	/* Until the client closes. */
	while (read(s, line, sizeof line) > 0)
		;
	close(s);
	close(ls);
	return 0;
}

/* A connection from this process to itself; returns the client socket. */
static int self_pair(const char *host, int *server)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int ls, c, s;

	resolve(host, 0, &ss, &len);
	if ((ls = socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
		die("socket");
	if (bind(ls, (struct sockaddr *)&ss, len) < 0 || listen(ls, 1) < 0)
		die("bind/listen");
	len = sizeof ss;
	if (getsockname(ls, (struct sockaddr *)&ss, &len) < 0)
		die("getsockname");
	if ((c = socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
		die("socket");
	if (connect(c, (struct sockaddr *)&ss, len) < 0)
		die("connect");
	if ((s = accept(ls, NULL, NULL)) < 0)
		die("accept");
	close(ls);
	*server = s;
	return c;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int cmd_self(const char *host)
{
	struct lookup l;
	int srv, c = self_pair(host, &srv);
	int before = count_fds(), after;
	look_up(c, &l);
	after = count_fds();
	print_lookup("self", &l);
	printf("{\"event\":\"fds\",\"before\":%d,\"after\":%d}\n", before, after);
	close(c);
	close(srv);
	return 0;
}

/* nocache HOST: TCP_CRYPT_NOCACHE on a connection of its own, then with
 * the value 0 and with a short optlen; and on an unconnected socket. */
static int cmd_nocache(const char *host)
{
	struct sockaddr_storage la, ra;
	socklen_t ll = sizeof la, rl = sizeof ra;
	char lip[64], rip[64], local[80], remote[80];
	uint16_t lport, rport;
	int srv, c = self_pair(host, &srv), one = 1, zero = 0, e_one, e_zero, e_short, e_unconn;
	int u = socket(AF_INET, SOCK_STREAM, 0);

	if (getsockname(c, (struct sockaddr *)&la, &ll) < 0 || getpeername(c, (struct sockaddr *)&ra, &rl) < 0)
		die("endpoints");
	endpoint(&la, lip, sizeof lip, &lport, local);
	endpoint(&ra, rip, sizeof rip, &rport, remote);
	e_one = tcpcrypt_setsockopt(c, IPPROTO_TCP, TCP_CRYPT_NOCACHE, &one, sizeof one) == 0 ? 0 : errno;
	e_zero = tcpcrypt_setsockopt(c, IPPROTO_TCP, TCP_CRYPT_NOCACHE, &zero, sizeof zero) == 0 ? 0 : errno;
	e_short = tcpcrypt_setsockopt(c, IPPROTO_TCP, TCP_CRYPT_NOCACHE, &one, 1) == 0 ? 0 : errno;
	e_unconn = tcpcrypt_setsockopt(u, IPPROTO_TCP, TCP_CRYPT_NOCACHE, &one, sizeof one) == 0 ? 0 : errno;
	printf("{\"event\":\"nocache\",\"local\":\"%s\",\"remote\":\"%s\",\"errno\":\"%s\",\"zero_errno\":\"%s\","
	       "\"short_errno\":\"%s\",\"unconnected_errno\":\"%s\"}\n",
	       local, remote, errname(e_one), errname(e_zero), errname(e_short), errname(e_unconn));
	close(u);
	close(c);
	close(srv);
	return 0;
}

static int cmd_unconnected(void)
{
	struct lookup l;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		die("socket");
	look_up(s, &l);
	print_lookup("unconnected", &l);
	close(s);
	return 0;
}

static int cmd_udp(void)
{
	struct sockaddr_in sin;
	struct lookup l;
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(9);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || connect(s, (struct sockaddr *)&sin, sizeof sin) < 0)
		die("udp");
	look_up(s, &l);
	print_lookup("udp", &l);
	close(s);
	return 0;
}

static int cmd_sessid(char **argv)
{
	char *hex = tcpcrypt_getsessid(argv[0], (uint16_t)atoi(argv[1]), argv[2], (uint16_t)atoi(argv[3]));
	int e = errno;
	printf("{\"event\":\"sessid\",\"getsessid\":\"%s\",\"getsessid_errno\":\"%s\"}\n", hex ? hex : "", hex ? "" : errname(e));
	free(hex);
	return 0;
}

static int cmd_setsockopt(void)
{
	static const int opts[] = { TCP_CRYPT_ENABLE, TCP_CRYPT_CMODE, TCP_CRYPT_SESSID, TCP_CRYPT_RSA_KEY,
				    TCP_CRYPT_APP_SUPPORT, TCP_CRYPT_RESET, TCP_CRYPT_NOCACHE, TCP_CRYPT_NETSTAT };
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	size_t i;
	printf("{\"event\":\"setsockopt\",\"errnos\":[");
	for (i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		int r = tcpcrypt_setsockopt(s, IPPROTO_TCP, opts[i], &one, sizeof one);
		printf("%s\"%s\"", i ? "," : "", r == 0 ? "OK" : errname(errno));
	}
	printf("],\"get_errnos\":[");
	for (i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		unsigned char buf[256];
		socklen_t len = sizeof buf;
		int r = tcpcrypt_getsockopt(s, IPPROTO_TCP, opts[i], buf, &len);
		printf("%s\"%s\"", i ? "," : "", r == 0 ? "OK" : errname(errno));
	}
	{
		unsigned char buf[64];
		socklen_t len = sizeof buf;
		int r = tcpcrypt_getsockopt(s, SOL_SOCKET, TCP_CRYPT_SESSID, buf, &len);
		printf("],\"other_level\":\"%s\"", r == 0 ? "OK" : errname(errno));
		r = tcpcrypt_getsockopt(s, IPPROTO_TCP, TCP_CRYPT_SESSID, NULL, &len);
		printf(",\"null_optval\":\"%s\"", r == 0 ? "OK" : errname(errno));
		r = tcpcrypt_getsockopt(-1, IPPROTO_TCP, TCP_CRYPT_SESSID, buf, &len);
		printf(",\"bad_fd\":\"%s\"", r == 0 ? "OK" : errname(errno));
		r = tcpcrypt_getsockopt(0, IPPROTO_TCP, TCP_CRYPT_SESSID, buf, &len);
		printf(",\"not_socket\":\"%s\"", r == 0 ? "OK" : errname(errno));
		len = 1;
		r = tcpcrypt_getsockopt(s, IPPROTO_TCP, TCP_CRYPT_ENABLE, buf, &len);
		printf(",\"enable_short\":\"%s\",\"enable_short_len\":%u}\n", r == 0 ? "OK" : errname(errno), (unsigned)len);
	}
	close(s);
	return 0;
}

struct worker {
	int sock, iter, ok;
	char want[2 * 64 + 1];
};

static void *work(void *arg)
{
	struct worker *w = arg;
	int i;
	for (i = 0; i < w->iter; i++) {
		unsigned char buf[64];
		char hex[2 * 64 + 1];
		socklen_t len = sizeof buf;
		if (tcpcrypt_getsockopt(w->sock, IPPROTO_TCP, TCP_CRYPT_SESSID, buf, &len) != 0)
			continue;
		tohex(buf, len, hex);
		if (strcmp(hex, w->want) == 0)
			w->ok++;
	}
	return NULL;
}

static int cmd_threads(const char *host, int n, int iter)
{
	struct worker w[64];
	pthread_t th[64];
	struct lookup l;
	const char *ctl = getenv("TCPROBE_CTL");
	int srv, c = self_pair(host, &srv), i, ok = 0;

	if (n > 64)
		n = 64;
	look_up(c, &l);
	for (i = 0; i < n; i++) {
		w[i].sock = c;
		w[i].iter = iter;
		w[i].ok = 0;
		strcpy(w[i].want, l.sockopt);
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	/* Meanwhile, set the same control address again and again. */
	for (i = 0; i < 200 && ctl; i++)
		tcpcrypt_setparam(TCPCRYPT_PARAM_CTLPATH, (void *)ctl);
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		ok += w[i].ok;
	}
	printf("{\"event\":\"threads\",\"want\":\"%s\",\"ok\":%d,\"total\":%d}\n", l.sockopt, ok, n * iter);
	return 0;
}

static int cmd_fork(const char *host)
{
	struct lookup l;
	int srv, c = self_pair(host, &srv), status;
	pid_t pid;

	look_up(c, &l);
	print_lookup("parent", &l);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		struct lookup cl;
		look_up(c, &cl);
		print_lookup("child", &cl);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("child");
	return 0;
}

struct one_lookup {
	int sock, err;
};

static void *lookup_thread(void *arg)
{
	struct one_lookup *o = arg;
	unsigned char buf[64];
	socklen_t len = sizeof buf;
	if (tcpcrypt_getsockopt(o->sock, IPPROTO_TCP, TCP_CRYPT_SESSID, buf, &len) != 0)
		o->err = errno;
	return NULL;
}

/* Starts a lookup in a thread (against a daemon that does not answer, so
 * that the control connection stays open), and meanwhile inspects every
 * descriptor the library opened: it must be close-on-exec and non-blocking. */
static int cmd_cloexec(const char *host)
{
	struct one_lookup o;
	pthread_t th;
	struct timespec pause = { 0, 300 * 1000 * 1000 };
	int srv, c = self_pair(host, &srv), extra = 0, without = 0, blocking = 0;
	DIR *d;
	struct dirent *e;

	/* Descriptors open before the call (some may be inherited) do not count. */
	static char before[4096];
	d = opendir("/proc/self/fd");
	if (!d)
		die("opendir");
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd != dirfd(d) && fd >= 0 && fd < (int)sizeof before)
			before[fd] = 1;
	}
	closedir(d);
	o.sock = c;
	o.err = 0;
	pthread_create(&th, NULL, lookup_thread, &o);
	nanosleep(&pause, NULL);
	d = opendir("/proc/self/fd");
	if (!d)
		die("opendir");
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name), fdflags, flflags;
		if (e->d_name[0] == '.' || fd == dirfd(d) || (fd >= 0 && fd < (int)sizeof before && before[fd]))
			continue;
		extra++;
		fdflags = fcntl(fd, F_GETFD);
		flflags = fcntl(fd, F_GETFL);
		if (fdflags < 0 || !(fdflags & FD_CLOEXEC))
			without++;
		if (flflags < 0 || !(flflags & O_NONBLOCK))
			blocking++;
	}
	closedir(d);
	pthread_join(th, NULL);
	printf("{\"event\":\"cloexec\",\"extra\":%d,\"without\":%d,\"blocking\":%d,\"errno\":\"%s\"}\n",
	       extra, without, blocking, errname(o.err));
	return 0;
}

int main(int argc, char **argv)
{
	const char *ctl = getenv("TCPROBE_CTL");
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-len") == 0 && i + 1 < argc)
			opt_len = (socklen_t)atoi(argv[++i]);
		else if (strcmp(argv[i], "-hold") == 0)
			opt_hold = 1;
		else if (strcmp(argv[i], "-early") == 0)
			opt_early = 1;
		else
			break;
	}
	if (ctl)
		tcpcrypt_setparam(TCPCRYPT_PARAM_CTLPATH, (void *)ctl);
	argc -= i;
	argv += i;
	if (argc >= 3 && strcmp(argv[0], "connect") == 0)
		return cmd_connect(argv[1], argv[2]);
	if (argc >= 3 && strcmp(argv[0], "serve") == 0)
		return cmd_serve(argv[1], argv[2]);
	if (argc >= 2 && strcmp(argv[0], "self") == 0)
		return cmd_self(argv[1]);
	if (argc >= 1 && strcmp(argv[0], "unconnected") == 0)
		return cmd_unconnected();
	if (argc >= 1 && strcmp(argv[0], "udp") == 0)
		return cmd_udp();
	if (argc >= 5 && strcmp(argv[0], "sessid") == 0)
		return cmd_sessid(argv + 1);
	if (argc >= 1 && strcmp(argv[0], "setsockopt") == 0)
		return cmd_setsockopt();
	if (argc >= 2 && strcmp(argv[0], "nocache") == 0)
		return cmd_nocache(argv[1]);
	if (argc >= 4 && strcmp(argv[0], "threads") == 0)
		return cmd_threads(argv[1], atoi(argv[2]), atoi(argv[3]));
	if (argc >= 2 && strcmp(argv[0], "fork") == 0)
		return cmd_fork(argv[1]);
	if (argc >= 2 && strcmp(argv[0], "cloexec") == 0)
		return cmd_cloexec(argv[1]);
	fprintf(stderr, "usage: see the comment at the top of tcprobe.c\n");
	return 2;
}
