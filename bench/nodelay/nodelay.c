/*
 * nodelay.so: sets TCP_NODELAY on the TCP connections a program accepts, as Go (and so CoreDNS, the
 * cluster DNS podns forwards to) does on every connection. bench/run preloads it into Knot
 * (LD_PRELOAD), which leaves Nagle's algorithm on: with it, Knot writes each answer at once. With
 * NODELAY_PORT set, only connections accepted on that local port get it, so one Knot serves both
 * ways. See bench/README.md, "Knot and Nagle's algorithm".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

/* local_port returns fd's local port, or -1. */
static int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

static void nodelay(int fd)
{
	const char *only = getenv("NODELAY_PORT");
	int one = 1;

	if (fd < 0 || (only && *only && local_port(fd) != atoi(only)))
		return;
	/* Fails harmlessly (ENOTSOCK, EOPNOTSUPP) on anything but a TCP socket. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	static int (*next)(int, struct sockaddr *, socklen_t *, int);
	int c;

	if (!next)
		next = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	c = next(fd, addr, len, flags);
	nodelay(c);
	return c;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	static int (*next)(int, struct sockaddr *, socklen_t *);
	int c;

	if (!next)
		next = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
	c = next(fd, addr, len);
	nodelay(c);
	return c;
}
