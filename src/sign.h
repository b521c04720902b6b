/* Standard Webhooks signatures (webhook-id, -timestamp, -signature). */
#ifndef CTRD_SIGN_H
#define CTRD_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* "v1," + base64 of a 32-byte HMAC, and the NUL. */
#define SIGN_HEADER_LEN	(3 + 44 + 1)

/*
 * Sign one delivery: HMAC-SHA256 under secret of "id.timestamp.body",
 * written to out as "v1,<base64>" (SIGN_HEADER_LEN bytes).
 */
void	sign_webhook(const unsigned char *secret, size_t secretlen,
	    const char *id, int64_t timestamp, const char *body,
	    size_t bodylen, char *out, size_t outlen);

/*
 * Check a webhook-signature header value (space-separated list of
 * "v1,<base64>" entries) against the expected signature, in constant
 * time.  Returns 1 if any entry matches, else 0.
 */
int	sign_verify(const unsigned char *secret, size_t secretlen,
	    const char *id, int64_t timestamp, const char *body,
	    size_t bodylen, const char *header);

#endif
