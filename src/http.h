/* The HTTP front: libmicrohttpd driven by the loop, routes, body limits,
 * and JSON error replies. */
#ifndef CTRD_HTTP_H
#define CTRD_HTTP_H

#include <stddef.h>
#include <microhttpd.h>

struct config;

/*
 * Bind cf's listen address and start serving from the loop.  Returns 0,
 * or -1 after logging why.
 */
int		http_start(const struct config *cf);
/* The bound port (useful when the configuration asked for port 0). */
unsigned	http_port(void);
/* Stop accepting connections; requests under way still finish and new
 * events on open connections get 503 shutting_down. */
void		http_quiesce(void);
/*
 * Have MHD_run called as soon as the current callback returns to the
 * loop.  In external polling mode libmicrohttpd handles a connection
 * resumed with MHD_resume_connection only in a later MHD_run, and has
 * no descriptor of its own to wake the loop with.
 */
void		http_kick(void);
/* Number of connections still open. */
unsigned	http_connections(void);
void		http_stop(void);

/*
 * For route handlers.  http_reply queues body (malloc'd; freed by the
 * reply) as status with Content-Type type, Cache-Control: no-store and,
 * when hname is not NULL, one more header.  http_reply_error queues
 * {"error":{"code","message"[,"field"]}} the same way; field may be NULL.
 * Both count the status in the metrics and return what
 * MHD_queue_response did.
 */
enum MHD_Result	http_reply(struct MHD_Connection *, int status, char *body,
		    const char *type, const char *hname, const char *hvalue);
enum MHD_Result	http_reply_error(struct MHD_Connection *, int status,
		    const char *code, const char *field, const char *hname,
		    const char *hvalue, const char *fmt, ...)
		    __attribute__((format(printf, 7, 8)));
/* The client's numeric address written into buf, or "-"; returns it. */
const char	*http_client_addr(struct MHD_Connection *, char *buf,
		    size_t len);

#endif
