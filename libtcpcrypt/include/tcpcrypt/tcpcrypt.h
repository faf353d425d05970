/*
 * libtcpcrypt: the session ids of tcpcrypt-protected TCP connections, for
 * applications in C and anything with a C foreign function interface.
 *
 * The library is a client of tcpcryptd's control socket (docs/ctl-protocol.md):
 * every call opens a connection to the daemon, sends one request, reads one
 * reply within a bounded time and closes. It keeps no connection and no state
 * other than the control address set with tcpcrypt_setparam(), so it may be
 * used from several threads at once and across fork().
 *
 * The names, values and signatures are those of the original libtcpcrypt, so
 * programs written against it build unchanged. What each call does now, and
 * every errno it sets, is in libtcpcrypt(3).
 */
#ifndef TCPCRYPT_TCPCRYPT_H
#define TCPCRYPT_TCPCRYPT_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h> /* IPPROTO_TCP, the level of the options */

#ifdef __cplusplus
extern "C" {
#endif

/* Option names for tcpcrypt_getsockopt() and tcpcrypt_setsockopt(), at level
 * IPPROTO_TCP. */
enum {
	TCP_CRYPT_ENABLE      = 0,   /* get: int, 1 if the connection is encrypted, else 0 */
	TCP_CRYPT_CMODE       = 1,   /* not supported: ENOPROTOOPT */
	TCP_CRYPT_SESSID      = 2,   /* get: the session id bytes */
	TCP_CRYPT_RSA_KEY     = 3,   /* not supported: ENOPROTOOPT */

	TCP_CRYPT_APP_SUPPORT = 15,  /* not supported: ENOPROTOOPT */

	/* Non-standard options of the original implementation. */
	TCP_CRYPT_RESET       = 100, /* not supported: ENOPROTOOPT */
	TCP_CRYPT_NOCACHE     = 101, /* set (int, nonzero) on a connected socket: flush its cache state */
	TCP_CRYPT_NETSTAT     = 102  /* not supported: ENOPROTOOPT */
};

/* Parameters for tcpcrypt_setparam(). */
enum {
	TCPCRYPT_PARAM_CTLPATH = 0   /* val: const char *, the control address; NULL resets */
};

/* The length of a tcpcrypt session id (RFC 8548 section 3.4: one TEP byte,
 * then 32 bytes), and so the buffer TCP_CRYPT_SESSID needs. The original
 * library's 32 is too small. */
#define TCPCRYPT_SESSID_MAX 33

/* The control address used when neither tcpcrypt_setparam() nor the
 * TCPCRYPT_CTL environment variable names one. */
#define TCPCRYPT_CTL_DEFAULT "/run/tcpcrypt/ctl"

/* The environment variable naming the control address. */
#define TCPCRYPT_CTL_ENV "TCPCRYPT_CTL"

/* Every call that asks the daemon gives up after this many milliseconds
 * (ETIMEDOUT). */
#define TCPCRYPT_CTL_TIMEOUT_MS 2000

/* Returns 0, or -1 with errno set. See libtcpcrypt(3). */
extern int tcpcrypt_getsockopt(int s, int level, int optname, void *optval,
			       socklen_t *optlen);
/* Always fails: no option can be set per socket (ENOPROTOOPT). */
extern int tcpcrypt_setsockopt(int s, int level, int optname,
			       const void *optval, socklen_t optlen);

/* The session id of the connection local_ip:local_port <-> remote_ip:remote_port
 * of this host (ports in host byte order, IPv4 or IPv6 addresses in text form),
 * as lower case hex in a string from malloc() that the caller must free().
 * NULL with errno set on failure. */
extern char *tcpcrypt_getsessid(char *remote_ip, uint16_t remote_port,
				char *local_ip, uint16_t local_port);

/* Sets a parameter; unknown parameters are ignored. */
extern void tcpcrypt_setparam(int param, void *val);

#ifdef __cplusplus
}
#endif

#endif /* TCPCRYPT_TCPCRYPT_H */
