/* The live stream: Server-Sent Events subscribers, their filters and
 * backlogs, and the ring of recent events they resume from. */
#include "autoconf.h"

#include <sys/epoll.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <sodium.h>

#include "config.h"
#include "deliver.h"
#include "event.h"
#include "http.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "pattern.h"
#include "stream.h"
#include "util.h"

/*
 * How it works.  Each event is serialized once into a message, shared (by
 * reference count) by the ring and by the queue of every subscriber it
 * matches.  A subscriber's response is an endless chunked body whose
 * reader copies from its queue; with nothing queued the reader suspends
 * the connection, so an idle subscriber costs no wake-ups, and queueing
 * something resumes it.  Open subscribers sit on a list ordered by when
 * something was last queued for them, so the keep-alive timer looks only
 * at the head and wakes the loop only when some subscriber is due.
 */

#define READ_BLOCK	(16 * 1024)	/* advisory, for MHD's buffer */
#define VALUES_MAX	64		/* values of one filter key */
#define KEEPALIVE	": keep-alive\n\n"

/* One message as it goes on the wire. */
struct msg {
	unsigned	 refs;
	int64_t		 mono;			/* made at, for ring_age_s */
	char		 id[EVENT_ID_LEN + 1];	/* "" unless an event */
	size_t		 json_off;		/* the envelope in text */
	size_t		 json_len;
	size_t		 len;
	char		 text[];
};

/* The recent events, oldest first, in id order (ids only increase). */
static struct {
	struct msg	**v;
	size_t		 cap;
	size_t		 first;
	size_t		 n;
	/*
	 * The newest id that has left the ring, or one made at start-up:
	 * a subscriber resuming from an id at or before it may have missed
	 * events the ring no longer has.
	 */
	char		 horizon[EVENT_ID_LEN + 1];
} ring;

enum sub_state {
	SUB_OPEN,
	SUB_ENDING,	/* send what is queued, then end the response */
	SUB_CLOSED,	/* end the response now */
};

struct subscriber {
	struct MHD_Connection	*conn;
	struct loop_watch	*hup;
	/* the open ones, least recently sent to first */
	struct subscriber	*prev;
	struct subscriber	*next;
	int			 listed;
	/* all of them, until MHD frees the response */
	struct subscriber	*aprev;
	struct subscriber	*anext;
	int64_t			 last;		/* mono ms: last queued */
	enum sub_state		 state;
	const char		*why;		/* how it ended, for the log */
	int			 suspended;
	char			 addr[64];
	char			*token;		/* the token's name, or NULL */
	unsigned char		 token_hash[KEY_HASH_LEN];
	char			**globs;	/* the token's producers */
	size_t			 nglobs;
	struct pattern		*filter;	/* producer, type, game... */
	struct pattern		*pattern;	/* pattern= */
	struct msg		**q;		/* circular */
	size_t			 qcap;
	size_t			 qfirst;
	size_t			 qn;
	size_t			 qoff;		/* sent of q[qfirst] */
	size_t			 backlog;	/* unsent bytes queued */
	size_t			 carried;	/* of those, from before */
	uint64_t		 turn;		/* the loop turn they date */
	uint64_t		 sent;		/* events written */
};

/* Why a request is refused, answered as a JSON error. */
struct refusal {
	int		 status;
	const char	*code;
	const char	*field;
	const char	*hname;		/* one more header, or NULL */
	const char	*hvalue;
	char		 hbuf[16];	/* room for hvalue */
	char		 msg[200];
};

/* The query, as given. */
static const char *const filter_keys[] = {
	"producer", "type", "game", "category"
};
#define NFILTERS	(sizeof(filter_keys) / sizeof(filter_keys[0]))

struct query {
	cJSON		*values[NFILTERS];	/* arrays of strings */
	const char	*pattern;
	const char	*last_event_id;
	const char	*token;
	struct refusal	*rf;
	int		 bad;
};

static struct subscriber	*idle_head, *idle_tail;
static struct subscriber	*all_head;
static size_t			 nsubs;
static int			 quiescing;
static uint64_t			 generation;	/* of the config applied */
static uint64_t			 turn;		/* of the loop, counted */

static void __attribute__((format(printf, 3, 4)))
refuse(struct refusal *rf, int status, const char *fmt, ...)
{
	va_list ap;

	rf->status = status;
	va_start(ap, fmt);
	vsnprintf(rf->msg, sizeof(rf->msg), fmt, ap);
	va_end(ap);
}

/* Messages */

static struct msg *
msg_new(size_t len)
{
	struct msg *m;

	m = xcalloc(1, sizeof(*m) + len + 1);
	m->refs = 1;
	m->len = len;
	return m;
}

static struct msg *
msg_ref(struct msg *m)
{
	m->refs++;
	return m;
}

static void
msg_unref(struct msg *m)
{
	if (--m->refs == 0)
		free(m);
}

static struct msg *
msg_text(const char *text)
{
	struct msg *m;

	m = msg_new(strlen(text));
	memcpy(m->text, text, m->len);
	return m;
}

/*
 * "id: ID\nevent: TYPE\ndata: JSON\n\n".  The normalizer lets only dotted
 * lowercase types through and cJSON escapes every control character, so
 * neither can break a line.
 */
static struct msg *
msg_event(const cJSON *env, const char *json, size_t jlen, const char *id,
    int64_t now)
{
	const char *type;
	struct msg *m;
	char head[128];
	size_t hlen;

	type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(env,
	    "type"));
	hlen = (size_t)snprintf(head, sizeof(head), "id: %s\nevent: %s\n"
	    "data: ", id, type != NULL ? type : "message");
	if (hlen >= sizeof(head))
		fatalx("stream: event type too long");
	m = msg_new(hlen + jlen + 2);
	memcpy(m->text, head, hlen);
	memcpy(m->text + hlen, json, jlen);
	memcpy(m->text + hlen + jlen, "\n\n", 2);
	m->json_off = hlen;
	m->json_len = jlen;
	m->mono = now;
	snprintf(m->id, sizeof(m->id), "%s", id);
	return m;
}

/* The ring */

static struct msg *
ring_at(size_t i)
{
	return ring.v[(ring.first + i) % ring.cap];
}

static void
ring_drop_oldest(void)
{
	struct msg *m = ring_at(0);

	memcpy(ring.horizon, m->id, sizeof(ring.horizon));
	msg_unref(m);
	ring.first = (ring.first + 1) % ring.cap;
	ring.n--;
}

static void
ring_expire(const struct stream_conf *sc, int64_t now)
{
	int64_t age = (int64_t)sc->ring_age_s * 1000;

	while (ring.n > 0 && now - ring_at(0)->mono > age)
		ring_drop_oldest();
}

static void
ring_resize(size_t cap)
{
	struct msg **v = NULL;
	size_t i;

	if (cap == ring.cap)
		return;
	while (ring.n > cap)
		ring_drop_oldest();
	if (cap > 0) {
		v = xcalloc(cap, sizeof(*v));
		for (i = 0; i < ring.n; i++)
			v[i] = ring_at(i);
	}
	free(ring.v);
	ring.v = v;
	ring.cap = cap;
	ring.first = 0;
}

static void
ring_push(struct msg *m)
{
	if (ring.cap == 0) {
		/* kept nowhere: gone at once, as far as resuming goes */
		memcpy(ring.horizon, m->id, sizeof(ring.horizon));
		return;
	}
	if (ring.n == ring.cap)
		ring_drop_oldest();
	ring.v[(ring.first + ring.n) % ring.cap] = msg_ref(m);
	ring.n++;
}

/* The index of the first event after id; *found says whether id itself
 * is in the ring, just before it. */
static size_t
ring_after(const char *id, int *found)
{
	size_t lo = 0, hi = ring.n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(ring_at(mid)->id, id) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo > 0 && strcmp(ring_at(lo - 1)->id, id) == 0;
	return lo;
}

/* Subscribers */

static void
idle_unlink(struct subscriber *s)
{
	if (!s->listed)
		return;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		idle_head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		idle_tail = s->prev;
	s->prev = s->next = NULL;
	s->listed = 0;
}

/* Something was queued for s at now: it goes to the end of the line. */
static void
idle_touch(struct subscriber *s, int64_t now)
{
	idle_unlink(s);
	s->last = now;
	s->prev = idle_tail;
	if (idle_tail != NULL)
		idle_tail->next = s;
	else
		idle_head = s;
	idle_tail = s;
	s->listed = 1;
}

static void
sub_wake(struct subscriber *s)
{
	if (!s->suspended)
		return;
	s->suspended = 0;
	MHD_resume_connection(s->conn);
	http_kick();
}

static void
sub_queue(struct subscriber *s, struct msg *m)
{
	struct msg **q;
	size_t cap, i;

	if (s->qn == s->qcap) {
		cap = s->qcap > 0 ? s->qcap * 2 : 8;
		q = xcalloc(cap, sizeof(*q));
		for (i = 0; i < s->qn; i++)
			q[i] = s->q[(s->qfirst + i) % s->qcap];
		free(s->q);
		s->q = q;
		s->qcap = cap;
		s->qfirst = 0;
	}
	s->q[(s->qfirst + s->qn) % s->qcap] = msg_ref(m);
	s->qn++;
	s->backlog += m->len;
}

static void
sub_clear(struct subscriber *s)
{
	while (s->qn > 0) {
		msg_unref(s->q[s->qfirst]);
		s->qfirst = (s->qfirst + 1) % s->qcap;
		s->qn--;
	}
	s->qoff = 0;
	s->backlog = 0;
	s->carried = 0;
}

/* End s's stream: SUB_ENDING after what is queued, SUB_CLOSED now. */
static void
sub_end(struct subscriber *s, enum sub_state state, const char *why)
{
	if (s->state == SUB_CLOSED)
		return;
	if (state == SUB_CLOSED)
		sub_clear(s);
	s->state = state;
	s->why = why;
	idle_unlink(s);
	sub_wake(s);
}

/*
 * Queue m for s, unless its reader is so far behind that it is better
 * cut off: a slow reader must not hold memory without bound.  Only bytes
 * queued in an earlier turn of the loop count against backlog_max: a
 * batch published in one turn reaches even the fastest reader only in
 * the next, and must not get it dropped.
 */
static void
sub_offer(struct subscriber *s, struct msg *m, size_t backlog_max,
    int64_t now)
{
	if (s->turn != turn) {
		s->turn = turn;
		s->carried = s->backlog;
	}
	if (s->carried > 0 && s->carried + m->len > backlog_max) {
		metrics_stream()->dropped++;
		log_notice("stream drop client=%s token=%s backlog=%zu: "
		    "reading too slowly", s->addr,
		    s->token != NULL ? s->token : "-", s->backlog);
		sub_end(s, SUB_CLOSED, "too_slow");
		return;
	}
	sub_queue(s, m);
	idle_touch(s, now);
	sub_wake(s);
}

static int
sub_wants(const struct subscriber *s, const cJSON *env)
{
	const char *producer;
	size_t i;

	if (s->nglobs > 0) {
		producer = cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(env, "producer"));
		if (producer == NULL)
			return 0;
		for (i = 0; i < s->nglobs; i++)
			if (glob_match(s->globs[i], producer))
				break;
		if (i == s->nglobs)
			return 0;
	}
	return (s->filter == NULL || pattern_match(s->filter, env)) &&
	    (s->pattern == NULL || pattern_match(s->pattern, env));
}

static void
sub_set_globs(struct subscriber *s, const struct stream_token *tk)
{
	size_t i;

	for (i = 0; i < s->nglobs; i++)
		free(s->globs[i]);
	free(s->globs);
	s->globs = NULL;
	s->nglobs = 0;
	if (tk == NULL || tk->nproducers == 0)
		return;
	s->globs = xcalloc(tk->nproducers, sizeof(*s->globs));
	for (i = 0; i < tk->nproducers; i++)
		s->globs[i] = xstrdup(tk->producers[i]);
	s->nglobs = tk->nproducers;
}

/* The content reader: what is queued, else suspend until there is more. */
static ssize_t
sub_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct subscriber *s = cls;
	struct msg *m;
	size_t n = 0, k;

	if (s->state == SUB_CLOSED)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	while (s->qn > 0 && n < max) {
		m = s->q[s->qfirst];
		k = m->len - s->qoff;
		if (k > max - n)
			k = max - n;
		memcpy(buf + n, m->text + s->qoff, k);
		n += k;
		s->qoff += k;
		s->backlog -= k;
		s->carried -= k < s->carried ? k : s->carried;
		if (s->qoff < m->len)
			break;
		if (m->id[0] != '\0') {
			s->sent++;
			metrics_stream()->messages++;
		}
		msg_unref(m);
		s->qfirst = (s->qfirst + 1) % s->qcap;
		s->qn--;
		s->qoff = 0;
	}
	if (n > 0)
		return (ssize_t)n;
	if (s->state == SUB_ENDING)
		return MHD_CONTENT_READER_END_OF_STREAM;
	s->suspended = 1;
	MHD_suspend_connection(s->conn);
	return 0;
}

/* MHD is done with the response, and so with the subscriber. */
static void
sub_free(void *cls)
{
	struct subscriber *s = cls;
	size_t i;

	log_info("stream close client=%s token=%s events=%llu reason=%s",
	    s->addr, s->token != NULL ? s->token : "-",
	    (unsigned long long)s->sent, s->why != NULL ? s->why : "closed");
	idle_unlink(s);
	if (s->aprev != NULL)
		s->aprev->anext = s->anext;
	else
		all_head = s->anext;
	if (s->anext != NULL)
		s->anext->aprev = s->aprev;
	/* before MHD closes the socket, so the fd cannot be someone's yet */
	if (s->hup != NULL)
		loop_del(s->hup);
	sub_clear(s);
	free(s->q);
	if (s->filter != NULL)
		pattern_free(s->filter);
	if (s->pattern != NULL)
		pattern_free(s->pattern);
	for (i = 0; i < s->nglobs; i++)
		free(s->globs[i]);
	free(s->globs);
	free(s->token);
	sodium_memzero(s->token_hash, sizeof(s->token_hash));
	free(s);
	nsubs--;
	metrics_stream()->subscribers--;
}

/*
 * The client hung up.  A suspended connection is out of MHD's sight, so
 * without this it would only be noticed at the next write, up to a
 * keep-alive later, and hold its place under the caps until then.
 * XXX: a client that only shuts down its sending side (nc -N) looks the
 * same and is cut off; EventSource and HTTP libraries never do that.
 */
static void
on_hup(int fd, uint32_t events, void *arg)
{
	sub_end(arg, SUB_CLOSED, "client_gone");
}

/* Configuration */

static const struct stream_conf *
current(void)
{
	return &fanout_config(fanout_current())->stream;
}

static const struct stream_token *
token_by_hash(const struct stream_conf *sc, const unsigned char *h)
{
	const struct stream_token *tk = NULL;
	size_t i;

	/* every hash compared, so the time says nothing of which matched */
	for (i = 0; i < sc->ntokens; i++)
		if (sodium_memcmp(sc->tokens[i].hash, h, KEY_HASH_LEN) == 0)
			tk = &sc->tokens[i];
	return tk;
}

/*
 * Bring the ring and the subscribers in line with a configuration loaded
 * since the last look: a token removed by a reload ends its streams.
 */
static const struct stream_conf *
sync_config(void)
{
	const struct config *cf = fanout_config(fanout_current());
	const struct stream_conf *sc = &cf->stream;
	const struct stream_token *tk;
	struct subscriber *s;

	if (cf->generation == generation)
		return sc;
	generation = cf->generation;
	ring_resize(sc->ring_events);
	if (sc->access == STREAM_PUBLIC)
		return sc;
	for (s = all_head; s != NULL; s = s->anext) {
		if (s->state != SUB_OPEN)
			continue;
		tk = s->token != NULL ? token_by_hash(sc, s->token_hash) :
		    NULL;
		if (tk == NULL) {
			log_info("stream revoke client=%s token=%s", s->addr,
			    s->token != NULL ? s->token : "-");
			sub_end(s, SUB_CLOSED, "token_revoked");
		} else
			sub_set_globs(s, tk);
	}
	return sc;
}

/* The loop hook: turns counted, keep-alives sent when due */

static int64_t
tick_next(void *arg)
{
	if (idle_head == NULL)
		return -1;
	return idle_head->last + (int64_t)current()->keepalive_s * 1000;
}

static void
tick_run(void *arg)
{
	const struct stream_conf *sc;
	struct subscriber *s;
	struct msg *m;
	int64_t now, every;

	turn++;		/* the hooks run once every turn */
	if (idle_head == NULL)
		return;
	sc = sync_config();
	now = mono_ms();
	every = (int64_t)sc->keepalive_s * 1000;
	if (idle_head == NULL || idle_head->last + every > now)
		return;
	m = msg_text(KEEPALIVE);
	/* each one handled goes to the tail with last = now, or leaves */
	while ((s = idle_head) != NULL && s->last + every <= now) {
		if (s->qn > 0)
			idle_touch(s, now);	/* bytes are pending anyway */
		else
			sub_offer(s, m, sc->backlog_max, now);
	}
	msg_unref(m);
}

void
stream_init(void)
{
	event_id(ring.horizon, now_ms());
	loop_hook(tick_next, tick_run, NULL);
}

/* Publishing */

void
stream_publish(const cJSON *env, const char *json, size_t len,
    const char *id)
{
	const struct stream_conf *sc;
	struct subscriber *s, *next, *end;
	int64_t now = mono_ms();
	struct msg *m;

	sc = sync_config();
	if (ring.cap == 0 && idle_head == NULL) {
		/* nobody to send it to, nowhere to keep it */
		snprintf(ring.horizon, sizeof(ring.horizon), "%s", id);
		return;
	}
	ring_expire(sc, now);
	m = msg_event(env, json, len, id, now);
	ring_push(m);
	/* offering moves s to the tail: stop at the tail as it was */
	end = idle_tail;
	for (s = idle_head; s != NULL; s = next) {
		next = s->next;
		if (sub_wants(s, env))
			sub_offer(s, m, sc->backlog_max, now);
		if (s == end)
			break;
	}
	msg_unref(m);
}

/* Subscribing */

static int
filter_index(const char *key)
{
	size_t i;

	for (i = 0; i < NFILTERS; i++)
		if (strcmp(key, filter_keys[i]) == 0)
			return (int)i;
	return -1;
}

static enum MHD_Result
query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	static const char *const ones[] = {
		"pattern", "last_event_id", "token"
	};
	struct query *q = cls;
	const char **one = NULL;
	size_t i;
	int fi;

	for (i = 0; i < sizeof(ones) / sizeof(ones[0]); i++)
		if (strcmp(key, ones[i]) == 0) {
			one = i == 0 ? &q->pattern : i == 1 ?
			    &q->last_event_id : &q->token;
			key = ones[i];	/* static, to outlive the call */
		}
	fi = filter_index(key);
	if (fi != -1)
		key = filter_keys[fi];
	/* an error is only noted: the answer waits for the token check */
	if (fi == -1 && one == NULL) {
		key = NULL;
		refuse(q->rf, 400, "unknown parameter; use producer, type, "
		    "game, category, pattern, last_event_id or token");
	} else if (value == NULL || value[0] == '\0')
		refuse(q->rf, 400, "%s: needs a value", key);
	else if (!utf8_valid(value, strlen(value)))
		refuse(q->rf, 400, "%s: must be UTF-8", key);
	else if (one != NULL && *one != NULL)
		refuse(q->rf, 400, "%s: given more than once", key);
	else if (fi == 1 && !event_type_valid(value))
		refuse(q->rf, 400, "type: not an event type such as "
		    "speedrun.split; it could never match");
	else if (one != NULL) {
		*one = value;
		return MHD_YES;
	} else if (q->values[fi] != NULL &&
	    cJSON_GetArraySize(q->values[fi]) == VALUES_MAX)
		refuse(q->rf, 400, "%s: at most %d values", key, VALUES_MAX);
	else {
		if (q->values[fi] == NULL)
			q->values[fi] = cJSON_CreateArray();
		cJSON_AddItemToArray(q->values[fi],
		    cJSON_CreateString(value));
		return MHD_YES;
	}
	q->rf->code = "invalid_query";
	q->rf->field = key;
	q->bad = 1;
	return MHD_NO;
}

/* The pattern the plain filter keys make; NULL when none was given. */
static struct pattern *
filter_compile(struct query *q, struct refusal *rf)
{
	struct pattern *p;
	cJSON *o, *detail = NULL;
	char err[200];
	size_t i;

	o = cJSON_CreateObject();
	for (i = 0; i < NFILTERS; i++) {
		if (q->values[i] == NULL)
			continue;
		if (i >= 2 && detail == NULL)	/* game, category */
			detail = cJSON_AddObjectToObject(o, "detail");
		cJSON_AddItemToObject(i >= 2 ? detail : o, filter_keys[i],
		    q->values[i]);
		q->values[i] = NULL;
	}
	if (o->child == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	if ((p = pattern_compile(o, NULL, err, sizeof(err))) == NULL) {
		rf->code = "invalid_query";
		rf->field = NULL;
		refuse(rf, 400, "%s", err);
	}
	cJSON_Delete(o);
	return p;
}

static struct pattern *
pattern_from_query(const char *text, unsigned depth, struct refusal *rf)
{
	struct json_error jerr;
	struct pattern *p = NULL;
	cJSON *json;
	char err[200];

	rf->code = "invalid_pattern";
	rf->field = "pattern";
	if ((json = json_parse_strict(text, strlen(text), depth, 0,
	    &jerr)) == NULL) {
		refuse(rf, 400, "%s", jerr.message);
		return NULL;
	}
	if (!cJSON_IsObject(json))
		refuse(rf, 400, "must be a JSON object");
	else if ((p = pattern_compile(json, NULL, err, sizeof(err))) == NULL)
		refuse(rf, 400, "%s", err);
	cJSON_Delete(json);
	return p;
}

/* The token from "Authorization: Bearer", else from the query. */
static const char *
find_token(struct MHD_Connection *conn, const char *from_query,
    size_t *len)
{
	const char *v;
	size_t n;

	v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if (v != NULL) {
		if (strncasecmp(v, "Bearer ", 7) != 0)
			return NULL;
		for (v += 7; *v == ' ' || *v == '\t'; v++)
			;
	} else
		v = from_query;
	if (v == NULL)
		return NULL;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	*len = n;
	return n > 0 ? v : NULL;
}

static const struct stream_token *
check_token(struct MHD_Connection *conn, const struct stream_conf *sc,
    const char *from_query, unsigned char *hash, struct refusal *rf)
{
	const struct config *cf = fanout_config(fanout_current());
	const struct stream_token *tk = NULL;
	const char *tok;
	size_t len = 0;

	if ((tok = find_token(conn, from_query, &len)) == NULL) {
		rf->code = "missing_token";
		refuse(rf, 401, "this stream needs a token: send "
		    "\"Authorization: Bearer ctr_...\" or token=ctr_...");
	} else {
		if (keys_format_ok(tok, len)) {
			keys_hash(cf->server_secret, tok, len, hash);
			tk = token_by_hash(sc, hash);
		}
		if (tk != NULL)
			return tk;
		rf->code = "unknown_token";
		refuse(rf, 401, "the token is not known to this server");
	}
	rf->field = NULL;
	rf->hname = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
	rf->hvalue = "Bearer";
	return NULL;
}

/* A token limited to some producers may not ask for others. */
static int
token_allows(const struct stream_token *tk, const cJSON *producers)
{
	const cJSON *v;
	size_t i;

	if (tk == NULL || tk->nproducers == 0 || producers == NULL)
		return 1;
	cJSON_ArrayForEach(v, producers) {
		for (i = 0; i < tk->nproducers; i++)
			if (glob_match(tk->producers[i], v->valuestring))
				break;
		if (i == tk->nproducers)
			return 0;
	}
	return 1;
}

static size_t
subscribers_from(const char *addr)
{
	struct subscriber *s;
	size_t n = 0;

	/* XXX: linear; fine for the thousands one loop serves */
	for (s = all_head; s != NULL; s = s->anext)
		n += strcmp(s->addr, addr) == 0;
	return n;
}

static int
id_valid(const char *id)
{
	return id != NULL && strlen(id) == EVENT_ID_LEN &&
	    strspn(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == EVENT_ID_LEN;
}

static struct msg *
gap_message(const char *reason, const char *lei, size_t replayed)
{
	struct msg *m;
	cJSON *o;
	char *json;
	size_t jlen;

	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "reason", reason);
	if (id_valid(lei))
		cJSON_AddStringToObject(o, "last_event_id", lei);
	else
		cJSON_AddNullToObject(o, "last_event_id");
	if (ring.n > 0)
		cJSON_AddStringToObject(o, "oldest_id", ring_at(0)->id);
	else
		cJSON_AddNullToObject(o, "oldest_id");
	cJSON_AddNumberToObject(o, "replayed", (double)replayed);
	if ((json = cJSON_PrintUnformatted(o)) == NULL)
		fatalx("cJSON_PrintUnformatted failed");
	cJSON_Delete(o);
	jlen = strlen(json);
	m = msg_new(strlen("event: ctr.gap\ndata: \n\n") + jlen);
	snprintf(m->text, m->len + 1, "event: ctr.gap\ndata: %s\n\n", json);
	free(json);
	return m;
}

/*
 * Queue what a subscriber resuming after lei missed: the events after it
 * that it wants, preceded by a ctr.gap notice when the ring cannot tell
 * whether that is all.  Returns the gap's reason, or NULL.
 */
static const char *
sub_replay(struct subscriber *s, const char *lei, size_t *replayed)
{
	const char *reason = NULL;
	struct msg **pick, *m;
	size_t from, i, n = 0;
	cJSON *env;
	int found = 0;

	from = id_valid(lei) ? ring_after(lei, &found) : ring.n;
	if (!found) {
		if (id_valid(lei) && strcmp(lei, ring.horizon) <= 0) {
			reason = "expired";
			from = 0;
		} else {
			reason = "unknown";
			from = ring.n;
		}
	}
	pick = xcalloc(ring.n - from + 1, sizeof(*pick));
	for (i = from; i < ring.n; i++) {
		m = ring_at(i);
		env = cJSON_ParseWithLength(m->text + m->json_off,
		    m->json_len);
		if (env != NULL && sub_wants(s, env))
			pick[n++] = m;
		cJSON_Delete(env);
	}
	if (reason != NULL) {
		m = gap_message(reason, lei, n);
		sub_queue(s, m);
		msg_unref(m);
		metrics_stream()->gaps++;
	}
	for (i = 0; i < n; i++)
		sub_queue(s, pick[i]);
	free(pick);
	*replayed = n;
	return reason;
}

static void
add_cors(struct MHD_Response *resp, struct MHD_Connection *conn,
    const struct stream_conf *sc)
{
	const char *origin;
	size_t i;

	if (sc->ncors_origins == 0)
		return;
	if (strcmp(sc->cors_origins[0], "*") == 0) {
		MHD_add_response_header(resp,
		    MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, "*");
		return;
	}
	/* the answer depends on Origin, and caches must know it */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
	origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Origin");
	if (origin == NULL)
		return;
	/* echoed as the browser wrote it: it compares bytes */
	for (i = 0; i < sc->ncors_origins; i++)
		if (strcasecmp(origin, sc->cors_origins[i]) == 0) {
			MHD_add_response_header(resp,
			    MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN,
			    origin);
			return;
		}
}

enum MHD_Result
stream_preflight(struct MHD_Connection *conn, const char *url)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(0, (void *)"",
	    MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		fatalx("MHD_create_response_from_buffer failed");
	add_cors(resp, conn, current());
	MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET");
	MHD_add_response_header(resp, "Access-Control-Allow-Headers",
	    "Authorization, Last-Event-ID, Cache-Control");
	MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
	ret = MHD_queue_response(conn, 204, resp);
	MHD_destroy_response(resp);
	metrics_response(204);
	return ret;
}

/*
 * Everything a subscriber is checked for, in order: the token (so that a
 * client without one learns nothing else), the query, then the caps.
 * Returns 0 with s's token and filters set and *lei the resume point (or
 * NULL), or -1 with rf filled in.
 */
static int
admit(struct MHD_Connection *conn, const struct stream_conf *sc,
    const char *addr, struct subscriber *s, const char **lei,
    struct refusal *rf)
{
	const struct config *cf = fanout_config(fanout_current());
	const struct stream_token *tk = NULL;
	struct query q;
	int rc = -1;
	size_t i;

	memset(&q, 0, sizeof(q));
	q.rf = rf;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_arg,
	    &q);
	if (quiescing) {
		rf->code = "shutting_down";
		rf->hname = MHD_HTTP_HEADER_RETRY_AFTER;
		rf->hvalue = "1";
		refuse(rf, 503, "the server is shutting down; retry shortly");
		goto done;
	}
	if (sc->access == STREAM_TOKEN && (tk = check_token(conn, sc,
	    q.token, s->token_hash, rf)) == NULL)
		goto done;
	if (q.bad)
		goto done;
	if (!token_allows(tk, q.values[0])) {
		rf->code = "token_not_allowed";
		rf->field = "producer";
		refuse(rf, 403, "the token may not watch that producer");
		goto done;
	}
	if ((s->filter = filter_compile(&q, rf)) == NULL && rf->status != 0)
		goto done;
	if (q.pattern != NULL && (s->pattern = pattern_from_query(q.pattern,
	    cf->json_depth_max, rf)) == NULL)
		goto done;

	snprintf(rf->hbuf, sizeof(rf->hbuf), "%u",
	    (sc->retry_ms + 999) / 1000);
	rf->hname = MHD_HTTP_HEADER_RETRY_AFTER;
	rf->hvalue = rf->hbuf;
	rf->code = "too_many_subscribers";
	if (nsubs >= sc->max_subscribers) {
		refuse(rf, 503, "the stream has its %u subscribers; retry "
		    "later", sc->max_subscribers);
		goto done;
	}
	if (sc->max_subscribers_per_ip > 0 &&
	    subscribers_from(addr) >= sc->max_subscribers_per_ip) {
		refuse(rf, 429, "this address has its %u streams open",
		    sc->max_subscribers_per_ip);
		goto done;
	}
	rf->hname = NULL;
	if (tk != NULL) {
		s->token = xstrdup(tk->name);
		sub_set_globs(s, tk);
	}
	*lei = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Last-Event-ID");
	if (*lei == NULL || (*lei)[0] == '\0')
		*lei = q.last_event_id;
	rc = 0;
 done:
	for (i = 0; i < NFILTERS; i++)
		cJSON_Delete(q.values[i]);
	return rc;
}

static void
sub_link(struct subscriber *s)
{
	s->anext = all_head;
	if (all_head != NULL)
		all_head->aprev = s;
	all_head = s;
	nsubs++;
	metrics_stream()->subscribers++;
	metrics_stream()->opened++;
}

enum MHD_Result
stream_serve(struct MHD_Connection *conn, const char *url)
{
	const struct stream_conf *sc = sync_config();
	const union MHD_ConnectionInfo *ci;
	struct MHD_Response *resp;
	struct subscriber *s;
	struct refusal rf;
	struct msg *m;
	const char *lei = NULL, *gap = NULL;
	enum MHD_Result ret;
	char hello[32];
	size_t replayed = 0;
	int64_t now = mono_ms();

	s = xcalloc(1, sizeof(*s));
	http_client_addr(conn, s->addr, sizeof(s->addr));
	memset(&rf, 0, sizeof(rf));
	if (admit(conn, sc, s->addr, s, &lei, &rf) == -1) {
		if (rf.status == 401)
			metrics_auth_failure(rf.code);
		log_info("stream status=%d code=%s client=%s", rf.status,
		    rf.code, s->addr);
		ret = http_reply_error(conn, rf.status, rf.code, rf.field,
		    rf.hname, rf.hvalue, "%s", rf.msg);
		if (s->filter != NULL)
			pattern_free(s->filter);
		if (s->pattern != NULL)
			pattern_free(s->pattern);
		sodium_memzero(s->token_hash, sizeof(s->token_hash));
		free(s);
		return ret;
	}

	s->conn = conn;
	sub_link(s);
	snprintf(hello, sizeof(hello), "retry: %u\n\n", sc->retry_ms);
	m = msg_text(hello);
	sub_queue(s, m);
	msg_unref(m);
	ring_expire(sc, now);
	if (lei != NULL)
		gap = sub_replay(s, lei, &replayed);
	idle_touch(s, now);

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
	    READ_BLOCK, sub_read, s, sub_free);
	if (resp == NULL)
		fatalx("MHD_create_response_from_callback failed");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-cache");
	/* nginx and the like must pass each message on, not buffer them */
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	add_cors(resp, conn, sc);
	ret = MHD_queue_response(conn, 200, resp);
	/* on failure this frees s through sub_free */
	MHD_destroy_response(resp);
	if (ret != MHD_YES)
		return ret;
	metrics_response(200);

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		s->hup = loop_add(ci->connect_fd, EPOLLRDHUP | EPOLLET, on_hup,
		    s);
	log_info("stream open client=%s token=%s resume=%s replayed=%zu "
	    "gap=%s subscribers=%zu", s->addr,
	    s->token != NULL ? s->token : "-", id_valid(lei) ? lei :
	    lei != NULL ? "invalid" : "-", replayed, gap != NULL ? gap : "-",
	    nsubs);
	return ret;
}

/* Shutting down */

void
stream_quiesce(void)
{
	struct subscriber *s;

	quiescing = 1;
	for (s = all_head; s != NULL; s = s->anext)
		if (s->state == SUB_OPEN)
			sub_end(s, SUB_ENDING, "shutdown");
}

void
stream_close_all(void)
{
	struct subscriber *s;

	quiescing = 1;
	for (s = all_head; s != NULL; s = s->anext)
		sub_end(s, SUB_CLOSED, "shutdown");
}

void
stream_free(void)
{
	if (nsubs > 0)
		log_warnx("stream: %zu subscribers left at exit", nsubs);
	ring_resize(0);
}
