/* Counters, gauges and latency histograms, rendered as Prometheus text. */
#include "autoconf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

/* Upper bounds in milliseconds; the budget is 2 s, so the interesting
 * part of the range is well below it. */
static const int64_t bucket_ms[LATENCY_BUCKETS] = {
	1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 30000
};

static const char *event_results[EVENT_RESULTS] = {
	"accepted", "invalid", "forbidden", "queue_full", "overloaded",
	"rate_limited"
};

static const char *delivery_outcomes[DELIVERY_OUTCOMES] = {
	"delivered", "dead_lettered"
};

struct auth_failure {
	const char		*reason;
	uint64_t		 n;
	struct auth_failure	*next;
};

#define STATUS_MAX	600

static struct mproducer		*producers;
static struct mconsumer		*consumers;
static struct auth_failure	*auth_failures;
static uint64_t			 responses[STATUS_MAX];
static struct mstream		 stream;

struct mproducer *
metrics_producer(const char *name)
{
	struct mproducer *p;

	for (p = producers; p != NULL; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	p = xcalloc(1, sizeof(*p));
	p->name = xstrdup(name);
	p->next = producers;
	producers = p;
	return p;
}

struct mstream *
metrics_stream(void)
{
	return &stream;
}

struct mconsumer *
metrics_consumer(const char *name)
{
	struct mconsumer *c;

	for (c = consumers; c != NULL; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	c = xcalloc(1, sizeof(*c));
	c->name = xstrdup(name);
	c->next = consumers;
	consumers = c;
	return c;
}

void
metrics_auth_failure(const char *reason)
{
	struct auth_failure *a;

	for (a = auth_failures; a != NULL; a = a->next)
		if (strcmp(a->reason, reason) == 0)
			break;
	if (a == NULL) {
		a = xcalloc(1, sizeof(*a));
		a->reason = reason;
		a->next = auth_failures;
		auth_failures = a;
	}
	a->n++;
}

void
metrics_response(int status)
{
	if (status > 0 && status < STATUS_MAX)
		responses[status]++;
}

void
metrics_latency(struct mconsumer *c, int64_t ms)
{
	int i;

	for (i = 0; i < LATENCY_BUCKETS; i++)
		if (ms <= bucket_ms[i])
			break;
	c->latency[i]++;
	c->latency_count++;
	c->latency_sum += (double)ms / 1000.0;
}

struct out {
	char	*buf;
	size_t	 len;
	size_t	 cap;
};

static void __attribute__((format(printf, 2, 3)))
out(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < o->cap - o->len)
			break;
		o->cap *= 2;
		o->buf = xrealloc(o->buf, o->cap);
	}
	o->len += (size_t)n;
}

static void
header(struct out *o, const char *name, const char *type, const char *help)
{
	out(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
render_consumers(struct out *o)
{
	struct mconsumer *c;
	uint64_t cum;
	int i, k;

	header(o, "ctrd_deliveries_total", "counter",
	    "Deliveries by consumer and final outcome.");
	for (c = consumers; c != NULL; c = c->next)
		for (k = 0; k < DELIVERY_OUTCOMES; k++)
			out(o, "ctrd_deliveries_total{consumer=\"%s\","
			    "outcome=\"%s\"} %" PRIu64 "\n", c->name,
			    delivery_outcomes[k], c->outcomes[k]);
	header(o, "ctrd_delivery_attempts_total", "counter",
	    "HTTP attempts by consumer, retries included.");
	for (c = consumers; c != NULL; c = c->next)
		out(o, "ctrd_delivery_attempts_total{consumer=\"%s\"} %"
		    PRIu64 "\n", c->name, c->attempts);
	header(o, "ctrd_delivery_retries_total", "counter",
	    "Attempts that were retries of an earlier failed attempt.");
	for (c = consumers; c != NULL; c = c->next)
		out(o, "ctrd_delivery_retries_total{consumer=\"%s\"} %"
		    PRIu64 "\n", c->name, c->retries);
	header(o, "ctrd_queue_depth", "gauge",
	    "Deliveries waiting for a free slot, by consumer.");
	for (c = consumers; c != NULL; c = c->next)
		out(o, "ctrd_queue_depth{consumer=\"%s\"} %" PRId64 "\n",
		    c->name, c->queued);
	header(o, "ctrd_in_flight", "gauge",
	    "Deliveries being attempted or waiting to retry, by consumer.");
	for (c = consumers; c != NULL; c = c->next)
		out(o, "ctrd_in_flight{consumer=\"%s\"} %" PRId64 "\n",
		    c->name, c->in_flight);
	header(o, "ctrd_circuit_opens_total", "counter",
	    "Times the consumer's circuit breaker opened.");
	for (c = consumers; c != NULL; c = c->next)
		out(o, "ctrd_circuit_opens_total{consumer=\"%s\"} %" PRIu64
		    "\n", c->name, c->circuit_opens);
	header(o, "ctrd_circuit_open", "gauge",
	    "1 while the consumer's circuit breaker is open or half open.");
	for (c = consumers; c != NULL; c = c->next)
		out(o, "ctrd_circuit_open{consumer=\"%s\"} %" PRId64 "\n",
		    c->name, c->circuit_open);
	header(o, "ctrd_delivery_latency_seconds", "histogram",
	    "Time from receipt of an event to the consumer's 2xx.");
	for (c = consumers; c != NULL; c = c->next) {
		cum = 0;
		for (i = 0; i < LATENCY_BUCKETS; i++) {
			cum += c->latency[i];
			out(o, "ctrd_delivery_latency_seconds_bucket{consumer="
			    "\"%s\",le=\"%g\"} %" PRIu64 "\n", c->name,
			    (double)bucket_ms[i] / 1000.0, cum);
		}
		out(o, "ctrd_delivery_latency_seconds_bucket{consumer=\"%s\","
		    "le=\"+Inf\"} %" PRIu64 "\n", c->name, c->latency_count);
		out(o, "ctrd_delivery_latency_seconds_sum{consumer=\"%s\"} "
		    "%.6f\n", c->name, c->latency_sum);
		out(o, "ctrd_delivery_latency_seconds_count{consumer=\"%s\"} "
		    "%" PRIu64 "\n", c->name, c->latency_count);
	}
}

static void
render_stream(struct out *o)
{
	header(o, "ctrd_stream_subscribers", "gauge",
	    "Live stream subscribers connected now.");
	out(o, "ctrd_stream_subscribers %" PRId64 "\n", stream.subscribers);
	header(o, "ctrd_stream_subscriptions_total", "counter",
	    "Live streams opened.");
	out(o, "ctrd_stream_subscriptions_total %" PRIu64 "\n", stream.opened);
	header(o, "ctrd_stream_dropped_total", "counter",
	    "Subscribers cut off for reading too slowly (backlog_max).");
	out(o, "ctrd_stream_dropped_total %" PRIu64 "\n", stream.dropped);
	header(o, "ctrd_stream_messages_total", "counter",
	    "Events written to subscribers, replayed ones included.");
	out(o, "ctrd_stream_messages_total %" PRIu64 "\n", stream.messages);
	header(o, "ctrd_stream_gaps_total", "counter",
	    "Resumes the ring could not serve whole (ctr.gap notices).");
	out(o, "ctrd_stream_gaps_total %" PRIu64 "\n", stream.gaps);
}

char *
metrics_render(size_t *len)
{
	struct out o = { xmalloc(4096), 0, 4096 };
	struct mproducer *p;
	struct auth_failure *a;
	int k;

	/* Names are checked by the configuration to be [A-Za-z0-9_.-], so
	 * they need no escaping in label values. */
	header(&o, "ctrd_events_total", "counter",
	    "Events by producer and result.");
	for (p = producers; p != NULL; p = p->next)
		for (k = 0; k < EVENT_RESULTS; k++)
			out(&o, "ctrd_events_total{producer=\"%s\","
			    "result=\"%s\"} %" PRIu64 "\n", p->name,
			    event_results[k], p->events[k]);
	header(&o, "ctrd_auth_failures_total", "counter",
	    "Requests refused for a missing or unknown key.");
	for (a = auth_failures; a != NULL; a = a->next)
		out(&o, "ctrd_auth_failures_total{reason=\"%s\"} %" PRIu64
		    "\n", a->reason, a->n);
	header(&o, "ctrd_http_responses_total", "counter",
	    "HTTP responses by status code.");
	for (k = 0; k < STATUS_MAX; k++)
		if (responses[k] != 0)
			out(&o, "ctrd_http_responses_total{code=\"%d\"} %"
			    PRIu64 "\n", k, responses[k]);
	render_consumers(&o);
	render_stream(&o);
	*len = o.len;
	return o.buf;
}

void
metrics_free(void)
{
	struct mproducer *p;
	struct mconsumer *c;
	struct auth_failure *a;

	while ((p = producers) != NULL) {
		producers = p->next;
		free(p->name);
		free(p);
	}
	while ((c = consumers) != NULL) {
		consumers = c->next;
		free(c->name);
		free(c);
	}
	while ((a = auth_failures) != NULL) {
		auth_failures = a->next;
		free(a);
	}
}
