/* Logging with syslog priorities, to stderr. */
#ifndef CTRD_LOG_H
#define CTRD_LOG_H

#include <stddef.h>

/*
 * Lines go to stderr.  Under systemd (JOURNAL_STREAM set) each line starts
 * with a "<N>" priority prefix that journald understands; elsewhere with a
 * timestamp and a level name.  Nothing here ever receives keys, secrets or
 * request bodies above debug: callers pass only what may be shown.
 */
void	log_init(int debug);
void	log_set_debug(int debug);
/*
 * Buffer stderr, for a process that calls log_flush once per turn of its
 * loop: one write(2) for all the lines of a turn instead of one a line.
 */
void	log_buffer(void);
void	log_flush(void);
/* From now on write to syslog(3) instead (after daemonizing). */
void	log_to_syslog(void);

void	log_warn(const char *, ...)	__attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...)	__attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...)	__attribute__((format(printf, 1, 2)));
void	log_notice(const char *, ...)	__attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...)	__attribute__((format(printf, 1, 2)));
/* Log at error priority (adding errno text for fatal) and exit 1. */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Copy untrusted text into dst for a key=value log line: printable ASCII
 * stays, '"' and '\\' are escaped, everything else becomes \xNN; the result
 * is cut at dstlen - 1 and always terminated.  Returns dst.
 */
char	*log_escape(char *dst, size_t dstlen, const char *src, size_t srclen);
/* The same, for a value in a key=value line: space and '=' are escaped
 * too, so that producer text cannot forge another field. */
char	*log_token(char *dst, size_t dstlen, const char *src);

#endif
