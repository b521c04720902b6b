/* Counters, gauges and latency histograms, rendered as Prometheus text. */
#ifndef CTRD_METRICS_H
#define CTRD_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum event_result {
	EVENT_ACCEPTED,
	EVENT_INVALID,		/* 400 or 413 */
	EVENT_FORBIDDEN,	/* 403 */
	EVENT_QUEUE_FULL,	/* 503 */
	EVENT_OVERLOADED,	/* 503 */
	EVENT_RATE_LIMITED,	/* 429 */
	EVENT_RESULTS
};

enum delivery_outcome {
	DELIVERY_DELIVERED,
	DELIVERY_DEAD_LETTERED,
	DELIVERY_OUTCOMES
};

#define LATENCY_BUCKETS	14

/*
 * Per-producer state that outlives any one configuration: the counters,
 * and the sequence number, which must keep counting across reloads.
 */
struct mproducer {
	char			*name;
	uint64_t		 seq;
	uint64_t		 events[EVENT_RESULTS];
	/* its rate limit's token bucket, kept across reloads too */
	double			 tokens;
	int64_t			 tokens_at;	/* mono ms; 0: never used */
	int64_t			 limited_logged; /* mono ms of the last line */
	struct mproducer	*next;
};

/* Per-consumer counters, summed over configuration generations. */
struct mconsumer {
	char			*name;
	uint64_t		 outcomes[DELIVERY_OUTCOMES];
	uint64_t		 attempts;
	uint64_t		 retries;
	uint64_t		 latency[LATENCY_BUCKETS + 1];	/* + Inf */
	uint64_t		 latency_count;
	double			 latency_sum;		/* seconds */
	int64_t			 queued;		/* gauge */
	int64_t			 in_flight;		/* gauge */
	uint64_t		 circuit_opens;
	int64_t			 circuit_open;		/* gauge: 0 or 1 */
	struct mconsumer	*next;
};

/* The live stream's counters, summed over configuration generations. */
struct mstream {
	int64_t		 subscribers;	/* gauge: streams open now */
	uint64_t	 opened;	/* streams ever opened */
	uint64_t	 dropped;	/* ended for passing backlog_max */
	uint64_t	 messages;	/* events written, replays included */
	uint64_t	 gaps;		/* ctr.gap notices sent */
};

/* The one set of stream counters; owned by this module. */
struct mstream		*metrics_stream(void);

/* Find or create the entry for a name; owned by this module. */
struct mproducer	*metrics_producer(const char *name);
struct mconsumer	*metrics_consumer(const char *name);

void	metrics_auth_failure(const char *reason);	/* static string */
void	metrics_response(int status);
/* Record one delivery's latency from receipt to the consumer's 2xx. */
void	metrics_latency(struct mconsumer *, int64_t ms);

/* Render every metric; returns a malloc'd string the caller frees. */
char	*metrics_render(size_t *len);
void	metrics_free(void);

#endif
