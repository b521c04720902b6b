/* The HTTP front: libmicrohttpd driven by the loop, routes, body limits,
 * and JSON error replies. */
#ifndef CTRD_HTTP_H
#define CTRD_HTTP_H

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
/* Number of connections still open. */
unsigned	http_connections(void);
void		http_stop(void);

#endif
