/* ctrctl sink: a local webhook receiver that checks every signature. */
#include "autoconf.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <sodium.h>

#include "ctrctl.h"
#include "sign.h"
#include "util.h"

#define BODY_MAX	(1024 * 1024)
#define STATUSES_MAX	64
#define IDLE_TIMEOUT_S	60

/* Shared by every connection's thread; lock guards seen, answered and
 * standard output. */
struct sink {
	unsigned char	 secret[128];
	size_t		 secretlen;	/* 0: no --secret */
	unsigned	 status[STATUSES_MAX];
	size_t		 nstatus;
	unsigned	 delay_ms;
	long		 count;		/* stop after this many; -1 never */
	int		 json;
	pthread_mutex_t	 lock;
	long		 seen;
	long		 answered;
};

struct sink_req {
	char	*buf;
	size_t	 len;
	int	 overflow;
	int	 counted;	/* an answer for --count was queued */
};

/* What a delivery carried, for its printed line. */
struct delivery {
	const char	*id;
	const char	*verdict;
	cJSON		*env;		/* NULL when the body is not JSON */
	double		 latency_ms;	/* -1 when the envelope has no time */
	unsigned	 status;
	size_t		 bytes;
};

static atomic_int sink_done;

static void
on_stop_signal(int sig)
{
	sink_done = 1;
}

static const char *
verdict_of(const struct sink *s, struct MHD_Connection *conn,
    const struct sink_req *r, const char *id)
{
	const char *ts, *sig;
	char *end;
	int64_t t;

	if (s->secretlen == 0)
		return "unsigned";
	ts = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "webhook-timestamp");
	sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "webhook-signature");
	if (id == NULL || ts == NULL || sig == NULL)
		return "BAD";
	errno = 0;
	t = strtoll(ts, &end, 10);
	if (errno != 0 || end == ts || *end != '\0')
		return "BAD";
	return sign_verify(s->secret, s->secretlen, id, t, r->buf, r->len,
	    sig) ? "ok" : "BAD";
}

/* Milliseconds from the envelope's receive time ("time", RFC 3339 UTC)
 * until now, or -1. */
static double
latency_of(const cJSON *env)
{
	const cJSON *t = cJSON_GetObjectItem(env, "time");
	struct tm tm = { 0 };
	double frac = 0;
	char *end;

	if (!cJSON_IsString(t))
		return -1;
	end = strptime(t->valuestring, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return -1;
	if (*end == '.')
		frac = strtod(end, NULL);
	return (double)now_ms() - ((double)timegm(&tm) + frac) * 1000.0;
}

static const char *
text_member(const cJSON *env, const char *name)
{
	const cJSON *v = cJSON_GetObjectItem(env, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void
print_plain(const struct delivery *d)
{
	const cJSON *seq = cJSON_GetObjectItem(d->env, "seq");
	const char *type = text_member(d->env, "type");
	const char *producer = text_member(d->env, "producer");

	printf("event=%s type=%s producer=%s seq=%.0f signature=%s "
	    "latency_ms=%.0f bytes=%zu status=%u\n",
	    d->id != NULL ? d->id : "-", type != NULL ? type : "-",
	    producer != NULL ? producer : "-",
	    cJSON_IsNumber(seq) ? seq->valuedouble : -1.0, d->verdict,
	    d->latency_ms, d->bytes, d->status);
}

static void
add_copy_or_null(cJSON *out, const char *name, const cJSON *v)
{
	cJSON_AddItemToObject(out, name, v != NULL ?
	    cJSON_Duplicate(v, 1) : cJSON_CreateNull());
}

/* One JSON object a line, for programs: what arrived and how we
 * answered. */
static void
print_json(const struct delivery *d)
{
	cJSON *o = cJSON_CreateObject();
	char *line;

	if (d->id != NULL)
		cJSON_AddStringToObject(o, "id", d->id);
	else
		cJSON_AddNullToObject(o, "id");
	add_copy_or_null(o, "type", cJSON_GetObjectItem(d->env, "type"));
	add_copy_or_null(o, "producer",
	    cJSON_GetObjectItem(d->env, "producer"));
	add_copy_or_null(o, "seq", cJSON_GetObjectItem(d->env, "seq"));
	add_copy_or_null(o, "time", cJSON_GetObjectItem(d->env, "time"));
	add_copy_or_null(o, "origin_time",
	    cJSON_GetObjectItem(d->env, "origin_time"));
	cJSON_AddStringToObject(o, "signature", d->verdict);
	if (d->latency_ms >= 0)
		cJSON_AddNumberToObject(o, "latency_ms",
		    (double)(int64_t)d->latency_ms);
	else
		cJSON_AddNullToObject(o, "latency_ms");
	cJSON_AddNumberToObject(o, "status", d->status);
	cJSON_AddNumberToObject(o, "bytes", (double)d->bytes);
	add_copy_or_null(o, "detail", cJSON_GetObjectItem(d->env, "detail"));
	line = cJSON_PrintUnformatted(o);
	printf("%s\n", line);
	free(line);
	cJSON_Delete(o);
}

/* Take the next answer in --status-seq order and print the delivery;
 * one thread at a time, so that lines and the order of answers hold. */
static unsigned
record(struct sink *s, struct MHD_Connection *conn, struct sink_req *r)
{
	struct delivery d;
	size_t k;

	d.id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "webhook-id");
	d.env = cJSON_ParseWithLength(r->buf, r->len);
	d.latency_ms = latency_of(d.env);
	d.bytes = r->len;
	d.verdict = verdict_of(s, conn, r, d.id);

	pthread_mutex_lock(&s->lock);
	k = (size_t)s->seen++;
	d.status = s->status[k < s->nstatus ? k : s->nstatus - 1];
	if (r->overflow)
		d.status = 413;
	if (s->json)
		print_json(&d);
	else {
		print_plain(&d);
		if (getenv("CTRCTL_SINK_BODIES") != NULL)
			printf("%.*s\n", (int)r->len, r->buf);
	}
	fflush(stdout);
	pthread_mutex_unlock(&s->lock);
	cJSON_Delete(d.env);
	return d.status;
}

static enum MHD_Result
sink_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *data,
    size_t *size, void **con_cls)
{
	struct sink *s = cls;
	struct sink_req *r = *con_cls;
	struct MHD_Response *resp;
	struct timespec ts;
	enum MHD_Result ret;
	unsigned status;

	if (r == NULL) {
		*con_cls = xcalloc(1, sizeof(*r));
		return MHD_YES;
	}
	if (*size > 0) {
		if (r->len + *size > BODY_MAX)
			r->overflow = 1;
		else {
			r->buf = xrealloc(r->buf, r->len + *size + 1);
			memcpy(r->buf + r->len, data, *size);
			r->len += *size;
		}
		*size = 0;
		return MHD_YES;
	}
	if (r->buf == NULL)
		r->buf = xstrdup("");
	status = record(s, conn, r);
	/* Each connection has its own thread: a delay holds this answer
	 * only, as a slow consumer would. */
	if (s->delay_ms > 0) {
		ts.tv_sec = s->delay_ms / 1000;
		ts.tv_nsec = (long)(s->delay_ms % 1000) * 1000000;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	r->counted = 1;
	return ret;
}

/* --count stops the sink once that many answers went out whole. */
static void
sink_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct sink *s = cls;
	struct sink_req *r = *con_cls;

	if (r == NULL)
		return;
	if (r->counted) {
		pthread_mutex_lock(&s->lock);
		if (s->count > 0 && ++s->answered >= s->count)
			sink_done = 1;
		pthread_mutex_unlock(&s->lock);
	}
	free(r->buf);
	free(r);
	*con_cls = NULL;
}

static int
parse_uint(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	errno = 0;
	*v = strtoul(s, &end, 10);
	return end == s || *end != '\0' || errno != 0 || *s == '-' ||
	    *v > max ? -1 : 0;
}

/* "500,500,200": the answers in order; the last one repeats. */
static int
parse_statuses(const char *list, struct sink *s)
{
	char *copy = xstrdup(list), *p = copy, *tok;
	unsigned long v;
	int ret = 0;

	s->nstatus = 0;
	while ((tok = strsep(&p, ",")) != NULL) {
		if (s->nstatus == STATUSES_MAX || parse_uint(tok, 599,
		    &v) == -1 || v < 100) {
			ret = -1;
			break;
		}
		s->status[s->nstatus++] = (unsigned)v;
	}
	free(copy);
	return ret;
}

static int
parse_secret(const char *text, struct sink *s)
{
	if (strncmp(text, "whsec_", 6) != 0 ||
	    sodium_base642bin(s->secret, sizeof(s->secret), text + 6,
	    strlen(text + 6), NULL, &s->secretlen, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || s->secretlen == 0) {
		fprintf(stderr, "ctrctl: --secret: expects whsec_ and "
		    "base64\n");
		return -1;
	}
	return 0;
}

static int
parse_listen(const char *at, struct sockaddr_in *sin)
{
	const char *colon = strrchr(at, ':');
	unsigned long port;
	char host[64];

	if (colon == NULL || parse_uint(colon + 1, 65535, &port) == -1)
		return -1;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - at), at);
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
		fprintf(stderr, "ctrctl: %s: not an IPv4 address\n", host);
		return -1;
	}
	return 0;
}

static int
parse_options(int argc, char *argv[], struct sink *s, const char **at)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "secret", required_argument, NULL, 'S' },
		{ "status", required_argument, NULL, 's' },
		{ "status-seq", required_argument, NULL, 'q' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned long v;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		switch (c) {
		case 'l':
			*at = optarg;
			break;
		case 'S':
			if (parse_secret(optarg, s) == -1)
				return -1;
			break;
		case 's':
		case 'q':
			if ((c == 's' && strchr(optarg, ',') != NULL) ||
			    parse_statuses(optarg, s) == -1)
				return -1;
			break;
		case 'd':
			if (parse_uint(optarg, 3600000, &v) == -1)
				return -1;
			s->delay_ms = (unsigned)v;
			break;
		case 'c':
			if (parse_uint(optarg, LONG_MAX, &v) == -1)
				return -1;
			s->count = (long)v;
			break;
		case 'j':
			s->json = 1;
			break;
		default:
			return -1;
		}
	return *at == NULL || optind != argc ? -1 : 0;
}

int
sink_main(int argc, char *argv[])
{
	static struct sink s;
	struct sockaddr_in sin = { 0 };
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	const char *at = NULL;
	char host[INET_ADDRSTRLEN];

	s.status[0] = MHD_HTTP_NO_CONTENT;
	s.nstatus = 1;
	s.count = -1;
	pthread_mutex_init(&s.lock, NULL);
	if (parse_options(argc, argv, &s, &at) == -1 ||
	    parse_listen(at, &sin) == -1)
		ctrctl_usage();
	d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD |
	    MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, sink_request, &s,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
	    MHD_OPTION_NOTIFY_COMPLETED, sink_completed, &s,
	    MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "ctrctl: cannot listen on %s\n", at);
		return 1;
	}
	signal(SIGINT, on_stop_signal);
	signal(SIGTERM, on_stop_signal);
	/* The bound port, so that --listen 127.0.0.1:0 can be used. */
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host));
	fprintf(stderr, "ctrctl sink: listening on %s:%u\n", host,
	    info != NULL ? (unsigned)info->port : ntohs(sin.sin_port));
	while (!sink_done)
		usleep(20000);
	MHD_stop_daemon(d);
	sodium_memzero(s.secret, sizeof(s.secret));
	return 0;
}
