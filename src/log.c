/* Logging to stderr with syslog priorities, journald-style under systemd. */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"
#include "util.h"

static int	log_journal;	/* stderr is journald's: use <N> prefixes */
static int	log_debugging;
static int	log_syslog;

static void	vlog(int, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));

void
log_init(int debug)
{
	log_journal = getenv("JOURNAL_STREAM") != NULL;
	log_debugging = debug;
}

void
log_buffer(void)
{
	static char buf[64 * 1024];

	setvbuf(stderr, buf, _IOFBF, sizeof(buf));
}

void
log_flush(void)
{
	fflush(stderr);
}

void
log_to_syslog(void)
{
	openlog("ctrd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = 1;
}

void
log_set_debug(int debug)
{
	log_debugging = debug;
}

/* The time of a line; the calendar part is worked out once a second, as
 * busy daemons log many lines in each. */
static void
stamp_now(char *buf, size_t len)
{
	static int64_t last_sec = -1;
	static char date[20];		/* "YYYY-MM-DDTHH:MM:SS" */
	char full[32];
	int64_t ms = now_ms();

	if (ms / 1000 != last_sec) {
		last_sec = ms / 1000;
		fmt_rfc3339(full, sizeof(full), last_sec * 1000);
		memcpy(date, full, sizeof(date) - 1);
		date[sizeof(date) - 1] = '\0';
	}
	snprintf(buf, len, "%.19s.%03dZ", date, (int)(ms % 1000));
}

static void
vlog(int pri, const char *fmt, va_list ap)
{
	static const char *names[] = { "emerg", "alert", "crit", "error",
	    "warning", "notice", "info", "debug" };
	char msg[2048], stamp[32];

	if (pri == LOG_DEBUG && !log_debugging)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_syslog)
		syslog(pri, "%s", msg);
	else if (log_journal)
		fprintf(stderr, "<%d>%s\n", pri, msg);
	else {
		stamp_now(stamp, sizeof(stamp));
		fprintf(stderr, "%s ctrd %s: %s\n", stamp, names[pri], msg);
	}
}

static void __attribute__((format(printf, 2, 3)))
logpri(int pri, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(pri, fmt, ap);
	va_end(ap);
}

#define LOGFN(fn, pri)					\
void							\
fn(const char *fmt, ...)				\
{							\
	va_list ap;					\
							\
	va_start(ap, fmt);				\
	vlog(pri, fmt, ap);				\
	va_end(ap);					\
}

LOGFN(log_warnx, LOG_WARNING)
LOGFN(log_info, LOG_INFO)
LOGFN(log_notice, LOG_NOTICE)
LOGFN(log_debug, LOG_DEBUG)

void
log_warn(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s", buf, strerror(saved));
}

void
fatal(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	logpri(LOG_ERR, "fatal: %s: %s", buf, strerror(saved));
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	logpri(LOG_ERR, "fatal: %s", buf);
	exit(1);
}

static char *
escape(char *dst, size_t dstlen, const char *src, size_t srclen,
    const char *also)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;
	unsigned char c;

	if (dstlen == 0)
		return dst;
	for (i = 0; i < srclen; i++) {
		c = (unsigned char)src[i];
		if (c == '"' || c == '\\') {
			if (o + 2 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f && strchr(also, c) == NULL) {
			if (o + 1 >= dstlen)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 0xf];
		}
	}
	dst[o] = '\0';
	return dst;
}

char *
log_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	return escape(dst, dstlen, src, srclen, "");
}

char *
log_token(char *dst, size_t dstlen, const char *src)
{
	return escape(dst, dstlen, src, strlen(src), " =");
}
