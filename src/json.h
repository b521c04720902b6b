/* Strict JSON parsing for untrusted request bodies. */
#ifndef CTRD_JSON_H
#define CTRD_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

struct json_error {
	/* stable: "invalid_json", "entry_too_large" */
	const char	*code;
	int		 status;	/* HTTP status to answer: 400 or 413 */
	size_t		 offset;	/* byte offset of the problem */
	/* "line 1, column 7: duplicate key \"a\"" */
	char		 message[160];
};

/*
 * Parse buf[0..len) as exactly one JSON value (RFC 8259) and reject what
 * cJSON alone would accept or half-parse: invalid UTF-8 anywhere, "\u0000"
 * and unpaired surrogates in strings, duplicate keys in an object, nesting
 * deeper than max_depth, and anything but white space after the value.
 * When the value is an array, each element's text must be at most
 * entry_max bytes, else "entry_too_large" (413); when it is not an array
 * the whole value is one entry; entry_max 0 means no limit.  Nesting
 * counts containers: "[[1]]" is 2 deep.  Returns the parsed tree, owned
 * by the caller, or NULL with err filled in.
 */
cJSON	*json_parse_strict(const char *buf, size_t len, unsigned max_depth,
	    size_t entry_max, struct json_error *err);

/*
 * Store in *out the integer value of a number item, and return 0; return
 * -1 if v is not a number, not integral, or past 2^53, where doubles stop
 * holding every integer exactly.
 */
int	 json_int(const cJSON *v, int64_t *out);

/* Returns 1 if the whole of s is a number in RFC 8259's grammar ("-0.5e3"
 * is, "007", "+1" and ".5" are not), else 0. */
int	 json_is_number(const char *s);

/*
 * Serialize a tree as compact JSON.  Unlike cJSON's printer, every number
 * is written with the fewest digits that read back as exactly the same
 * double (cJSON rounds to 15 digits when that is merely close), so what
 * a producer sent reaches consumers unchanged: 9007199254740991 stays
 * 9007199254740991.  Non-finite numbers, which the strict parser never
 * produces, are written as null.  Returns a malloc'd string, its length
 * in *len when len is not NULL.
 */
char	*json_print(const cJSON *item, size_t *len);

#endif
