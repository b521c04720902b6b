/* The HTTP front: libmicrohttpd driven by the loop, routes, body limits,
 * and JSON error replies. */
#include "autoconf.h"

#include <sys/socket.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <microhttpd.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "deliver.h"
#include "event.h"
#include "http.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "page.h"
#include "stream.h"
#include "util.h"

#define BATCH_MAX	10
/* Memory libmicrohttpd gives each connection for its request line,
 * headers and read buffer (the body is copied out as it arrives).  Its
 * default, 32 KiB, is cleared on every request; 16 KiB still holds
 * about 12 KiB of headers, far more than any producer sends. */
#define CONN_POOL_BYTES	(16 * 1024)

enum route {
	ROUTE_EVENTS,		/* POST /v1/events */
	ROUTE_LEGACY,		/* POST /api/event, the LiveSplit component */
	ROUTE_GET,		/* answered by the row's handlers */
};

static enum MHD_Result	serve_health(struct MHD_Connection *, const char *);
static enum MHD_Result	serve_metrics(struct MHD_Connection *, const char *);
static enum MHD_Result	serve_page(struct MHD_Connection *, const char *);

/*
 * A row matches its exact path, or, when path is NULL, the urls its match
 * function accepts.  get serves GET (and HEAD, when allow lists it) once
 * the request is complete; options, when set, serves OPTIONS.
 */
static const struct endpoint {
	const char	*path;
	int		(*match)(const char *url);
	enum route	 route;
	const char	*allow;
	enum MHD_Result	(*get)(struct MHD_Connection *, const char *url);
	enum MHD_Result	(*options)(struct MHD_Connection *, const char *url);
} routes[] = {
	{ "/v1/events",	NULL, ROUTE_EVENTS, "POST", NULL, NULL },
	{ "/api/event",	NULL, ROUTE_LEGACY, "POST", NULL, NULL },
	{ "/healthz",	NULL, ROUTE_GET, "GET, HEAD", serve_health, NULL },
	{ "/metrics",	NULL, ROUTE_GET, "GET, HEAD", serve_metrics, NULL },
	{ "/v1/stream",	NULL, ROUTE_GET, "GET, OPTIONS", stream_serve,
	  stream_preflight },
	/* "/" and "/runs/<producer>" */
	{ NULL, page_path, ROUTE_GET, "GET, HEAD", serve_page, NULL },
};

/* A POST whose body is still arriving. */
struct request {
	struct fanout			*fo;
	const struct producer_conf	*producer;
	struct mproducer		*m;		/* its counters */
	enum route			 route;
	char				*buf;
	size_t				 len;
	size_t				 cap;
	size_t				 hint;		/* Content-Length */
	size_t				 discarded;	/* past body_max */
	int64_t				 deadline;	/* mono ms */
};

/* The outcome of one entry of a body. */
struct entry_result {
	struct event_error	 err;
	int			 ok;
	char			 id[EVENT_ID_LEN + 1];
};

static struct MHD_Daemon	*mhd;
static struct loop_watch	*mhd_watch;
static unsigned			 bound_port;
static int			 draining;
static unsigned			 nconnections;
static int			 kicked;	/* MHD_run wanted at once */
/* The request state of a GET or an OPTIONS, which holds nothing. */
static struct request		 get_marker, options_marker;

static enum MHD_Result
reply(struct MHD_Connection *conn, int status, char *body,
    const char *type, const char *hname, const char *hvalue)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(body), body,
	    MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
		fatalx("MHD_create_response_from_buffer failed");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
	if (hname != NULL)
		MHD_add_response_header(resp, hname, hvalue);
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	metrics_response(status);
	return ret;
}

static char *
print_json(cJSON *o)
{
	char *s;

	s = json_print(o, NULL);
	cJSON_Delete(o);
	return s;
}

static cJSON *
error_object(const char *code, const char *message, const char *field)
{
	cJSON *o, *e;

	o = cJSON_CreateObject();
	e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	if (field != NULL && field[0] != '\0')
		cJSON_AddStringToObject(e, "field", field);
	return o;
}

static enum MHD_Result __attribute__((format(printf, 7, 0)))
vreply_error(struct MHD_Connection *conn, int status, const char *code,
    const char *field, const char *hname, const char *hvalue,
    const char *fmt, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return reply(conn, status, print_json(error_object(code, msg, field)),
	    "application/json", hname, hvalue);
}

static enum MHD_Result __attribute__((format(printf, 6, 7)))
reply_error(struct MHD_Connection *conn, int status, const char *code,
    const char *hname, const char *hvalue, const char *fmt, ...)
{
	enum MHD_Result ret;
	va_list ap;

	va_start(ap, fmt);
	ret = vreply_error(conn, status, code, NULL, hname, hvalue, fmt, ap);
	va_end(ap);
	return ret;
}

enum MHD_Result
http_reply(struct MHD_Connection *conn, int status, char *body,
    const char *type, const char *hname, const char *hvalue)
{
	return reply(conn, status, body, type, hname, hvalue);
}

enum MHD_Result
http_reply_error(struct MHD_Connection *conn, int status, const char *code,
    const char *field, const char *hname, const char *hvalue,
    const char *fmt, ...)
{
	enum MHD_Result ret;
	va_list ap;

	va_start(ap, fmt);
	ret = vreply_error(conn, status, code, field, hname, hvalue, fmt,
	    ap);
	va_end(ap);
	return ret;
}

static const char *
client_addr(struct MHD_Connection *conn, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci;
	socklen_t slen;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return "-";
	slen = ci->client_addr->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (getnameinfo(ci->client_addr, slen, buf, len, NULL, 0,
	    NI_NUMERICHOST) != 0)
		return "-";
	return buf;
}

const char *
http_client_addr(struct MHD_Connection *conn, char *buf, size_t len)
{
	return client_addr(conn, buf, len);
}

/* The key from "Authorization: Bearer <key>", or on the legacy route
 * from "x-producer-key". */
static const char *
find_key(struct MHD_Connection *conn, enum route route)
{
	const char *v;

	v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if (v != NULL) {
		if (strncasecmp(v, "Bearer ", 7) != 0)
			return "";
		v += 7;
		while (*v == ' ' || *v == '\t')
			v++;
		return v;
	}
	if (route == ROUTE_LEGACY)
		return MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    "x-producer-key");
	return NULL;
}

/* Accept "application/json", optionally with charset=utf-8. */
static int
json_media_type(const char *v)
{
	size_t n;

	if (v == NULL)
		return 0;
	while (*v == ' ')
		v++;
	n = strlen("application/json");
	if (strncasecmp(v, "application/json", n) != 0)
		return 0;
	v += n;
	while (*v == ' ')
		v++;
	if (*v == '\0')
		return 1;
	if (*v++ != ';')
		return 0;
	while (*v == ' ')
		v++;
	if (*v == '\0')
		return 1;
	return strncasecmp(v, "charset=", 8) == 0 &&
	    (strcasecmp(v + 8, "utf-8") == 0 ||
	    strcasecmp(v + 8, "\"utf-8\"") == 0);
}

/*
 * Everything a POST is checked for before its body is read: the key
 * first, so that a client without one learns nothing else.
 */
/* What the headers of a POST say about its framing and its key. */
struct framing {
	unsigned	 content_length;
	unsigned	 transfer_encoding;
	unsigned	 authorization;
	unsigned	 producer_key;
	const char	*bad;		/* a header whose value holds a NUL */
};

static enum MHD_Result
count_header(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct framing *f = cls;

	if (value != NULL && strlen(value) != value_size)
		f->bad = key;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		f->content_length++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		f->transfer_encoding++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0)
		f->authorization++;
	else if (strcasecmp(key, "x-producer-key") == 0)
		f->producer_key++;
	return MHD_YES;
}

/*
 * Refuse a request whose framing two HTTP parsers could read two ways
 * (a proxy in front of ctrd and ctrd itself): repeated or conflicting
 * length headers, a transfer coding other than chunked, a NUL inside a
 * value, or two keys.  Returns MHD_YES with *done 0 when all is well.
 */
static enum MHD_Result
check_framing(struct MHD_Connection *conn, int *done)
{
	struct framing f = { 0 };
	const char *te;

	*done = 1;
	MHD_get_connection_values_n(conn, MHD_HEADER_KIND, count_header, &f);
	if (f.bad != NULL)
		return reply_error(conn, 400, "invalid_header", NULL, NULL,
		    "header %.40s holds a NUL byte", f.bad);
	if (f.content_length > 1 || f.transfer_encoding > 1 ||
	    f.authorization > 1 || f.producer_key > 1)
		return reply_error(conn, 400, "duplicate_header", NULL, NULL,
		    "send each of Content-Length, Transfer-Encoding, "
		    "Authorization and x-producer-key at most once");
	if (f.content_length > 0 && f.transfer_encoding > 0)
		return reply_error(conn, 400, "conflicting_framing", NULL,
		    NULL, "send Content-Length or Transfer-Encoding, "
		    "not both");
	te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (te != NULL && strcasecmp(te, "chunked") != 0)
		return reply_error(conn, 501, "unsupported_transfer_encoding",
		    NULL, NULL, "the only transfer coding taken is chunked");
	*done = 0;
	return MHD_YES;
}

static int64_t		 shed_logged;	/* mono ms of the last line */
static unsigned		 shed_count;	/* refused since */

/*
 * A producer's rate limit, as a token bucket: rate_limit tokens a second
 * up to the burst, one an event.  With take, n tokens are taken if there
 * are n; without, they are only looked for.  Returns 0, or -1 with *wait
 * the whole seconds until there will be n.  The bucket holds at least
 * BATCH_MAX, so that a full batch always gets in in the end.
 */
static int
rate_check(const struct producer_conf *p, struct mproducer *m, size_t n,
    int take, unsigned *wait)
{
	double cap, rate = p->rate_limit, need;
	int64_t now = mono_ms();

	if (p->rate_limit == 0)
		return 0;
	cap = p->rate_burst != 0 ? p->rate_burst : 2.0 * rate;
	if (cap < BATCH_MAX)
		cap = BATCH_MAX;
	m->tokens = m->tokens_at == 0 ? cap :
	    m->tokens + (double)(now - m->tokens_at) * rate / 1000.0;
	if (m->tokens > cap)
		m->tokens = cap;
	m->tokens_at = now;
	if (m->tokens >= (double)n) {
		if (take)
			m->tokens -= (double)n;
		return 0;
	}
	need = ((double)n - m->tokens) / rate;
	*wait = need < 1.0 ? 1 : (unsigned)need + (need > (unsigned)need);
	return -1;
}

static enum MHD_Result
refuse_rate(struct MHD_Connection *conn, const struct producer_conf *p,
    struct mproducer *m, size_t n, unsigned wait)
{
	char secs[16];

	m->events[EVENT_RATE_LIMITED]++;	/* one a request */
	/* One line a second per producer: a flood must not fill the log. */
	if (m->limited_logged == 0 || mono_ms() >= m->limited_logged + 1000) {
		log_warnx("rate-limited producer=%s: over %u events a second",
		    p->name, p->rate_limit);
		m->limited_logged = mono_ms();
	}
	snprintf(secs, sizeof(secs), "%u", wait);
	return reply_error(conn, 429, "rate_limited",
	    MHD_HTTP_HEADER_RETRY_AFTER, secs, "producer %s may send %u "
	    "events a second; retry after the seconds Retry-After gives",
	    p->name, p->rate_limit);
}

static enum MHD_Result
admit(struct MHD_Connection *conn, enum route route, void **con_cls)
{
	struct fanout *fo = fanout_current();
	const struct config *cf = fanout_config(fo);
	const struct producer_conf *p;
	struct request *r;
	const char *key, *v;
	char addr[64];
	unsigned long long clen = 0;
	size_t keylen;
	enum MHD_Result ret;
	struct mproducer *m;
	unsigned wait;
	char *end;
	int done;

	if ((ret = check_framing(conn, &done)) != MHD_YES || done)
		return ret;
	if ((key = find_key(conn, route)) == NULL || *key == '\0') {
		metrics_auth_failure("missing_key");
		log_info("ingest status=401 code=missing_key client=%s",
		    client_addr(conn, addr, sizeof(addr)));
		return reply_error(conn, 401, "missing_key",
		    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer",
		    route == ROUTE_LEGACY ? "send the producer's API key in "
		    "\"x-producer-key\" or \"Authorization: Bearer ctr_...\"" :
		    "send the producer's API key as "
		    "\"Authorization: Bearer ctr_...\"");
	}
	/* Optional white space may end a field value (RFC 9110 5.5). */
	keylen = strlen(key);
	while (keylen > 0 && (key[keylen - 1] == ' ' ||
	    key[keylen - 1] == '\t'))
		keylen--;
	if ((p = keys_lookup(cf, key, keylen)) == NULL) {
		metrics_auth_failure("unknown_key");
		log_info("ingest status=401 code=unknown_key client=%s",
		    client_addr(conn, addr, sizeof(addr)));
		return reply_error(conn, 401, "unknown_key",
		    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer",
		    "the API key is not known to this server");
	}
	if (draining)
		return reply_error(conn, 503, "shutting_down",
		    MHD_HTTP_HEADER_RETRY_AFTER, "1",
		    "the server is shutting down; retry shortly");
	m = metrics_producer(p->name);
	if (rate_check(p, m, 1, 0, &wait) == -1)
		return refuse_rate(conn, p, m, 1, wait);
	v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!json_media_type(v))
		return reply_error(conn, 415, "unsupported_media_type",
		    NULL, NULL, "send Content-Type: application/json");
	v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (v != NULL) {
		errno = 0;
		clen = strtoull(v, &end, 10);
		if (errno == 0 && *end == '\0' && clen > cf->body_max)
			return reply_error(conn, 413, "body_too_large", NULL,
			    NULL, "the body is over %zu bytes", cf->body_max);
	} else {
		v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_TRANSFER_ENCODING);
		if (v == NULL)
			return reply_error(conn, 411, "length_required", NULL,
			    NULL, "send Content-Length or a chunked body");
	}

	r = xcalloc(1, sizeof(*r));
	r->fo = fo;
	fanout_ref(fo);
	r->producer = p;
	r->m = m;
	r->route = route;
	r->hint = clen <= cf->body_max ? (size_t)clen : 0;
	/* libmicrohttpd's timeout counts idle time only: a body sent a byte
	 * at a time would hold its connection forever. */
	r->deadline = mono_ms() + (int64_t)cf->connection_timeout_s * 1000;
	*con_cls = r;
	return MHD_YES;
}

/*
 * Keep what fits in body_max.  Past it, read on (so that the client gets
 * its 413) up to as much again, then give up on the connection: a chunked
 * body has no announced end.  Returns -1 to close.
 */
static int
take_body(struct request *r, const char *data, size_t n)
{
	size_t max = fanout_config(r->fo)->body_max, cap;

	if (mono_ms() > r->deadline) {
		log_info("ingest producer=%s code=body_too_slow: closed after "
		    "%u s", r->producer->name,
		    fanout_config(r->fo)->connection_timeout_s);
		return -1;
	}
	if (r->discarded > 0 || r->len + n > max) {
		r->discarded += n;
		return r->discarded > max ? -1 : 0;
	}
	/* Grow to what the body needs, not to body_max: most are small. */
	if (r->len + n > r->cap) {
		cap = r->cap > 0 ? r->cap : r->hint > 0 ? r->hint : 4096;
		while (cap < r->len + n)
			cap *= 2;
		r->cap = cap < max ? cap : max;
		r->buf = xrealloc(r->buf, r->cap + 1);
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	return 0;
}

static void
entry_fail(struct entry_result *res, int status, const char *code,
    const char *msg)
{
	res->ok = 0;
	res->err.status = status;
	res->err.code = code;
	res->err.field[0] = '\0';
	snprintf(res->err.message, sizeof(res->err.message), "%s", msg);
}

/* Normalize, stamp and route one entry. */
static void
ingest_entry(struct request *r, const cJSON *in, int64_t recv_ms,
    int64_t recv_mono, struct entry_result *res)
{
	struct mproducer *m = r->m;
	cJSON *env;
	char *json;
	size_t len;

	memset(res, 0, sizeof(*res));
	if (!cJSON_IsObject(in)) {
		entry_fail(res, 400, "invalid_event",
		    "each event must be a JSON object");
		m->events[EVENT_INVALID]++;
		return;
	}
	if ((env = event_normalize(in, r->producer, recv_ms,
	    &res->err)) == NULL) {
		m->events[res->err.status == 403 ? EVENT_FORBIDDEN :
		    EVENT_INVALID]++;
		return;
	}
	event_id(res->id, recv_ms);
	event_stamp(env, res->id, m->seq + 1);
	json = json_print(env, &len);
	if (deliver_event(r->fo, env, json, len, res->id, recv_mono) == -1) {
		entry_fail(res, 503, "queue_full",
		    "the delivery queues are full; retry shortly");
		m->events[EVENT_QUEUE_FULL]++;
		res->id[0] = '\0';
	} else {
		m->seq++;
		m->events[EVENT_ACCEPTED]++;
		res->ok = 1;
		stream_publish(env, json, len, res->id);
	}
	free(json);
	cJSON_Delete(env);
}

static cJSON *
entry_json(const struct entry_result *res)
{
	cJSON *o;

	if (res->ok) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", res->id);
		return o;
	}
	return error_object(res->err.code, res->err.message, res->err.field);
}

static void
log_ingest(struct MHD_Connection *conn, struct request *r, int status,
    const struct entry_result *res, size_t n, size_t accepted)
{
	char ids[BATCH_MAX * (EVENT_ID_LEN + 1) + 1] = "", addr[64];
	char field[4 * sizeof(res->err.field)] = "-";
	const struct entry_result *bad = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		if (res[i].ok) {
			if (ids[0] != '\0')
				strcat(ids, ",");
			strcat(ids, res[i].id);
		} else if (bad == NULL)
			bad = &res[i];
	}
	/* The field name comes from the producer's body. */
	if (bad != NULL && bad->err.field[0] != '\0')
		log_token(field, sizeof(field), bad->err.field);
	log_info("ingest status=%d producer=%s accepted=%zu failed=%zu "
	    "events=%s code=%s field=%s client=%s", status,
	    r->producer->name, accepted, n - accepted,
	    ids[0] != '\0' ? ids : "-", bad != NULL ? bad->err.code : "-",
	    field, client_addr(conn, addr, sizeof(addr)));
}

static enum MHD_Result
ingest(struct MHD_Connection *conn, struct request *r)
{
	const struct config *cf = fanout_config(r->fo);
	struct entry_result res[BATCH_MAX];
	struct json_error jerr;
	cJSON *doc, *o, *arr;
	const cJSON *item;
	size_t n = 0, accepted = 0, i;
	int64_t recv_ms = now_ms(), recv_mono = mono_ms();
	unsigned wait;
	int status, batch;

	if (r->discarded > 0)
		return reply_error(conn, 413, "body_too_large", NULL, NULL,
		    "the body is over %zu bytes", cf->body_max);
	/* Shed load before any work is spent on the event.  The body has
	 * been read, so that the connection stays open: for a few hundred
	 * bytes that is cheaper than a reconnection. */
	if (deliver_overloaded()) {
		r->m->events[EVENT_OVERLOADED]++;
		/* One line a second, not one an event: the log is work. */
		shed_count++;
		if (shed_logged == 0 || mono_ms() >= shed_logged + 1000) {
			log_warnx("overloaded: refusing events with 503 "
			    "(%u since the last such line, producer=%s)",
			    shed_count, r->producer->name);
			shed_logged = mono_ms();
			shed_count = 0;
		}
		return reply_error(conn, 503, "overloaded",
		    MHD_HTTP_HEADER_RETRY_AFTER, "1", "ctrd is at capacity; "
		    "retry after the seconds Retry-After gives");
	}
	if ((doc = json_parse_strict(r->buf != NULL ? r->buf : "", r->len,
	    cf->json_depth_max, cf->entry_max, &jerr)) == NULL) {
		log_info("ingest status=%d producer=%s code=%s",
		    jerr.status, r->producer->name, jerr.code);
		return reply_error(conn, jerr.status, jerr.code, NULL, NULL,
		    "%s", jerr.message);
	}
	if ((batch = cJSON_IsArray(doc))) {
		n = (size_t)cJSON_GetArraySize(doc);
		if (n == 0 || n > BATCH_MAX) {
			cJSON_Delete(doc);
			return reply_error(conn, 400, n == 0 ? "empty_batch" :
			    "batch_too_large", NULL, NULL,
			    "send 1 to %d events in an array", BATCH_MAX);
		}
	} else
		n = 1;
	/* Every event of a batch counts against the producer's limit, and
	 * a batch gets in whole or not at all. */
	if (rate_check(r->producer, r->m, n, 1, &wait) == -1) {
		cJSON_Delete(doc);
		return refuse_rate(conn, r->producer, r->m, n, wait);
	}
	if (batch) {
		i = 0;
		cJSON_ArrayForEach(item, doc)
			ingest_entry(r, item, recv_ms, recv_mono, &res[i++]);
	} else
		ingest_entry(r, doc, recv_ms, recv_mono, &res[0]);
	cJSON_Delete(doc);

	for (i = 0; i < n; i++)
		accepted += res[i].ok;
	/* A lone event that fails gets its own status; so does a batch of
	 * which nothing was accepted, with the first failure's status. */
	status = 202;
	if (accepted == 0)
		for (i = 0; i < n && status == 202; i++)
			status = res[i].err.status;
	log_ingest(conn, r, status, res, n, accepted);
	if (!batch && accepted == 0)
		o = entry_json(&res[0]);
	else {
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "accepted", (double)accepted);
		cJSON_AddNumberToObject(o, "failed", (double)(n - accepted));
		arr = cJSON_AddArrayToObject(o, "entries");
		for (i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, entry_json(&res[i]));
		if (accepted == 0)
			cJSON_AddItemReferenceToObject(o, "error",
			    cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0),
			    "error"));
	}
	return reply(conn, status, print_json(o), "application/json",
	    status == 503 ? MHD_HTTP_HEADER_RETRY_AFTER : NULL, "1");
}

static enum MHD_Result
serve_metrics(struct MHD_Connection *conn, const char *url)
{
	size_t len;

	return reply(conn, 200, metrics_render(&len),
	    "text/plain; version=0.0.4; charset=utf-8", NULL, NULL);
}

/* The page is the same on every path it answers. */
static enum MHD_Result
serve_page(struct MHD_Connection *conn, const char *url)
{
	return page_serve(conn);
}

static enum MHD_Result
serve_health(struct MHD_Connection *conn, const char *url)
{
	if (draining)
		return reply(conn, 503, xstrdup("{\"status\":\"draining\"}"),
		    "application/json", NULL, NULL);
	return reply(conn, 200, xstrdup("{\"status\":\"ok\"}"),
	    "application/json", NULL, NULL);
}

static const struct endpoint *
route_of(const char *url)
{
	const struct endpoint *rt;
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		rt = &routes[i];
		if (rt->path != NULL ? strcmp(url, rt->path) == 0 :
		    rt->match(url))
			return rt;
	}
	return NULL;
}

/* Whether method is one of the comma-separated names in allow. */
static int
method_allowed(const char *allow, const char *method)
{
	size_t n = strlen(method);
	const char *p;

	for (p = allow; (p = strstr(p, method)) != NULL; p += n)
		if ((p == allow || p[-1] == ' ') &&
		    (p[n] == '\0' || p[n] == ','))
			return 1;
	return 0;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_size, void **con_cls)
{
	struct request *r = *con_cls;
	const struct endpoint *rt;

	if (r == &get_marker)
		return route_of(url)->get(conn, url);
	if (r == &options_marker)
		return route_of(url)->options(conn, url);
	if (r != NULL) {
		if (*upload_size > 0) {
			if (take_body(r, upload_data, *upload_size) == -1)
				return MHD_NO;
			*upload_size = 0;
			return MHD_YES;
		}
		return ingest(conn, r);
	}

	if ((rt = route_of(url)) == NULL)
		return reply_error(conn, 404, "not_found", NULL, NULL,
		    "no such resource; events go to POST /v1/events");
	if (!method_allowed(rt->allow, method))
		return reply_error(conn, 405, "method_not_allowed",
		    MHD_HTTP_HEADER_ALLOW, rt->allow, "use %s", rt->allow);
	if (rt->route == ROUTE_EVENTS || rt->route == ROUTE_LEGACY)
		return admit(conn, rt->route, con_cls);
	/* Answer on the next call: libmicrohttpd closes a connection whose
	 * reply is queued before the request is complete. */
	*con_cls = strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0 ?
	    &options_marker : &get_marker;
	return MHD_YES;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;

	if (r == NULL || r == &get_marker || r == &options_marker)
		return;
	fanout_unref(r->fo);
	free(r->buf);
	free(r);
	*con_cls = NULL;
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
    enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		nconnections++;
	else
		nconnections--;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	log_debug("libmicrohttpd: %s", buf);
}

static void
on_mhd_ready(int fd, uint32_t events, void *arg)
{
	MHD_run(mhd);
}

static int64_t
mhd_next(void *arg)
{
	MHD_UNSIGNED_LONG_LONG to;

	if (mhd != NULL && kicked)
		return 0;
	if (mhd == NULL || MHD_get_timeout(mhd, &to) != MHD_YES)
		return -1;
	return mono_ms() + (int64_t)to;
}

static void
mhd_run_due(void *arg)
{
	MHD_UNSIGNED_LONG_LONG to;

	if (mhd == NULL)
		return;
	if (kicked || (MHD_get_timeout(mhd, &to) == MHD_YES && to == 0)) {
		kicked = 0;
		MHD_run(mhd);
	}
}

void
http_kick(void)
{
	kicked = 1;
}

static int
listen_socket(const struct config *cf)
{
	struct addrinfo hints = { 0 }, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[16];
	int fd, one = 1, rc;

	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", cf->listen_port);
	if ((rc = getaddrinfo(cf->listen_host, port, &hints, &ai)) != 0) {
		log_warnx("listen %s: %s", cf->listen_host, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) == -1 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(fd, 1024) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == -1) {
		log_warn("listen %s port %u", cf->listen_host,
		    cf->listen_port);
		if (fd != -1)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	bound_port = ntohs(ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

int
http_start(const struct config *cf)
{
	const union MHD_DaemonInfo *info;
	int fd;

	if ((fd = listen_socket(cf)) == -1)
		return -1;
	/* Stream subscribers are suspended while they have nothing to
	 * send; resuming one wakes MHD's epoll fd through its ITC. */
	mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
	    MHD_ALLOW_SUSPEND_RESUME, 0, NULL,
	    NULL, on_request, NULL,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, cf->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, cf->max_connections_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, cf->connection_timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_POOL_BYTES,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_END);
	if (mhd == NULL) {
		log_warnx("libmicrohttpd failed to start");
		close(fd);
		return -1;
	}
	info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL)
		fatalx("libmicrohttpd has no epoll descriptor");
	mhd_watch = loop_add(info->epoll_fd, EPOLLIN, on_mhd_ready, NULL);
	loop_hook(mhd_next, mhd_run_due, NULL);
	log_info("listening on %s port %u", cf->listen_host, bound_port);
	return 0;
}

unsigned
http_port(void)
{
	return bound_port;
}

unsigned
http_connections(void)
{
	return nconnections;
}

void
http_quiesce(void)
{
	int fd;

	draining = 1;
	stream_quiesce();
	if (mhd != NULL && (fd = MHD_quiesce_daemon(mhd)) != -1)
		close(fd);
}

void
http_stop(void)
{
	if (mhd_watch != NULL)
		loop_del(mhd_watch);
	mhd_watch = NULL;
	/* MHD_stop_daemon refuses to find a connection still suspended */
	stream_close_all();
	if (mhd != NULL)
		MHD_stop_daemon(mhd);
	mhd = NULL;
}
