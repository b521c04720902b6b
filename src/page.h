/* The live run page at / and /runs/<producer>: a web page, embedded in
 * the binary, that follows runs over GET /v1/stream. */
#ifndef CTRD_PAGE_H
#define CTRD_PAGE_H

#include <stddef.h>
#include <microhttpd.h>

/*
 * Whether url (the decoded path, without the query) is one the page
 * answers: "/" for every producer, or "/runs/<producer>" where the name
 * is a valid producer name.  Any other path under /runs/ is not, so that
 * the caller answers it with its 404.
 */
int		page_path(const char *url);

/*
 * Queue the page as a 200 reply on conn, with its Content-Security-Policy
 * and no-sniff headers.  The page is the same on every path: its script
 * reads the producer from location.pathname.  Returns what
 * MHD_queue_response does.
 */
enum MHD_Result	page_serve(struct MHD_Connection *conn);

/* The page's bytes, made from src/page.html at build time (page_html.c);
 * page_html_len excludes the final NUL. */
extern const char	page_html[];
extern const size_t	page_html_len;

#endif
