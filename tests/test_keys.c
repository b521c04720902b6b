/* Unit tests for src/keys.c: key format, keyed hashing, lookup. */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config.h"
#include "keys.h"
#include "tap.h"
#include "util.h"

static void
test_format(void)
{
	char key[KEY_LEN + 1];
	int i, all = 1;

	for (i = 0; i < 200; i++) {
		keys_generate(key, sizeof(key));
		all &= strlen(key) == KEY_LEN && keys_format_ok(key, KEY_LEN);
	}
	ok(all, "200 generated keys have the ctr_ format");
	ok(strncmp(key, "ctr_", 4) == 0, "a key starts with ctr_");
	ok(!keys_format_ok("ctr_", 4), "a bare prefix is refused");
	ok(!keys_format_ok(key, KEY_LEN - 1), "a short key is refused");
	memcpy(key, "ctx_", 4);
	ok(!keys_format_ok(key, KEY_LEN), "a wrong prefix is refused");
	ok(!keys_format_ok("ctr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
	    KEY_LEN), "'+' (not base64url) is refused");
	ok(!keys_format_ok("ctr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
	    KEY_LEN), "a non-canonical last character is refused");
	ok(keys_format_ok("ctr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE",
	    KEY_LEN), "a canonical last character is accepted");
	ok(!keys_format_ok("ctr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	    KEY_LEN), "padding is refused");
}

static void
test_hash(void)
{
	unsigned char secret[SERVER_SECRET_LEN], other[SERVER_SECRET_LEN];
	unsigned char h1[KEY_HASH_LEN], h2[KEY_HASH_LEN], want[KEY_HASH_LEN];
	const char *key = "ctr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE";
	char hex[2 * KEY_HASH_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof(secret); i++)
		secret[i] = (unsigned char)i;
	memcpy(other, secret, sizeof(other));
	other[0] ^= 1;
	keys_hash(secret, key, strlen(key), h1);
	keys_hash(secret, key, strlen(key), h2);
	ok(memcmp(h1, h2, sizeof(h1)) == 0, "hashing is deterministic");
	keys_hash(other, key, strlen(key), h2);
	ok(memcmp(h1, h2, sizeof(h1)) != 0,
	    "another server secret gives another hash");
	crypto_generichash(want, sizeof(want), (const unsigned char *)key,
	    strlen(key), secret, sizeof(secret));
	ok(memcmp(h1, want, sizeof(h1)) == 0,
	    "the hash is keyed BLAKE2b-256 of the key text");
	keys_hash_hex(h1, hex, sizeof(hex));
	ok(strlen(hex) == 64 && strspn(hex, "0123456789abcdef") == 64,
	    "hex form is 64 lowercase hex digits");
}

static void
test_lookup(void)
{
	struct producer_conf prods[3];
	struct config cf;
	char k1[KEY_LEN + 1], k2[KEY_LEN + 1], k3[KEY_LEN + 1];
	char unknown[KEY_LEN + 1];

	memset(&cf, 0, sizeof(cf));
	memset(prods, 0, sizeof(prods));
	randombytes_buf(cf.server_secret, sizeof(cf.server_secret));
	keys_generate(k1, sizeof(k1));
	keys_generate(k2, sizeof(k2));
	keys_generate(k3, sizeof(k3));
	keys_generate(unknown, sizeof(unknown));
	prods[0].name = "alice";
	keys_hash(cf.server_secret, k1, KEY_LEN, prods[0].key_hash[0]);
	prods[0].nkeys = 1;
	prods[1].name = "bob";
	keys_hash(cf.server_secret, k2, KEY_LEN, prods[1].key_hash[0]);
	keys_hash(cf.server_secret, k3, KEY_LEN, prods[1].key_hash[1]);
	prods[1].nkeys = 2;
	cf.producers = prods;
	cf.nproducers = 2;

	ok(keys_lookup(&cf, k1, KEY_LEN) == &prods[0], "key 1 is alice's");
	ok(keys_lookup(&cf, k2, KEY_LEN) == &prods[1], "key 2 is bob's");
	ok(keys_lookup(&cf, k3, KEY_LEN) == &prods[1],
	    "bob's second (rotation) key is bob's too");
	ok(keys_lookup(&cf, unknown, KEY_LEN) == NULL,
	    "an unknown key finds nobody");
	ok(keys_lookup(&cf, k1, KEY_LEN - 1) == NULL,
	    "a truncated key finds nobody");
	ok(keys_lookup(&cf, "Bearer", 6) == NULL,
	    "a malformed key finds nobody");
	cf.nproducers = 0;
	ok(keys_lookup(&cf, k1, KEY_LEN) == NULL,
	    "no producers: nobody is found");
}

int
main(void)
{
	util_init();
	if (sodium_init() == -1)
		return 1;
	test_format();
	test_hash();
	test_lookup();
	return done();
}
