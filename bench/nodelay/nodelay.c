/*
 * nodelay.so: sets TCP_NODELAY on every TCP connection a program accepts. bench/run --knot-nodelay
 * preloads it into Knot (LD_PRELOAD), which leaves Nagle's algorithm on: Knot then writes each answer
 * at once, as CoreDNS (Go sets TCP_NODELAY on every connection) does as kube-dns. See bench/README.md.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void nodelay(int fd)
{
	int one = 1;

	/* Fails harmlessly (ENOTSOCK, EOPNOTSUPP) on anything but a TCP socket. */
	if (fd >= 0)
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
