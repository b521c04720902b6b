/* ctrctl's subcommands, and the event poster they share. */
#ifndef CTRD_CTRCTL_H
#define CTRD_CTRCTL_H

#include <stddef.h>

#define CTRCTL_URL		"http://127.0.0.1:8080/v1/events"
#define CTRCTL_LEGACY_URL	"http://127.0.0.1:8080/api/event"

/* Print the usage of every subcommand and exit 2. */
void	ctrctl_usage(void) __attribute__((noreturn));

/*
 * Each subcommand's main, given its own argv ("send", ...).  Returns the
 * process's exit status: 0 success, 1 refused or failed, 2 usage or
 * connection errors.
 */
int	post_main(int argc, char *argv[]);
int	replay_main(int argc, char *argv[]);
int	sink_main(int argc, char *argv[]);

/*
 * The producer's API key, from keyfile when it is not NULL, else from
 * $CTR_KEY; never from the command line, which other users can read.  A
 * key file readable by group or others is refused.  Writes the key into
 * buf (at least 256 bytes).  Returns 0, or -1 after a message on stderr.
 */
int	post_key(const char *keyfile, char *buf, size_t len);

struct poster;

/*
 * A connection to ctrd for posting events to url: with "Authorization:
 * Bearer key", or with "x-producer-key" (the LiveSplit component's header)
 * when legacy is set.  The key is copied.  Returns the poster, owned by
 * the caller (post_close).
 */
struct poster	*post_open(const char *url, const char *key, int legacy);

/*
 * POST body[0..len) as JSON.  Returns the HTTP status and sets *reply to
 * the reply body (NUL-terminated, owned by the caller), or returns -1
 * after a message on stderr when no HTTP answer came (connection refused,
 * timeout).  A 503 or 429 with a Retry-After of at most 10 seconds is
 * waited out and the body sent again, up to 5 attempts in all.
 */
int		 post_body(struct poster *, const char *body, size_t len,
		    char **reply);
void		 post_close(struct poster *);

#endif
