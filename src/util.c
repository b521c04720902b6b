/* Memory, clocks, globs, names and UTF-8 checks shared by every module. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "util.h"

void *
xmalloc(size_t n)
{
	void *p;

	if ((p = malloc(n ? n : 1)) == NULL)
		fatal("malloc %zu", n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n ? n : 1, size ? size : 1)) == NULL)
		fatal("calloc %zu x %zu", n, size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n ? n : 1)) == NULL)
		fatal("realloc %zu", n);
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p;

	p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
util_init(void)
{
	cJSON_Hooks hooks = { xmalloc, free };

	cJSON_InitHooks(&hooks);
}

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
fmt_uint(char *p, uint64_t v, int width)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v != 0);
	while (n < width && n < (int)sizeof(tmp))
		tmp[n++] = '0';
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

void
str_copy(char *dst, const char *src, size_t len)
{
	size_t n = strlen(src);

	if (len == 0)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void
fmt_rfc3339(char *buf, size_t len, int64_t ms)
{
	char tmp[40], *p = tmp;
	struct tm tm;
	time_t secs;
	int frac;

	secs = (time_t)(ms / 1000);
	frac = (int)(ms % 1000);
	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	gmtime_r(&secs, &tm);
	/* By hand, not snprintf: every event and log line has one. */
	p = fmt_uint(p, (uint64_t)(tm.tm_year + 1900), 4);
	*p++ = '-';
	p = fmt_uint(p, (uint64_t)tm.tm_mon + 1, 2);
	*p++ = '-';
	p = fmt_uint(p, (uint64_t)tm.tm_mday, 2);
	*p++ = 'T';
	p = fmt_uint(p, (uint64_t)tm.tm_hour, 2);
	*p++ = ':';
	p = fmt_uint(p, (uint64_t)tm.tm_min, 2);
	*p++ = ':';
	p = fmt_uint(p, (uint64_t)tm.tm_sec, 2);
	*p++ = '.';
	p = fmt_uint(p, (uint64_t)frac, 3);
	*p++ = 'Z';
	*p = '\0';
	str_copy(buf, tmp, len);
}

int64_t
http_date_ms(const char *s)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	time_t t;
	int i, ok = 0;

	/* Only IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT": what RFC 9110
	 * has senders use; byte by byte, since strptime heeds the locale.
	 * XXX: the obsolete RFC 850 and asctime forms are not read. */
	if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' ||
	    s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' ||
	    strcmp(s + 25, " GMT") != 0)
		return -1;
	for (i = 0; i < 7; i++)
		ok |= strncmp(s, days[i], 3) == 0;
	for (i = 0; i < 12 && strncmp(s + 8, months[i], 3) != 0; i++)
		;
	if (!ok || i == 12)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mon = i;
#define DIGITS2(p)	((p)[0] >= '0' && (p)[0] <= '9' && (p)[1] >= '0' && \
	(p)[1] <= '9' ? ((p)[0] - '0') * 10 + (p)[1] - '0' : -1)
	tm.tm_mday = DIGITS2(s + 5);
	tm.tm_year = DIGITS2(s + 12) * 100 + DIGITS2(s + 14) - 1900;
	tm.tm_hour = DIGITS2(s + 17);
	tm.tm_min = DIGITS2(s + 20);
	tm.tm_sec = DIGITS2(s + 23);
	if (DIGITS2(s + 12) < 0 || DIGITS2(s + 14) < 0 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour < 0 || tm.tm_hour > 23 ||
	    tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
	    tm.tm_sec > 60)
		return -1;
#undef DIGITS2
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	return (int64_t)t * 1000;
}

int64_t
retry_after_header(const char *line, size_t len)
{
	char buf[48], *v, *end;
	int64_t at;
	double secs;

	/* A value too long for any date is ignored, like no header. */
	if (len <= 12 || len - 12 >= sizeof(buf) ||
	    strncasecmp(line, "Retry-After:", 12) != 0)
		return -1;
	memcpy(buf, line + 12, len - 12);
	buf[len - 12] = '\0';
	for (v = buf; *v == ' ' || *v == '\t'; v++)
		;
	for (end = v + strlen(v); end > v && (end[-1] == ' ' ||
	    end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'); end--)
		;
	*end = '\0';
	/* Whole seconds by RFC 9110; a fraction is taken as it is. */
	secs = strtod(v, &end);
	if (end != v && *end == '\0' && secs >= 0 && secs < 86400)
		return (int64_t)(secs * 1000);
	if ((at = http_date_ms(v)) != -1)
		return at > now_ms() ? at - now_ms() : 0;
	return -2;
}

int
glob_match(const char *glob, const char *s)
{
	const char *star = NULL, *resume = NULL;

	/* Iterative, with one backtrack point: linear in practice and never
	 * exponential, whatever the producer sends. */
	while (*s != '\0') {
		if (*glob == '*') {
			star = glob++;
			resume = s;
		} else if (*glob == '?' || *glob == *s) {
			glob++;
			s++;
		} else if (star != NULL) {
			glob = star + 1;
			s = ++resume;
		} else
			return 0;
	}
	while (*glob == '*')
		glob++;
	return *glob == '\0';
}

static int
name_char(char c, int first)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return !first && (c == '_' || c == '.' || c == '-');
}

int
name_is_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= NAME_CHARS_MAX || !name_char(s[i], i == 0))
			return 0;
	return i > 0;
}

int
utf8_valid(const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;
	const unsigned char *end = p + len;
	unsigned c, need, min, cp;

	while (p < end) {
		c = *p++;
		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			min = 0x80;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			min = 0x800;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			min = 0x10000;
			cp = c & 0x07;
		} else
			return 0;
		if ((size_t)(end - p) < need)
			return 0;
		while (need-- > 0) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (*p++ & 0x3f);
		}
		if (cp < min || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
	}
	return 1;
}

size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}
