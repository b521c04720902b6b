/* The live stream: Server-Sent Events subscribers, their filters and
 * backlogs, and the ring of recent events they resume from. */
#ifndef CTRD_STREAM_H
#define CTRD_STREAM_H

#include <cjson/cJSON.h>
#include <microhttpd.h>

/* Register the keep-alive timer with the loop.  Call once, after
 * loop_init and before http_start. */
void		stream_init(void);

/*
 * Serve GET /v1/stream: check the token and the caps, parse the filters
 * and the resume point, and answer 200 with an endless text/event-stream
 * whose connection stays suspended while it has nothing to send, or a
 * JSON error.  The daemon must run with MHD_ALLOW_SUSPEND_RESUME.
 */
enum MHD_Result	stream_serve(struct MHD_Connection *, const char *url);
/* Answer a CORS preflight (OPTIONS /v1/stream) with 204. */
enum MHD_Result	stream_preflight(struct MHD_Connection *, const char *url);

/*
 * Offer one accepted envelope, whose id is id and whose JSON text (from
 * json_print) is json[0..len), to the ring and to every subscriber it
 * matches.  Both are only read; the stream keeps its own copy.
 */
void		stream_publish(const cJSON *envelope, const char *json,
		    size_t len, const char *id);

/* Refuse new subscribers and end every stream once what is queued for
 * it has been sent (on SIGTERM). */
void		stream_quiesce(void);
/* End every stream now and resume every suspended connection, so that
 * MHD_stop_daemon finds none suspended.  Call just before stopping. */
void		stream_close_all(void);
/* Release the ring; after the HTTP daemon has stopped. */
void		stream_free(void);

#endif
