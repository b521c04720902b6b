/* A minimal TAP producer for the unit tests: ok() records one check and
 * says what failed; done() prints the plan and returns the exit status. */
#ifndef CTRD_TAP_H
#define CTRD_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

static inline int __attribute__((format(printf, 4, 5)))
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", pass ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass) {
		tap_failed++;
		printf("# failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return pass;
}

/* Compare strings, printing both on a mismatch. */
#define is_str(got, want, ...) tap_is_str((got), (want), __FILE__, \
	__LINE__, __VA_ARGS__)

static inline int __attribute__((format(printf, 5, 6)))
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int pass;

	pass = got != NULL && want != NULL ? strcmp(got, want) == 0 :
	    got == want;
	tap_n++;
	printf("%sok %d - ", pass ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass) {
		tap_failed++;
		printf("# failed at %s:%d\n#   got:  %s\n#   want: %s\n", file,
		    line, got ? got : "(null)", want ? want : "(null)");
	}
	fflush(stdout);
	return pass;
}

/* A copy of s with every ' turned into ", for readable JSON literals; the
 * caller frees it. */
static inline char *
dq(const char *s)
{
	char *d = strdup(s), *p;

	if (d == NULL)
		abort();
	for (p = d; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

static inline int
done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
