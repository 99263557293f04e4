/*
 * lookup: resolve names with getaddrinfo(3), the call behind every application's connect(), and print
 * what the C library returned, one line per name:
 *
 *     <name> TAB <milliseconds> TAB <addresses, sorted, comma-separated> | error:<EAI code>
 *
 * The end-to-end suite (e2e_test.go) builds this one source twice, with gcc against glibc and with
 * musl-gcc -static against musl, so that podns is judged by the two resolvers pods really run, not by a
 * client we wrote.  Nothing here resolves a name itself: the libc reads the pod's /etc/resolv.conf (bind
 * mounted by `ip netns exec`), applies its own search list, ndots, timeouts, retries and TCP fallback.
 *
 * Usage: lookup NAME...
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Enough for the largest answer set in testdata/zones (60 addresses) with room to spare. */
#define MAX_ADDRS 512

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Symbolic EAI names, so the Go side compares meanings rather than libc-specific numbers. */
static const char *eai_name(int code)
{
	switch (code) {
	case EAI_NONAME: return "EAI_NONAME";
	case EAI_AGAIN: return "EAI_AGAIN";
	case EAI_FAIL: return "EAI_FAIL";
	case EAI_FAMILY: return "EAI_FAMILY";
	case EAI_MEMORY: return "EAI_MEMORY";
	case EAI_SYSTEM: return "EAI_SYSTEM";
#ifdef EAI_NODATA
	case EAI_NODATA: return "EAI_NODATA";
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
#endif
	default: return "EAI_OTHER";
	}
}

static double elapsed_ms(const struct timespec *start, const struct timespec *end)
{
	return (double)(end->tv_sec - start->tv_sec) * 1e3 + (double)(end->tv_nsec - start->tv_nsec) / 1e6;
}

/* Print one result line; addresses are deduplicated and sorted so that outputs compare as text. */
static void print_addresses(const char *name, double ms, struct addrinfo *list)
{
	static char text[MAX_ADDRS][INET6_ADDRSTRLEN];
	char *sorted[MAX_ADDRS];
	int n = 0;

	for (struct addrinfo *ai = list; ai != NULL && n < MAX_ADDRS; ai = ai->ai_next) {
		const void *addr;
		if (ai->ai_family == AF_INET)
			addr = &((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			addr = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(ai->ai_family, addr, text[n], sizeof text[n]) == NULL)
			continue;
		sorted[n] = text[n];
		n++;
	}
	qsort(sorted, (size_t)n, sizeof sorted[0], compare_strings);

	printf("%s\t%.3f\t", name, ms);
	for (int i = 0; i < n; i++) {
		if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
			continue;
		printf(i > 0 ? ",%s" : "%s", sorted[i]);
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	/*
	 * AF_UNSPEC without AI_ADDRCONFIG: both libcs then ask A and AAAA at once from one socket, the pair
	 * of packets that races in conntrack.  SOCK_STREAM keeps one entry per address.
	 */
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};

	if (argc < 2) {
		fprintf(stderr, "usage: %s NAME...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct addrinfo *list = NULL;
		struct timespec start, end;

		clock_gettime(CLOCK_MONOTONIC, &start);
		int rc = getaddrinfo(argv[i], NULL, &hints, &list);
		clock_gettime(CLOCK_MONOTONIC, &end);

		if (rc != 0) {
			printf("%s\t%.3f\terror:%s\n", argv[i], elapsed_ms(&start, &end), eai_name(rc));
		} else {
			print_addresses(argv[i], elapsed_ms(&start, &end), list);
			freeaddrinfo(list);
		}
		fflush(stdout);
	}
	return 0;
}
