/* The canonical envelope, and normalization of every accepted input shape
 * into it. */
#ifndef CTRD_EVENT_H
#define CTRD_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

struct producer_conf;

/* Why an entry was refused: the HTTP status, a stable code, and a message
 * that names the field at fault ("detail.pace: ..."). */
struct event_error {
	int		 status;	/* 400 or 403 */
	const char	*code;
	char		 field[64];	/* "detail.pace", or "" */
	char		 message[200];
};

/* ULID-style id: 48-bit milliseconds + 80 random bits, Crockford base32;
 * unique and sortable as text.  EVENT_ID_LEN excludes the NUL. */
#define EVENT_ID_LEN	26

/*
 * Build the envelope for one entry of a request body.  in is one object in
 * any accepted shape: native, EventBridge (detail-type), PutEvents entry
 * (DetailType, Detail as a JSON string), SNS (Message), or the Catch The
 * Run LiveSplit component's PascalCase body (EventType).  The producer comes
 * from the key: a body that names another producer is refused (403
 * producer_mismatch), as is a source or type the producer may not send.
 * recv_ms is the receive time (wall clock).  Returns a new envelope whose
 * first members are "id" and "seq" with placeholder values that
 * event_stamp fills once the event is accepted, or NULL with err set.
 */
cJSON	*event_normalize(const cJSON *in, const struct producer_conf *,
	    int64_t recv_ms, struct event_error *err);

/* Returns 1 if s is an event type: lowercase words (a-z, 0-9, '_', '-')
 * joined by dots, at least two of them, at most 128 bytes in all. */
int	 event_type_valid(const char *s);

/* Set the envelope's id and per-producer sequence number. */
void	 event_stamp(cJSON *envelope, const char *id, uint64_t seq);

/*
 * Write a new id for an event received at ms into buf (EVENT_ID_LEN + 1
 * bytes).  Ids made by one process are strictly increasing, also within a
 * millisecond.
 */
void	 event_id(char *buf, int64_t ms);

/*
 * Parse a duration as producers send it: an optional sign, optional
 * "d." days, then h:mm:ss or m:ss, with up to seven fractional digits
 * (.NET TimeSpan text is "-00:00:05.1230000").  Stores milliseconds,
 * truncated toward zero, in *ms.  Returns 0, or -1 if the text is not
 * exactly such a duration.
 */
int	 event_parse_duration(const char *s, int64_t *ms);

/* Format ms as "-0:00:05.000" (sign only when negative; hours unpadded). */
void	 event_fmt_duration(char *buf, size_t len, int64_t ms);

#endif
