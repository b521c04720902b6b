/* Standard Webhooks signatures: HMAC-SHA256 of "id.timestamp.body". */
#include "autoconf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "sign.h"

static void
mac(const unsigned char *secret, size_t secretlen, const char *id,
    int64_t timestamp, const char *body, size_t bodylen,
    unsigned char out[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;
	char ts[24];

	snprintf(ts, sizeof(ts), ".%" PRId64 ".", timestamp);
	crypto_auth_hmacsha256_init(&st, secret, secretlen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)id,
	    strlen(id));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts,
	    strlen(ts));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body,
	    bodylen);
	crypto_auth_hmacsha256_final(&st, out);
}

void
sign_webhook(const unsigned char *secret, size_t secretlen, const char *id,
    int64_t timestamp, const char *body, size_t bodylen, char *out,
    size_t outlen)
{
	unsigned char h[crypto_auth_hmacsha256_BYTES];

	if (outlen < SIGN_HEADER_LEN)
		fatalx("sign_webhook: buffer too small");
	mac(secret, secretlen, id, timestamp, body, bodylen, h);
	memcpy(out, "v1,", 3);
	sodium_bin2base64(out + 3, outlen - 3, h, sizeof(h),
	    sodium_base64_VARIANT_ORIGINAL);
}

int
sign_verify(const unsigned char *secret, size_t secretlen, const char *id,
    int64_t timestamp, const char *body, size_t bodylen, const char *header)
{
	char want[SIGN_HEADER_LEN];
	const char *p, *end;
	size_t n, wantlen;
	int match = 0;

	sign_webhook(secret, secretlen, id, timestamp, body, bodylen, want,
	    sizeof(want));
	wantlen = strlen(want);
	for (p = header; *p != '\0'; p = end) {
		while (*p == ' ')
			p++;
		end = strchr(p, ' ');
		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n == wantlen && sodium_memcmp(p, want, n) == 0)
			match = 1;
	}
	return match;
}
