/* Producer API keys: format, keyed BLAKE2b hashing, and lookup. */
#ifndef CTRD_KEYS_H
#define CTRD_KEYS_H

#include <stddef.h>

#include "config.h"

/* "ctr_" + 43 characters of unpadded base64url: 32 random bytes. */
#define KEY_PREFIX	"ctr_"
#define KEY_LEN		47

/* Returns 1 if key[0..len) has the API key format, else 0. */
int	keys_format_ok(const char *key, size_t len);

/*
 * Hash key[0..len) under the server secret into out (KEY_HASH_LEN bytes):
 * keyed BLAKE2b-256 of the whole key text.  ctr.conf holds only these.
 */
void	keys_hash(const unsigned char secret[SERVER_SECRET_LEN],
	    const char *key, size_t len, unsigned char out[KEY_HASH_LEN]);

/*
 * Find the producer that holds key[0..len) in cf.  Every stored hash is
 * compared, in constant time, whatever matches first, so the time taken
 * says nothing about which producer or how many bytes matched.  Returns
 * the producer (owned by cf) or NULL for a malformed or unknown key.
 */
const struct producer_conf *keys_lookup(const struct config *cf,
	    const char *key, size_t len);

/* Write a new random key, NUL-terminated, into buf (KEY_LEN + 1 bytes). */
void	keys_generate(char *buf, size_t len);

/* Write the 64-character lowercase hex of a hash into buf (65 bytes). */
void	keys_hash_hex(const unsigned char hash[KEY_HASH_LEN], char *buf,
	    size_t len);

#endif
