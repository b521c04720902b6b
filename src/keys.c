/* Producer API keys: format, keyed BLAKE2b hashing, and lookup. */
#include "autoconf.h"

#include <string.h>

#include <sodium.h>

#include "config.h"
#include "keys.h"
#include "log.h"

int
keys_format_ok(const char *key, size_t len)
{
	size_t i;
	char c;

	if (len != KEY_LEN || memcmp(key, KEY_PREFIX, 4) != 0)
		return 0;
	for (i = 4; i < len; i++) {
		c = key[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	/* 32 bytes are 42 full characters and 4 bits in the 43rd, whose
	 * low 2 bits must then be zero for a canonical encoding. */
	c = key[KEY_LEN - 1];
	return strchr("AEIMQUYcgkosw048", c) != NULL;
}

void
keys_hash(const unsigned char secret[SERVER_SECRET_LEN], const char *key,
    size_t len, unsigned char out[KEY_HASH_LEN])
{
	crypto_generichash(out, KEY_HASH_LEN, (const unsigned char *)key,
	    len, secret, SERVER_SECRET_LEN);
}

const struct producer_conf *
keys_lookup(const struct config *cf, const char *key, size_t len)
{
	const struct producer_conf *found = NULL, *p;
	unsigned char hash[KEY_HASH_LEN];
	size_t i, k;

	if (!keys_format_ok(key, len))
		return NULL;
	keys_hash(cf->server_secret, key, len, hash);
	/*
	 * XXX: linear in the number of keys; fine for the hundreds of
	 * producers one instance serves.  A table indexed by the keyed hash
	 * would be safe too (an attacker cannot predict hashes), if needed.
	 */
	for (i = 0; i < cf->nproducers; i++) {
		p = &cf->producers[i];
		for (k = 0; k < p->nkeys; k++)
			if (sodium_memcmp(hash, p->key_hash[k],
			    KEY_HASH_LEN) == 0)
				found = p;
	}
	sodium_memzero(hash, sizeof(hash));
	return found;
}

void
keys_generate(char *buf, size_t len)
{
	unsigned char raw[32];

	if (len < KEY_LEN + 1)
		fatalx("keys_generate: buffer too small");
	randombytes_buf(raw, sizeof(raw));
	memcpy(buf, KEY_PREFIX, 4);
	sodium_bin2base64(buf + 4, len - 4, raw, sizeof(raw),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

void
keys_hash_hex(const unsigned char hash[KEY_HASH_LEN], char *buf, size_t len)
{
	sodium_bin2hex(buf, len, hash, KEY_HASH_LEN);
}
