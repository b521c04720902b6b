/* Small helpers every module uses: memory, time, text. */
#ifndef CTRD_UTIL_H
#define CTRD_UTIL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Out-of-memory policy: ctrd is one process with bounded queues, so an
 * allocation failure means the machine is out of memory, not that a request
 * was too large (every request size is capped before anything is allocated
 * for it).  The x* wrappers log and abort; callers never check for NULL.
 * cJSON is set up to use them too (util_init), so a NULL from cJSON always
 * means bad input, never a failed allocation.
 */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
void	 util_init(void);

/* Wall clock in milliseconds since the epoch. */
int64_t	 now_ms(void);
/* Monotonic clock in milliseconds; for deadlines and timeouts. */
int64_t	 mono_ms(void);

/*
 * Format a wall-clock time in milliseconds as RFC 3339 UTC with
 * milliseconds, "2026-12-03T21:48:17.123Z".  buf needs 25 bytes.
 */
void	 fmt_rfc3339(char *buf, size_t len, int64_t ms);
/* An HTTP-date in the IMF-fixdate form ("Sun, 06 Nov 1994 08:49:37 GMT")
 * as milliseconds since the epoch, or -1 if s is not one. */
int64_t	 http_date_ms(const char *s);
/*
 * The wait a header line of a reply asks for, "Retry-After: 120\r\n" or
 * with an IMF-fixdate, in milliseconds from now (0 for a date already
 * past); -1 if the line is no Retry-After or one of over 35 bytes, -2 if
 * its value cannot be read.
 */
int64_t	 retry_after_header(const char *line, size_t len);
/* v in decimal at p, zero-padded to width digits; returns the end.  Writes
 * at most 20 characters and no NUL. */
char	*fmt_uint(char *p, uint64_t v, int width);
/* src into dst of len bytes, cut if need be, always NUL-terminated. */
void	 str_copy(char *dst, const char *src, size_t len);

/*
 * Glob match of a whole string: '*' matches any run of characters
 * (including none), '?' matches one byte; everything else is literal.
 * Returns 1 on match, 0 otherwise.
 */
int	 glob_match(const char *glob, const char *s);

/*
 * Returns 1 if s is a name as ctr.conf allows for producers and
 * consumers: an ASCII letter or digit, then up to NAME_CHARS_MAX - 1
 * letters, digits, '_', '.' or '-'; else 0.  It is safe in a URL path, a
 * file name and a log line as it stands.
 */
#define NAME_CHARS_MAX	64
int	 name_is_valid(const char *s);

/* The number of characters (code points) in a UTF-8 string. */
size_t	 utf8_chars(const char *s);

/* Returns 1 if buf[0..len) is well-formed UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF), else 0. */
int	 utf8_valid(const char *buf, size_t len);

#endif
