/* Fan-out: per-consumer queues, deadlines, retries, and the libcurl multi
 * engine that makes every attempt from the one event loop. */
#include "autoconf.h"

#include <sys/epoll.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "config.h"
#include "deliver.h"
#include "discord.h"
#include "event.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "pattern.h"
#include "sign.h"
#include "util.h"

#define RESPONSE_READ_MAX	(64 * 1024)	/* of a consumer's reply */
#define BACKOFF_FIRST_MS	20
#define BACKOFF_MAX_MS		400
#define ATTEMPT_MIN_MS		5	/* less left is not worth a try */
#define EASY_POOL_MAX		256
#define DL_BUF_MAX		(64 * 1024)	/* written when fuller */
#define DISCORD_REPLY_MAX	4096	/* kept, for a 429's retry_after */
#define BREAKER_FIRST_MS	500	/* first time a circuit stays open */
#define BREAKER_MAX_MS		30000	/* doubling up to this */
#define OVERLOAD_LAG_MS		100	/* see deliver_overloaded */

/* One serialized envelope, shared by all of its deliveries. */
struct body {
	unsigned	 refs;
	char		 id[EVENT_ID_LEN + 1];
	char		*data;
	size_t		 len;
};

struct consumer {
	const struct consumer_conf *cf;
	struct fanout		*fo;
	struct mconsumer	*m;
	struct delivery		*head;		/* waiting, oldest first */
	struct delivery		*tail;
	unsigned		 queued;
	unsigned		 in_flight;	/* attempting or backing off */
	char			**header_lines;	/* "Name: value" */
	/* kind discord: one request at a time, paused by rate limits */
	char			*discord_url;
	CURLU			*curlu;		/* the URL, parsed once */
	int64_t			 paused_until;	/* mono ms, 0: not paused */
	int			 failures;	/* in a row, for backoff */
	/* kind webhook: the circuit breaker.  Closed: open_until is 0.
	 * Open: until open_until, every delivery is dead-lettered at once.
	 * Half open, after that: one attempt, whose outcome closes or opens
	 * it again for twice as long.  XXX: kept per generation, so a
	 * reload closes every circuit. */
	int64_t			 open_until;	/* mono ms */
	unsigned		 trips;		/* openings in a row */
	double			 answer_ms;	/* smoothed time to answer */
};

struct fanout {
	struct config		*cf;
	int			 dead_letter_fd;
	struct consumer		*consumers;
	size_t			 nconsumers;
	struct consumer		**matched;	/* scratch for deliver_event */
	unsigned		 refs;
	struct fanout		*next;		/* all live generations */
};

/* One event on its way to one consumer. */
struct delivery {
	struct delivery		*next;		/* queue or backoff list */
	struct delivery		*wire_prev;	/* attempts curl holds */
	struct delivery		*wire_next;
	struct consumer		*c;
	struct body		*body;
	int64_t			 recv_mono;
	int64_t			 deadline;
	int64_t			 retry_at;
	int			 attempts;
	long			 status;	/* last HTTP status or 0 */
	CURLcode		 rc;		/* last attempt's result */
	int64_t			 sent_mono;	/* last attempt's start */
	int64_t			 retry_after_ms; /* from the reply, or -1 */
	size_t			 resp_read;
	CURL			*easy;
	struct curl_slist	*hdrs;
	char			 error[CURL_ERROR_SIZE];
	/* kind discord: the events sent along in the same message, the
	 * message itself, and what the reply said about rate limits */
	struct delivery		*batch;
	char			*payload;
	size_t			 payload_len;
	struct discord_limit	 limit;
	char			*reply;
	size_t			 reply_len;
};

static CURLM		*multi;
static int64_t		 curl_due = -1;		/* mono ms, -1: none */
static struct fanout	*current;
static struct fanout	*fanouts;
static struct delivery	*backoff;		/* waiting to retry */
static struct delivery	*wire;			/* attempts in curl */
static size_t		 pending;
static CURL		*easy_pool[EASY_POOL_MAX];
static int		 neasy_pool;
/* Dead-letter lines not yet written, all to dl_fd. */
static char		*dl_buf;
static size_t		 dl_len, dl_cap, dl_lines;
static int		 dl_fd = -1;

static void	pump(struct consumer *);
static void	dl_flush(void);
static void	circuit_result(struct consumer *, int ok);
static void	pump_discord(struct consumer *);
static void	discord_done(struct delivery *, CURLcode);
static void	finish(struct delivery *, const char *reason);

static void
body_unref(struct body *b)
{
	if (--b->refs == 0) {
		free(b->data);
		free(b);
	}
}

static void
fanout_destroy(struct fanout *fo)
{
	struct fanout **pp;
	struct consumer *c;
	size_t i, k;

	for (pp = &fanouts; *pp != NULL; pp = &(*pp)->next)
		if (*pp == fo) {
			*pp = fo->next;
			break;
		}
	if (dl_len > 0)
		dl_flush();	/* lines may be waiting for this descriptor */
	if (fo->dead_letter_fd != -1 &&
	    (current == NULL || current->dead_letter_fd != fo->dead_letter_fd))
		close(fo->dead_letter_fd);
	for (i = 0; i < fo->nconsumers; i++) {
		c = &fo->consumers[i];
		free(c->discord_url);
		curl_url_cleanup(c->curlu);
		for (k = 0; k < c->cf->nheaders; k++)
			free(c->header_lines[k]);
		free(c->header_lines);
	}
	free(fo->consumers);
	free(fo->matched);
	config_free(fo->cf);
	free(fo);
}

void
fanout_ref(struct fanout *fo)
{
	fo->refs++;
}

void
fanout_unref(struct fanout *fo)
{
	if (--fo->refs == 0)
		fanout_destroy(fo);
}

struct fanout *
fanout_current(void)
{
	return current;
}

const struct config *
fanout_config(const struct fanout *fo)
{
	return fo->cf;
}

void
fanout_install(struct config *cf, int dead_letter_fd)
{
	struct fanout *fo, *old = current;
	struct consumer *c;
	size_t i, k, n;

	fo = xcalloc(1, sizeof(*fo));
	fo->cf = cf;
	fo->dead_letter_fd = dead_letter_fd;
	fo->consumers = xcalloc(cf->nconsumers, sizeof(*fo->consumers));
	fo->nconsumers = cf->nconsumers;
	fo->matched = xcalloc(cf->nconsumers, sizeof(*fo->matched));
	for (i = 0; i < cf->nconsumers; i++) {
		c = &fo->consumers[i];
		c->cf = &cf->consumers[i];
		c->fo = fo;
		c->m = metrics_consumer(c->cf->name);
		c->m->circuit_open = 0;	/* a new generation starts closed */
		c->header_lines = xcalloc(c->cf->nheaders,
		    sizeof(*c->header_lines));
		for (k = 0; k < c->cf->nheaders; k++) {
			n = strlen(c->cf->headers[k].name) +
			    strlen(c->cf->headers[k].value) + 3;
			c->header_lines[k] = xmalloc(n);
			snprintf(c->header_lines[k], n, "%s: %s",
			    c->cf->headers[k].name, c->cf->headers[k].value);
		}
		if (c->cf->kind == CONSUMER_DISCORD)
			c->discord_url = discord_url(c->cf);
		/* Parsed once, or libcurl parses the text at every attempt.
		 * Should libcurl refuse what the configuration accepted,
		 * attempts take the text and fail with libcurl's reason. */
		if ((c->curlu = curl_url()) == NULL)
			fatalx("curl_url failed");
		if (curl_url_set(c->curlu, CURLUPART_URL, c->discord_url !=
		    NULL ? c->discord_url : c->cf->url, 0) != CURLUE_OK) {
			curl_url_cleanup(c->curlu);
			c->curlu = NULL;
		}
	}
	fo->refs = 1;
	fo->next = fanouts;
	fanouts = fo;
	current = fo;
	if (old != NULL) {
		/* An old generation that shares the descriptor must not
		 * close it: hand it the new one's ownership question. */
		if (old->dead_letter_fd == dead_letter_fd)
			old->dead_letter_fd = -1;
		fanout_unref(old);
	}
}

int
deliver_open_dead_letter(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

size_t
deliver_pending(void)
{
	return pending;
}

/*
 * Overload: the event loop has been busy at least overload_busy_pct of the
 * last few hundred milliseconds while a delivery to a webhook consumer has
 * waited OVERLOAD_LAG_MS in its queue: ctrd is near its limit and what it
 * has accepted is piling up.  It lasts while a delivery has waited half
 * as long and the loop is at least half as busy: refusing costs less than
 * accepting, so the load falls, and a client that ignores Retry-After
 * could keep a loop busy with refusals alone; the wait is what ends it.
 * XXX: requests not yet read are not seen; ctrd saturated by ingest alone
 * slows its producers down rather than answering 503.
 */
int
deliver_overloaded(void)
{
	static int shedding;
	const struct consumer *c;
	double busy;
	int64_t now, lag;
	size_t i;

	if (current == NULL || current->cf->overload_busy_pct >= 100)
		return shedding = 0;
	busy = current->cf->overload_busy_pct / 100.0;
	lag = OVERLOAD_LAG_MS;
	if (shedding) {
		busy /= 2;
		lag /= 2;
	}
	if (loop_load() < busy)
		return shedding = 0;
	/* Queues in receipt order: a head is its queue's oldest.  Discord
	 * webhooks wait for Discord's rate limits, broken consumers for
	 * their circuit, and consumers that take longer to answer than the
	 * wait in question for themselves: none of that is ctrd falling
	 * behind. */
	now = mono_ms();
	for (i = 0; i < current->nconsumers; i++) {
		c = &current->consumers[i];
		if (c->head != NULL && c->cf->kind == CONSUMER_WEBHOOK &&
		    c->open_until == 0 && c->failures == 0 &&
		    c->answer_ms > 0 && c->answer_ms < (double)lag &&
		    now - c->head->recv_mono >= lag)
			return shedding = 1;
	}
	return shedding = 0;
}

/*
 * Dead-letter file: one JSON object a line, the envelope verbatim under
 * "event", so that an operator can replay it with jq and curl.
 */
static void
write_dead_letter(struct delivery *d, const char *reason)
{
	char stamp[32], *head;
	cJSON *o;
	size_t hlen, len;
	int fd = d->c->fo->dead_letter_fd;

	o = cJSON_CreateObject();
	fmt_rfc3339(stamp, sizeof(stamp), now_ms());
	cJSON_AddStringToObject(o, "time", stamp);
	cJSON_AddStringToObject(o, "consumer", d->c->cf->name);
	cJSON_AddStringToObject(o, "reason", reason);
	cJSON_AddNumberToObject(o, "attempts", d->attempts);
	if (d->status != 0)
		cJSON_AddNumberToObject(o, "last_status", (double)d->status);
	if (d->error[0] != '\0')
		cJSON_AddStringToObject(o, "last_error", d->error);
	head = json_print(o, &hlen);
	cJSON_Delete(o);
	hlen--;					/* without the closing brace */
	len = hlen + strlen(",\"event\":") + d->body->len + 2;
	if (fd == -1) {
		log_warnx("no dead-letter file for event=%s consumer=%s; the "
		    "delivery is recorded only in this line", d->body->id,
		    d->c->cf->name);
		free(head);
		return;
	}
	if (dl_len > 0 && (dl_fd != fd || dl_len + len > DL_BUF_MAX))
		dl_flush();
	if (dl_len + len > dl_cap) {
		dl_cap = dl_len + len > DL_BUF_MAX ? dl_len + len : DL_BUF_MAX;
		dl_buf = xrealloc(dl_buf, dl_cap);
	}
	dl_fd = fd;
	memcpy(dl_buf + dl_len, head, hlen);
	dl_len += hlen;
	memcpy(dl_buf + dl_len, ",\"event\":", strlen(",\"event\":"));
	dl_len += strlen(",\"event\":");
	memcpy(dl_buf + dl_len, d->body->data, d->body->len);
	dl_len += d->body->len;
	memcpy(dl_buf + dl_len, "}\n", 2);
	dl_len += 2;
	dl_lines++;
	free(head);
}

/*
 * Dead-letter lines wait in memory for the end of the loop turn, and are
 * written there in one go: after libcurl has sent the turn's deliveries,
 * so that healthy consumers never wait for a broken one's paperwork.
 * Every line also has its "dead-lettered" log line, which names the event
 * should the write fail.
 */
static void
dl_flush(void)
{
	size_t off = 0;
	ssize_t n;

	while (off < dl_len) {
		if ((n = write(dl_fd, dl_buf + off, dl_len - off)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("dead-letter write failed: %zu lines lost; "
			    "their dead-lettered log lines name the events",
			    dl_lines);
			break;
		}
		off += (size_t)n;
	}
	dl_len = 0;
	dl_lines = 0;
}

static int64_t
dl_next(void *arg)
{
	return -1;		/* nothing to wake up for */
}

static void
dl_run(void *arg)
{
	if (dl_len > 0)
		dl_flush();
}

/* A delivery's life ends here, whatever the outcome. */
static void
release(struct delivery *d)
{
	struct consumer *c = d->c;

	pending--;
	body_unref(d->body);
	free(d->payload);
	free(d->reply);
	free(d);
	fanout_unref(c->fo);
}

static void
finish(struct delivery *d, const char *reason)
{
	struct consumer *c = d->c;

	if (reason == NULL) {
		c->m->outcomes[DELIVERY_DELIVERED]++;
		metrics_latency(c->m, mono_ms() - d->recv_mono);
		log_info("delivered event=%s consumer=%s status=%ld "
		    "attempts=%d latency_ms=%" PRId64, d->body->id,
		    c->cf->name, d->status, d->attempts,
		    mono_ms() - d->recv_mono);
	} else {
		c->m->outcomes[DELIVERY_DEAD_LETTERED]++;
		log_warnx("dead-lettered event=%s consumer=%s reason=%s "
		    "status=%ld attempts=%d", d->body->id, c->cf->name,
		    reason, d->status, d->attempts);
		write_dead_letter(d, reason);
	}
	/* A delivery that was attempted tells the breaker whether the
	 * consumer is there: an answer, even a refusal such as 422, says it
	 * is; only a timeout, a transport error, 408, 429 or 5xx after all
	 * the retries the budget allowed says it is not. */
	if (c->cf->kind == CONSUMER_WEBHOOK && d->attempts > 0 &&
	    (reason == NULL || strcmp(reason, "shutdown") != 0))
		circuit_result(c, reason == NULL || (d->status >= 200 &&
		    d->status < 500 && d->status != 408 && d->status != 429));
	release(d);
}

static CURL *
easy_get(void)
{
	CURL *e;

	if (neasy_pool > 0)
		return easy_pool[--neasy_pool];
	if ((e = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	return e;
}

static void
easy_put(CURL *e)
{
	if (neasy_pool == EASY_POOL_MAX) {
		curl_easy_cleanup(e);
		return;
	}
	curl_easy_reset(e);
	easy_pool[neasy_pool++] = e;
}

static size_t
on_write(char *data, size_t size, size_t n, void *arg)
{
	struct delivery *d = arg;
	size_t len = size * n, keep;

	/* Only the status matters (and, from Discord, a 429's body); a
	 * consumer that sends an endless reply is cut off, not read. */
	if (d->c->cf->kind == CONSUMER_DISCORD &&
	    d->reply_len < DISCORD_REPLY_MAX) {
		keep = len < DISCORD_REPLY_MAX - d->reply_len ? len :
		    DISCORD_REPLY_MAX - d->reply_len;
		d->reply = xrealloc(d->reply, d->reply_len + keep + 1);
		memcpy(d->reply + d->reply_len, data, keep);
		d->reply_len += keep;
		d->reply[d->reply_len] = '\0';
	}
	d->resp_read += len;
	return d->resp_read > RESPONSE_READ_MAX ? 0 : len;
}

static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	struct delivery *d = arg;
	size_t len = size * n;
	int64_t ms;

	if (d->c->cf->kind == CONSUMER_DISCORD)
		discord_limit_header(&d->limit, data, len);
	/* What cannot be read counts as beyond any budget. */
	if ((ms = retry_after_header(data, len)) != -1)
		d->retry_after_ms = ms >= 0 ? ms : INT64_MAX / 2;
	return len;
}

static struct curl_slist *
headers_for(struct delivery *d)
{
	const struct consumer_conf *cf = d->c->cf;
	struct curl_slist *h = NULL;
	char line[128], sig[SIGN_HEADER_LEN];
	int64_t ts = now_ms() / 1000;
	size_t i;

	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	h = curl_slist_append(h, "User-Agent: ctrd/" PACKAGE_VERSION);
	if (cf->kind == CONSUMER_WEBHOOK) {
		snprintf(line, sizeof(line), "webhook-id: %s", d->body->id);
		h = curl_slist_append(h, line);
		snprintf(line, sizeof(line), "webhook-timestamp: %" PRId64,
		    ts);
		h = curl_slist_append(h, line);
	}
	if (cf->kind == CONSUMER_WEBHOOK && cf->secret != NULL) {
		sign_webhook(cf->secret, cf->secret_len, d->body->id, ts,
		    d->body->data, d->body->len, sig, sizeof(sig));
		snprintf(line, sizeof(line), "webhook-signature: %s", sig);
		h = curl_slist_append(h, line);
	}
	/* The operator's headers, of any length, made once per consumer. */
	for (i = 0; i < cf->nheaders; i++)
		h = curl_slist_append(h, d->c->header_lines[i]);
	if (h == NULL)
		fatalx("curl_slist_append failed");
	return h;
}

/* Start an attempt with what is left of the budget as its timeout; the
 * caller has checked that what is left is worth_trying. */
static void
attempt(struct delivery *d)
{
	struct consumer *c = d->c;
	int64_t left = d->deadline - mono_ms();
	const char *data = d->body->data;
	size_t len = d->body->len;
	struct delivery *x;
	CURL *e;

	for (x = d; x != NULL; x = x->batch) {
		x->attempts++;
		c->m->attempts++;
		if (x->attempts > 1)
			c->m->retries++;
	}
	if (c->cf->kind == CONSUMER_DISCORD) {
		data = d->payload;
		len = d->payload_len;
		discord_limit_init(&d->limit);
		d->reply_len = 0;
	}
	d->status = 0;
	d->sent_mono = mono_ms();
	d->retry_after_ms = -1;
	d->resp_read = 0;
	d->error[0] = '\0';
	d->hdrs = headers_for(d);
	d->easy = e = easy_get();
	if (c->curlu != NULL)
		curl_easy_setopt(e, CURLOPT_CURLU, c->curlu);
	else
		curl_easy_setopt(e, CURLOPT_URL, c->discord_url != NULL ?
		    c->discord_url : c->cf->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, d);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->hdrs);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, data);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)left);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, d);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->error);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (curl_multi_add_handle(multi, e) != CURLM_OK)
		fatalx("curl_multi_add_handle failed");
	d->wire_prev = NULL;
	if ((d->wire_next = wire) != NULL)
		wire->wire_prev = d;
	wire = d;
}

/* Take a finished or abandoned attempt back from curl. */
static void
unwire(struct delivery *d)
{
	curl_multi_remove_handle(multi, d->easy);
	curl_slist_free_all(d->hdrs);
	easy_put(d->easy);
	d->hdrs = NULL;
	d->easy = NULL;
	if (d->wire_prev != NULL)
		d->wire_prev->wire_next = d->wire_next;
	else
		wire = d->wire_next;
	if (d->wire_next != NULL)
		d->wire_next->wire_prev = d->wire_prev;
}

/* Take the oldest waiting delivery off a consumer's queue. */
static struct delivery *
dequeue(struct consumer *c)
{
	struct delivery *d = c->head;

	if ((c->head = d->next) == NULL)
		c->tail = NULL;
	d->next = NULL;
	c->queued--;
	c->m->queued--;
	return d;
}

/*
 * The least budget worth an attempt: what the consumer usually takes to
 * answer.  An attempt with less left would most likely time out after the
 * consumer had done the work, and be dead-lettered all the same.
 */
static int64_t
worth_trying(const struct consumer *c)
{
	return c->answer_ms > ATTEMPT_MIN_MS ? (int64_t)c->answer_ms :
	    ATTEMPT_MIN_MS;
}

/*
 * The circuit breaker of a webhook consumer: after circuit_breaker
 * deliveries in a row have failed, each after the retries its budget
 * allowed, ctrd stops sending to it for BREAKER_FIRST_MS, and what it
 * would have sent is dead-lettered "circuit_open" at once, so that a
 * consumer that is down costs neither retries nor queue space.  Then one
 * delivery goes through, with its retries: success closes the circuit,
 * failure opens it again for twice as long, up to BREAKER_MAX_MS.
 */
static int
circuit_open(const struct consumer *c, int64_t now)
{
	return c->open_until > now;
}

static void
circuit_result(struct consumer *c, int ok)
{
	struct fanout *fo = c->fo;
	int64_t now = mono_ms(), span;

	if (c->cf->kind != CONSUMER_WEBHOOK || c->cf->circuit_breaker == 0)
		return;
	if (ok) {
		if (c->open_until != 0) {
			log_info("consumer=%s circuit closed", c->cf->name);
			if (fo == current)	/* the live one's gauge */
				c->m->circuit_open = 0;
		}
		c->failures = 0;
		c->open_until = 0;
		c->trips = 0;
		return;
	}
	c->failures++;
	if (circuit_open(c, now) || (c->open_until == 0 &&
	    (unsigned)c->failures < c->cf->circuit_breaker))
		return;
	span = (int64_t)BREAKER_FIRST_MS << (c->trips < 6 ? c->trips : 6);
	if (span > BREAKER_MAX_MS)
		span = BREAKER_MAX_MS;
	c->trips++;
	c->open_until = now + span;
	c->m->circuit_opens++;
	if (fo == current)
		c->m->circuit_open = 1;
	log_warnx("consumer=%s circuit open for %" PRId64 " ms after %d "
	    "failed deliveries in a row", c->cf->name, span, c->failures);
	fanout_ref(fo);
	while (c->head != NULL)
		finish(dequeue(c), "circuit_open");
	fanout_unref(fo);
}

/* Start what the consumer's in-flight cap allows, oldest first. */
static void
pump(struct consumer *c)
{
	struct fanout *fo = c->fo;
	struct delivery *d;
	int64_t now = mono_ms();
	unsigned cap = c->cf->max_in_flight;

	if (c->cf->kind == CONSUMER_DISCORD) {
		pump_discord(c);
		return;
	}
	/* finish() can drop the last reference to a retired generation. */
	fanout_ref(fo);
	if (circuit_open(c, now))
		while (c->head != NULL)
			finish(dequeue(c), "circuit_open");
	else if (c->open_until != 0)
		cap = 1;		/* half open: one delivery decides */
	while (c->head != NULL && c->in_flight < cap) {
		d = dequeue(c);
		if (d->deadline - now < worth_trying(c)) {
			finish(d, "budget_exhausted");
			continue;
		}
		c->in_flight++;
		c->m->in_flight++;
		attempt(d);
	}
	fanout_unref(fo);
}

/* Leave the in-flight set and let the next waiting delivery in. */
static void
settle(struct delivery *d, const char *reason)
{
	struct consumer *c = d->c;
	struct fanout *fo = c->fo;

	fanout_ref(fo);
	c->in_flight--;
	c->m->in_flight--;
	finish(d, reason);
	pump(c);
	fanout_unref(fo);
}

static int
retryable(CURLcode rc, long status)
{
	if (rc == CURLE_OK || rc == CURLE_WRITE_ERROR)
		return status == 408 || status == 429 || status >= 500;
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return 1;
	default:
		return 0;
	}
}

static const char *
reason_for(CURLcode rc, long status)
{
	static char buf[16];

	if ((rc == CURLE_OK || rc == CURLE_WRITE_ERROR) && status != 0) {
		snprintf(buf, sizeof(buf), "http_%ld", status);
		return buf;
	}
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return "timeout";
	case CURLE_COULDNT_RESOLVE_HOST:
		return "resolve_failed";
	case CURLE_COULDNT_CONNECT:
		return "connect_failed";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		return "tls_failed";
	default:
		return "transport_error";
	}
}

/* Schedule another attempt if one can still land before the deadline. */
static void
retry_or_give_up(struct delivery *d, CURLcode rc)
{
	int64_t now = mono_ms(), delay;
	unsigned span;

	if (!retryable(rc, d->status) || circuit_open(d->c, now)) {
		settle(d, reason_for(rc, d->status));
		return;
	}
	span = BACKOFF_FIRST_MS << (d->attempts < 6 ? d->attempts - 1 : 5);
	if (span > BACKOFF_MAX_MS)
		span = BACKOFF_MAX_MS;
	/* Jitter over the upper half, so that a consumer that came back
	 * is not hit by every waiting retry at once. */
	delay = span / 2 + randombytes_uniform(span / 2 + 1);
	if (d->retry_after_ms >= 0 && (d->status == 429 ||
	    d->status == 503)) {
		if (now + d->retry_after_ms + ATTEMPT_MIN_MS > d->deadline) {
			settle(d, "retry_after_beyond_budget");
			return;
		}
		if (d->retry_after_ms > delay)
			delay = d->retry_after_ms;
	}
	if (now + delay + worth_trying(d->c) > d->deadline) {
		settle(d, reason_for(rc, d->status));
		return;
	}
	d->retry_at = now + delay;
	d->next = backoff;
	backoff = d;
}

static void
collect(void)
{
	struct consumer *c;
	struct delivery *d;
	double took;
	CURLMsg *msg;
	CURLcode rc;
	CURL *e;
	int left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		e = msg->easy_handle;
		rc = msg->data.result;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&d);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &d->status);
		unwire(d);
		/* How long the consumer takes to answer, smoothed over its
		 * last few attempts: see deliver_overloaded. */
		c = d->c;
		took = (double)(mono_ms() - d->sent_mono);
		if (d->status != 0)	/* only an answer says how long */
			c->answer_ms = c->answer_ms == 0 ? took :
			    0.8 * c->answer_ms + 0.2 * took;
		if (d->c->cf->kind == CONSUMER_DISCORD)
			discord_done(d, rc);
		else if (d->status >= 200 && d->status <= 299 &&
		    (rc == CURLE_OK || rc == CURLE_WRITE_ERROR))
			settle(d, NULL);
		else {
			d->rc = rc;
			retry_or_give_up(d, rc);
		}
	}
}

static void
on_socket_ready(int fd, uint32_t events, void *arg)
{
	int mask = 0, running;

	if (events & EPOLLIN)
		mask |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		mask |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		mask |= CURL_CSELECT_ERR;
	curl_multi_socket_action(multi, fd, mask, &running);
	collect();
}

static int
on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct loop_watch *w = socketp;
	uint32_t events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (w != NULL)
			loop_del(w);
		curl_multi_assign(multi, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;
	if (w == NULL) {
		w = loop_add(s, events, on_socket_ready, NULL);
		curl_multi_assign(multi, s, w);
	} else
		loop_mod(w, events);
	return 0;
}

static int
on_timer(CURLM *m, long timeout_ms, void *userp)
{
	curl_due = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	return 0;
}

static int64_t
next_due(void *arg)
{
	struct fanout *fo;
	struct consumer *c;
	struct delivery *d;
	int64_t soonest = curl_due;
	size_t i;

	for (d = backoff; d != NULL; d = d->next)
		if (soonest < 0 || d->retry_at < soonest)
			soonest = d->retry_at;
	/* A consumer's queue is in receipt order and its budget is fixed,
	 * so its head holds its earliest deadline. */
	for (fo = fanouts; fo != NULL; fo = fo->next)
		for (i = 0; i < fo->nconsumers; i++) {
			c = &fo->consumers[i];
			if ((d = c->head) == NULL)
				continue;
			if (soonest < 0 || d->deadline < soonest)
				soonest = d->deadline;
			if (c->paused_until > 0 && c->paused_until < soonest)
				soonest = c->paused_until;
		}
	return soonest;
}

static void
expire_queued(int64_t now)
{
	struct fanout *fo, *next;
	struct consumer *c;
	size_t i;

	for (fo = fanouts; fo != NULL; fo = next) {
		/* finish may free fo when its last delivery goes */
		next = fo->next;
		fanout_ref(fo);
		for (i = 0; i < fo->nconsumers; i++) {
			c = &fo->consumers[i];
			while (c->head != NULL && c->head->deadline <= now)
				finish(dequeue(c), "budget_exhausted");
			if (c->paused_until > 0 && c->paused_until <= now) {
				c->paused_until = 0;
				pump(c);
			}
		}
		fanout_unref(fo);
	}
}

static void
run_due(void *arg)
{
	struct delivery **pp, *d, *due = NULL;
	int64_t now = mono_ms();
	int running;

	if (curl_due >= 0 && curl_due <= now) {
		curl_due = -1;
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0,
		    &running);
		collect();
	}
	for (pp = &backoff; (d = *pp) != NULL; ) {
		if (d->retry_at <= now) {
			*pp = d->next;
			d->next = due;
			due = d;
		} else
			pp = &d->next;
	}
	while ((d = due) != NULL) {
		due = d->next;
		d->next = NULL;
		if (d->deadline - mono_ms() < worth_trying(d->c))
			settle(d, reason_for(d->rc, d->status));
		else if (circuit_open(d->c, now))
			settle(d, reason_for(d->rc, d->status));
		else
			attempt(d);
	}
	expire_queued(now);
}

/*
 * Discord: one request in flight per webhook, so that messages keep their
 * order; what queues up meanwhile, above all while the webhook is paused
 * by a rate limit, leaves as one message of up to ten embeds.
 */
static void
pump_discord(struct consumer *c)
{
	struct fanout *fo = c->fo;
	struct delivery *lead = NULL, *last = NULL, *d;
	cJSON *envs[DISCORD_EMBEDS_MAX];
	int64_t now = mono_ms();
	size_t n = 0, i;

	if (c->in_flight > 0 || c->paused_until > now)
		return;
	fanout_ref(fo);
	while (c->head != NULL && n < DISCORD_EMBEDS_MAX) {
		d = dequeue(c);
		if (d->deadline - now < ATTEMPT_MIN_MS) {
			finish(d, "budget_exhausted");
			continue;
		}
		if ((envs[n] = cJSON_Parse(d->body->data)) == NULL)
			fatalx("pump_discord: envelope does not parse");
		n++;
		d->batch = NULL;
		if (lead == NULL)
			lead = d;
		else
			last->batch = d;
		last = d;
		c->m->in_flight++;
	}
	if (lead != NULL) {
		free(lead->payload);
		lead->payload = discord_message((const cJSON *const *)envs, n,
		    c->cf, &lead->payload_len);
		for (i = 0; i < n; i++)
			cJSON_Delete(envs[i]);
		/* The oldest event leads: its deadline is the earliest, and
		 * so bounds the request's timeout. */
		c->in_flight = 1;
		attempt(lead);
	}
	fanout_unref(fo);
}

/* Discord's global limit holds every webhook: pause them all. */
static void
pause_all_discord(struct fanout *fo, int64_t until)
{
	struct consumer *c;
	size_t i;

	log_info("discord global rate limit: every Discord consumer paused "
	    "for %" PRId64 " ms", until - mono_ms());
	for (i = 0; i < fo->nconsumers; i++) {
		c = &fo->consumers[i];
		if (c->cf->kind == CONSUMER_DISCORD && c->paused_until < until)
			c->paused_until = until;
	}
}

static void
discord_done(struct delivery *lead, CURLcode rc)
{
	struct consumer *c = lead->c;
	struct fanout *fo = c->fo;
	struct delivery *d, *next, *again = NULL, *again_tail = NULL;
	long status = lead->status;
	int64_t now = mono_ms(), pause;
	unsigned span, nagain = 0;
	char error[CURL_ERROR_SIZE];
	int ok, retry;

	ok = status >= 200 && status <= 299 &&
	    (rc == CURLE_OK || rc == CURLE_WRITE_ERROR);
	retry = !ok && retryable(rc, status);
	pause = discord_pause_ms(&lead->limit, status, lead->reply,
	    lead->reply_len);
	c->failures = ok ? 0 : c->failures + 1;
	if (retry && status != 429) {
		span = BACKOFF_FIRST_MS << (c->failures < 6 ?
		    c->failures - 1 : 5);
		if (span > BACKOFF_MAX_MS)
			span = BACKOFF_MAX_MS;
		if (pause < span)
			pause = span / 2 + randombytes_uniform(span / 2 + 1);
	}
	if (pause > 0) {
		c->paused_until = now + pause;
		log_info("consumer=%s paused for %" PRId64 " ms (status %ld)",
		    c->cf->name, pause, status);
	}
	if (pause > 0 && discord_limit_global(&lead->limit, status,
	    lead->reply, lead->reply_len))
		pause_all_discord(fo, now + pause);

	/* The lead is freed first in the loop below; keep its error. */
	memcpy(error, lead->error, sizeof(error));
	fanout_ref(fo);
	c->in_flight = 0;
	for (d = lead; d != NULL; d = next) {
		next = d->batch;
		d->batch = NULL;
		d->status = status;
		memcpy(d->error, error, sizeof(d->error));
		c->m->in_flight--;
		if (ok)
			finish(d, NULL);
		else if (!retry)
			finish(d, reason_for(rc, status));
		else if (now + pause + ATTEMPT_MIN_MS > d->deadline)
			finish(d, status == 429 ? "retry_after_beyond_budget" :
			    reason_for(rc, status));
		else {
			if (again_tail != NULL)
				again_tail->next = d;
			else
				again = d;
			again_tail = d;
			nagain++;
		}
	}
	/* Back to the front of the queue, in order, for the next message. */
	if (again != NULL) {
		again_tail->next = c->head;
		c->head = again;
		if (c->tail == NULL)
			c->tail = again_tail;
		c->queued += nagain;
		c->m->queued += nagain;
	}
	pump(c);
	fanout_unref(fo);
}

void
deliver_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("curl_global_init failed");
	if ((multi = curl_multi_init()) == NULL)
		fatalx("curl_multi_init failed");
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 1024L);
	loop_hook(next_due, run_due, NULL);
	/* After run_due, so that a turn's requests are out first: dl_flush */
	loop_hook(dl_next, dl_run, NULL);
}

/* A consumer's types list, when it has one, names the types it takes. */
static int
type_wanted(const struct consumer_conf *cf, const cJSON *envelope)
{
	const char *type;
	size_t i;

	if (cf->ntypes == 0)
		return 1;
	type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(envelope,
	    "type"));
	for (i = 0; type != NULL && i < cf->ntypes; i++)
		if (glob_match(cf->types[i], type))
			return 1;
	return 0;
}

int
deliver_event(struct fanout *fo, const cJSON *envelope, const char *json,
    size_t len, const char *id, int64_t recv_mono)
{
	struct consumer **match = fo->matched, *c;
	struct delivery *d;
	struct body *b = NULL;
	size_t i, n = 0;

	for (i = 0; i < fo->nconsumers; i++) {
		c = &fo->consumers[i];
		if (!type_wanted(c->cf, envelope))
			continue;
		if (c->cf->pattern == NULL ||
		    pattern_match(c->cf->pattern, envelope))
			match[n++] = c;
	}
	if (n == 0)
		return 0;
	if (pending + n > fo->cf->queue_max)
		return -1;

	b = xcalloc(1, sizeof(*b));
	snprintf(b->id, sizeof(b->id), "%s", id);
	b->data = xstrndup(json, len);
	b->len = len;
	b->refs = 1;

	for (i = 0; i < n; i++) {
		c = match[i];
		d = xcalloc(1, sizeof(*d));
		d->c = c;
		d->body = b;
		b->refs++;
		d->recv_mono = recv_mono;
		d->deadline = recv_mono + c->cf->budget_ms;
		fanout_ref(fo);
		pending++;
		if (c->queued >= c->cf->queue_max) {
			finish(d, "queue_full");
			continue;
		}
		if (circuit_open(c, recv_mono)) {
			finish(d, "circuit_open");
			continue;
		}
		if (c->tail != NULL)
			c->tail->next = d;
		else
			c->head = d;
		c->tail = d;
		c->queued++;
		c->m->queued++;
		pump(c);
	}
	body_unref(b);
	return (int)n;
}

void
deliver_abandon(void)
{
	struct fanout *fo, *next;
	struct consumer *c;
	struct delivery *d, *next_in_batch;
	size_t i;

	/* Queues first, so that no slot freed below starts an attempt. */
	for (fo = fanouts; fo != NULL; fo = next) {
		next = fo->next;
		fanout_ref(fo);
		for (i = 0; i < fo->nconsumers; i++) {
			c = &fo->consumers[i];
			while (c->head != NULL)
				finish(dequeue(c), "shutdown");
		}
		fanout_unref(fo);
	}
	while ((d = backoff) != NULL) {
		backoff = d->next;
		settle(d, "shutdown");
	}
	while ((d = wire) != NULL) {
		unwire(d);
		if (d->c->cf->kind != CONSUMER_DISCORD) {
			settle(d, "shutdown");
			continue;
		}
		d->c->in_flight = 0;
		for (; d != NULL; d = next_in_batch) {
			next_in_batch = d->batch;
			d->c->m->in_flight--;
			finish(d, "shutdown");
		}
	}
}

void
deliver_free(void)
{
	if (dl_len > 0)
		dl_flush();
	if (current != NULL) {
		fanout_unref(current);
		current = NULL;
	}
	while (neasy_pool > 0)
		curl_easy_cleanup(easy_pool[--neasy_pool]);
	if (multi != NULL)
		curl_multi_cleanup(multi);
	multi = NULL;
	curl_global_cleanup();
	free(dl_buf);
	dl_buf = NULL;
	dl_cap = 0;
}
