/* The live run page: the paths it answers and its reply headers. */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include <microhttpd.h>
#include <sodium.h>

#include "log.h"
#include "metrics.h"
#include "page.h"
#include "util.h"

#define RUNS_PREFIX	"/runs/"

/* "sha256-" and the base64 of a SHA-256, with its NUL. */
#define CSP_HASH_LEN	(7 + sodium_base64_ENCODED_LEN( \
	crypto_hash_sha256_BYTES, sodium_base64_VARIANT_ORIGINAL))

static char	csp[512];

int
page_path(const char *url)
{
	if (strcmp(url, "/") == 0)
		return 1;
	return strncmp(url, RUNS_PREFIX, strlen(RUNS_PREFIX)) == 0 &&
	    name_is_valid(url + strlen(RUNS_PREFIX));
}

/*
 * The CSP source for the body of the page's one bare element tag (open
 * is "<style>" or "<script>"), so that the browser runs that inline code
 * and nothing else: a hash keeps the page one static file, where a nonce
 * would need a new page per reply.
 */
static void
element_hash(const char *open, const char *close, char *out, size_t len)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	const char *s, *e;

	if ((s = strstr(page_html, open)) == NULL ||
	    (e = strstr(s + strlen(open), close)) == NULL)
		fatalx("the embedded page has no %s element", open);
	s += strlen(open);
	crypto_hash_sha256(h, (const unsigned char *)s, (size_t)(e - s));
	snprintf(out, len, "sha256-");
	sodium_bin2base64(out + 7, len - 7, h, sizeof(h),
	    sodium_base64_VARIANT_ORIGINAL);
}

/*
 * Nothing but the page's own style and script, and connections to this
 * server (the stream).  The favicon is a data: URL.
 */
static const char *
page_csp(void)
{
	char style[CSP_HASH_LEN], script[CSP_HASH_LEN];

	if (csp[0] != '\0')
		return csp;
	element_hash("<style>", "</style>", style, sizeof(style));
	element_hash("<script>", "</script>", script, sizeof(script));
	snprintf(csp, sizeof(csp), "default-src 'none'; "
	    "style-src '%s'; script-src '%s'; connect-src 'self'; "
	    "img-src data:; base-uri 'none'; form-action 'none'; "
	    "frame-ancestors 'none'", style, script);
	return csp;
}

enum MHD_Result
page_serve(struct MHD_Connection *conn)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(page_html_len,
	    (void *)page_html, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		fatalx("MHD_create_response_from_buffer failed");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/html; charset=utf-8");
	MHD_add_response_header(resp, "Content-Security-Policy", page_csp());
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	/* Fetched afresh so that an upgraded binary serves its own page. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-cache");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	metrics_response(MHD_HTTP_OK);
	return ret;
}
