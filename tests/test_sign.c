/* Unit tests for src/sign.c against the Standard Webhooks scheme. */
#include "autoconf.h"

#include <string.h>

#include <sodium.h>

#include "sign.h"
#include "tap.h"
#include "util.h"

int
main(void)
{
	/* The secret is "whsec_" + base64 of these bytes. */
	const char *b64 = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	const char *id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
	const char *body = "{\"test\": 2432232314}";
	unsigned char secret[64], mac[crypto_auth_hmacsha256_BYTES];
	char sig[SIGN_HEADER_LEN], want[SIGN_HEADER_LEN], msg[256];
	char hdr[3 * SIGN_HEADER_LEN];
	size_t len;

	util_init();
	if (sodium_init() == -1)
		return 1;
	sodium_base642bin(secret, sizeof(secret), b64, strlen(b64), NULL,
	    &len, NULL, sodium_base64_VARIANT_ORIGINAL);

	/* The expected value computed the plain way, in one call. */
	snprintf(msg, sizeof(msg), "%s.%lld.%s", id, 1614265330LL, body);
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, secret, len);
	crypto_auth_hmacsha256_update(&st, (unsigned char *)msg, strlen(msg));
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(want, "v1,", 3);
	sodium_bin2base64(want + 3, sizeof(want) - 3, mac, sizeof(mac),
	    sodium_base64_VARIANT_ORIGINAL);

	sign_webhook(secret, len, id, 1614265330, body, strlen(body), sig,
	    sizeof(sig));
	is_str(sig, want, "signature is v1, + base64 HMAC of id.ts.body");
	is_str(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	    "signature matches the Standard Webhooks reference example");
	ok(sign_verify(secret, len, id, 1614265330, body, strlen(body), sig),
	    "verify accepts its own signature");
	snprintf(hdr, sizeof(hdr), "v1,AAAA %s", sig);
	ok(sign_verify(secret, len, id, 1614265330, body, strlen(body), hdr),
	    "verify finds the right entry in a list");
	ok(!sign_verify(secret, len, id, 1614265331, body, strlen(body),
	    sig), "another timestamp fails");
	ok(!sign_verify(secret, len, id, 1614265330, "{}", 2, sig),
	    "another body fails");
	ok(!sign_verify(secret, len, "msg_x", 1614265330, body,
	    strlen(body), sig), "another id fails");
	secret[0] ^= 1;
	ok(!sign_verify(secret, len, id, 1614265330, body, strlen(body),
	    sig), "another secret fails");
	ok(!sign_verify(secret, len, id, 1614265330, body, strlen(body), ""),
	    "an empty header fails");
	return done();
}
