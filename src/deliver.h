/* Fan-out: per-consumer queues, deadlines, retries, and the libcurl multi
 * engine that makes every attempt from the one event loop. */
#ifndef CTRD_DELIVER_H
#define CTRD_DELIVER_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

struct config;

/*
 * A fanout is one configuration generation together with its consumers'
 * queues.  Reloading installs a new one; the old one keeps delivering what
 * it had queued under the settings it was queued with, and is freed (with
 * its configuration) when the last delivery and the last request that
 * refer to it are gone.
 */
struct fanout;

/* Set up libcurl and register with the loop.  Call once, after loop_init. */
void		 deliver_init(void);

/*
 * Open (create, append) the dead-letter file; returns the descriptor or
 * -1 with errno set.
 */
int		 deliver_open_dead_letter(const char *path);

/*
 * Make cf the current configuration; takes ownership of cf and of
 * dead_letter_fd (the previous descriptor is closed once nothing uses it).
 */
void		 fanout_install(struct config *cf, int dead_letter_fd);
/* The current fanout, or NULL before the first install. */
struct fanout	*fanout_current(void);
const struct config *fanout_config(const struct fanout *);
/* Hold or release a reference, e.g. for a request that spans calls. */
void		 fanout_ref(struct fanout *);
void		 fanout_unref(struct fanout *);

/*
 * Route one accepted envelope: queue a delivery for every consumer whose
 * pattern matches, with deadline recv_mono + that consumer's budget.  id
 * is the envelope's id, json[0..len) its text as json_print wrote it
 * (copied: the envelope is serialized once for every consumer and the
 * stream).  Returns the number of consumers matched, or -1
 * if the delivery queues cannot take the event (nothing was queued; the
 * caller answers 503).  A consumer whose own queue is full records that
 * delivery as dead-lettered at once and does not refuse the event for the
 * others.
 */
int		 deliver_event(struct fanout *, const cJSON *envelope,
		    const char *json, size_t len, const char *id,
		    int64_t recv_mono);

/* How many deliveries are waiting or in flight, all generations. */
size_t		 deliver_pending(void);
/*
 * Whether ctrd itself cannot keep up: its loop has been busy nearly all
 * of the last few hundred milliseconds while accepted deliveries pile up
 * in their queues.  New events are then refused with 503 and Retry-After,
 * so that those already accepted are not held up further.
 */
int		 deliver_overloaded(void);

/* Dead-letter every remaining delivery with reason "shutdown". */
void		 deliver_abandon(void);

/* Drop the current fanout and free libcurl; after deliver_abandon. */
void		 deliver_free(void);

#endif
