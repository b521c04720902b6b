/* Discord consumers: messages a speedrun viewer reads at a glance, built
 * from envelopes, and the rate-limit signals Discord sends back. */
#ifndef CTRD_DISCORD_H
#define CTRD_DISCORD_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

struct consumer_conf;

#define DISCORD_EMBEDS_MAX	10	/* per message, Discord's limit */

/*
 * Build the JSON body of one execute-webhook request carrying n (1 to
 * DISCORD_EMBEDS_MAX) events, oldest first, one embed each, within every
 * documented Discord limit (content 2000, title 256, description 4096,
 * 25 fields, 6000 characters in all), text cut on UTF-8 character
 * boundaries with an ellipsis, mentions neutralised and allowed_mentions
 * empty.  username and avatar_url come from cf.  Returns a malloc'd
 * NUL-terminated string and its length in *len.
 */
char	*discord_message(const cJSON *const *envelopes, size_t n,
	    const struct consumer_conf *cf, size_t *len);

/* The URL to POST to: cf->url with "wait=true" and, when set,
 * "thread_id=..." added to its query.  Returns a malloc'd string. */
char	*discord_url(const struct consumer_conf *cf);

/*
 * Copy url into buf with the webhook token (the path segment after the
 * webhook id) replaced by "***", for logs, metrics and errors.
 */
void	 discord_redact(const char *url, char *buf, size_t len);

/* What a reply said about the webhook's rate limit. */
struct discord_limit {
	int	has_remaining;
	long	remaining;		/* X-RateLimit-Remaining */
	int64_t	reset_after_ms;		/* X-RateLimit-Reset-After, or -1 */
	int64_t	retry_after_ms;		/* Retry-After header, or -1 */
	int	global;			/* X-RateLimit-Global or -Scope */
};

/* Reset l to "nothing known". */
void	 discord_limit_init(struct discord_limit *l);
/* Feed one raw header line ("Name: value\r\n") of a reply; names are
 * matched in any case, and a status line ("HTTP/...") starts over. */
void	 discord_limit_header(struct discord_limit *l, const char *line,
	    size_t len);
/*
 * How long to wait before the next request to this webhook, in ms, after
 * a reply with this status and body: for 429 the body's retry_after
 * (seconds, fractional) or else the headers; for any reply whose
 * remaining count is 0, its reset-after.  0 means no wait.
 */
/*
 * Whether a 429 is Discord's global limit, which holds every webhook this
 * host calls, not only the one that got it: said by the body's "global":
 * true or by the X-RateLimit-Global or X-RateLimit-Scope header.
 */
int	 discord_limit_global(const struct discord_limit *l, long status,
	    const char *body, size_t len);
int64_t	 discord_pause_ms(const struct discord_limit *l, long status,
	    const char *body, size_t len);

#endif
