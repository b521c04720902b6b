/* Helpers shared by the benchmark's load generator and sink. */
#ifndef CTR_BENCH_COMMON_H
#define CTR_BENCH_COMMON_H

#include <sys/resource.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Set by each program's main, for its messages. */
static const char *progname = "bench";

static void __attribute__((noreturn, unused))
die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", progname, what, strerror(errno));
	exit(1);
}

static int64_t __attribute__((unused))
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* This process's own CPU time, to show what the load itself cost. */
static double __attribute__((unused))
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static __attribute__((unused)) void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", progname);
		exit(1);
	}
	return p;
}

/* The value of a header in a block of headers, or NULL. */
static __attribute__((unused)) const char *
header(const char *head, size_t len, const char *name)
{
	const char *p = head, *end = head + len, *nl;
	size_t n = strlen(name);

	while (p < end && (nl = memchr(p, '\n', end - p)) != NULL) {
		p = nl + 1;
		if ((size_t)(end - p) > n && p[n] == ':' &&
		    strncasecmp(p, name, n) == 0) {
			p += n + 1;
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
			return p;
		}
	}
	return NULL;
}

#endif
