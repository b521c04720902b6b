/* Strict JSON: a validating scan of untrusted bytes before cJSON sees them. */
#include "autoconf.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "log.h"
#include "util.h"

/*
 * XXX: numbers longer than this are refused although RFC 8259 allows
 * them: cJSON copies a number into a 64-byte buffer before strtod, so it
 * would silently cut a longer one short.
 */
#define NUMBER_MAX	63

/* One key of an object still open, for the duplicate check at its end. */
struct keyref {
	size_t		 off;	/* decoded text at scan.keys + off */
	size_t		 len;
	size_t		 pos;	/* the key's opening quote in the input */
	const char	*text;	/* filled in just before sorting */
};

struct scan {
	const char		*buf;
	size_t			 len;
	size_t			 pos;
	unsigned		 max_depth;
	struct json_error	*err;
	char			*keys;	/* decoded keys of the open objects */
	size_t			 keys_len;
	size_t			 keys_cap;
	struct keyref		*refs;
	size_t			 nrefs;
	size_t			 refs_cap;
};

static int	scan_value(struct scan *, unsigned);

/* Line and column (both from 1) of byte pos; columns count characters. */
static void
where(const char *buf, size_t pos, int *line, int *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < pos; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80)
			(*col)++;
	}
}

static int __attribute__((format(printf, 5, 6)))
fail_at(struct scan *s, size_t pos, const char *code, int status,
    const char *fmt, ...)
{
	struct json_error *err = s->err;
	va_list ap;
	int line, col, n;

	where(s->buf, pos, &line, &col);
	err->code = code;
	err->status = status;
	err->offset = pos;
	n = snprintf(err->message, sizeof(err->message),
	    "line %d, column %d: ", line, col);
	va_start(ap, fmt);
	vsnprintf(err->message + n, sizeof(err->message) - n, fmt, ap);
	va_end(ap);
	return -1;
}

#define fail(s, pos, ...) \
	fail_at((s), (pos), "invalid_json", 400, __VA_ARGS__)

/* Describe the byte at pos for a message: 'x', a hex byte, or the end. */
static const char *
found(struct scan *s, size_t pos, char *buf, size_t len)
{
	unsigned char c;

	if (pos >= s->len)
		return "the end of the input";
	c = (unsigned char)s->buf[pos];
	if (c > 0x20 && c < 0x7f)
		snprintf(buf, len, "'%c'", c);
	else
		snprintf(buf, len, "byte 0x%02x", c);
	return buf;
}

static void
skip_ws(struct scan *s)
{
	char c;

	while (s->pos < s->len) {
		c = s->buf[s->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		s->pos++;
	}
}

static int
hex4(const char *p, unsigned *v)
{
	int i;
	char c;

	*v = 0;
	for (i = 0; i < 4; i++) {
		c = p[i];
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

static void
key_append(struct scan *s, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (s->keys_len + n > s->keys_cap) {
		s->keys_cap = (s->keys_len + n) * 2 + 64;
		s->keys = xrealloc(s->keys, s->keys_cap);
	}
	memcpy(s->keys + s->keys_len, p, n);
	s->keys_len += n;
}

static void
key_append_cp(struct scan *s, unsigned cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	key_append(s, u, n);
}

/* A "\u" escape at s->pos (the backslash), with its low half if it starts
 * a surrogate pair.  Stores the code point and moves past the escape. */
static int
scan_unicode(struct scan *s, unsigned *cp)
{
	size_t at = s->pos;
	unsigned lo;

	if (s->len - at < 6 || hex4(s->buf + at + 2, cp) == -1)
		return fail(s, at, "\\u must be followed by four hex digits");
	s->pos += 6;
	if (*cp == 0)
		return fail(s, at, "\\u0000 is not allowed in strings");
	if (*cp >= 0xdc00 && *cp <= 0xdfff)
		return fail(s, at, "unpaired surrogate \\u%04x", *cp);
	if (*cp < 0xd800 || *cp > 0xdbff)
		return 0;
	if (s->len - s->pos < 6 || s->buf[s->pos] != '\\' ||
	    s->buf[s->pos + 1] != 'u' ||
	    hex4(s->buf + s->pos + 2, &lo) == -1 ||
	    lo < 0xdc00 || lo > 0xdfff)
		return fail(s, at, "unpaired surrogate \\u%04x", *cp);
	s->pos += 6;
	*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

static int
scan_escape(struct scan *s, int is_key)
{
	static const char from[] = "\"\\/bfnrt";
	static const char to[] = "\"\\/\b\f\n\r\t";
	const char *e;
	char what[16];
	unsigned cp;

	if (s->pos + 1 >= s->len)
		return fail(s, s->pos, "unterminated string");
	if (s->buf[s->pos + 1] == 'u') {
		if (scan_unicode(s, &cp) == -1)
			return -1;
		if (is_key)
			key_append_cp(s, cp);
		return 0;
	}
	if (s->buf[s->pos + 1] == '\0' ||
	    (e = strchr(from, s->buf[s->pos + 1])) == NULL)
		return fail(s, s->pos, "invalid escape: backslash before %s",
		    found(s, s->pos + 1, what, sizeof(what)));
	if (is_key)
		key_append(s, &to[e - from], 1);
	s->pos += 2;
	return 0;
}

/* Length of the UTF-8 sequence at s->pos, or 0 if it is not well formed. */
static size_t
utf8_len(struct scan *s)
{
	unsigned char c = (unsigned char)s->buf[s->pos];
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (s->len - s->pos < n || !utf8_valid(s->buf + s->pos, n))
		return 0;
	return n;
}

/*
 * A string starting at s->pos.  Keys are decoded onto s->keys so that
 * "a" and "\u0061" compare equal; other strings are only checked.
 */
static int
scan_string(struct scan *s, int is_key)
{
	size_t start = s->pos, run, n;
	unsigned char c;

	s->pos++;
	for (;;) {
		run = s->pos;
		while (s->pos < s->len) {
			c = (unsigned char)s->buf[s->pos];
			if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
				break;
			s->pos++;
		}
		if (is_key)
			key_append(s, s->buf + run, s->pos - run);
		if (s->pos >= s->len)
			return fail(s, start, "unterminated string");
		c = (unsigned char)s->buf[s->pos];
		if (c == '"')
			break;
		if (c == '\\') {
			if (scan_escape(s, is_key) == -1)
				return -1;
		} else if (c < 0x20)
			return fail(s, s->pos, "control character 0x%02x in "
			    "string (escape it)", c);
		else {
			if ((n = utf8_len(s)) == 0)
				return fail(s, s->pos, "invalid UTF-8");
			if (is_key)
				key_append(s, s->buf + s->pos, n);
			s->pos += n;
		}
	}
	s->pos++;
	return 0;
}

static int
digits(struct scan *s)
{
	size_t start = s->pos;

	while (s->pos < s->len && s->buf[s->pos] >= '0' &&
	    s->buf[s->pos] <= '9')
		s->pos++;
	return s->pos > start ? 0 : -1;
}

static int
scan_number(struct scan *s)
{
	size_t start = s->pos;
	char copy[NUMBER_MAX + 1], what[16];
	int exp = 0;

	if (s->buf[s->pos] == '-')
		s->pos++;
	if (s->pos < s->len && s->buf[s->pos] == '0') {
		s->pos++;
		if (s->pos < s->len && s->buf[s->pos] >= '0' &&
		    s->buf[s->pos] <= '9')
			return fail(s, start, "leading zero in number");
	} else if (digits(s) == -1)
		return fail(s, s->pos, "expected a digit, found %s",
		    found(s, s->pos, what, sizeof(what)));
	if (s->pos < s->len && s->buf[s->pos] == '.') {
		s->pos++;
		if (digits(s) == -1)
			return fail(s, s->pos, "expected a digit after '.', "
			    "found %s", found(s, s->pos, what, sizeof(what)));
	}
	if (s->pos < s->len && (s->buf[s->pos] == 'e' ||
	    s->buf[s->pos] == 'E')) {
		exp = 1;
		s->pos++;
		if (s->pos < s->len && (s->buf[s->pos] == '+' ||
		    s->buf[s->pos] == '-'))
			s->pos++;
		if (digits(s) == -1)
			return fail(s, s->pos, "expected a digit in exponent, "
			    "found %s", found(s, s->pos, what, sizeof(what)));
	}
	if (s->pos - start > NUMBER_MAX)
		return fail(s, start, "number longer than %d characters",
		    NUMBER_MAX);

	/* Only an exponent can take a number this short out of range. */
	if (exp) {
		memcpy(copy, s->buf + start, s->pos - start);
		copy[s->pos - start] = '\0';
		if (isinf(strtod(copy, NULL)))
			return fail(s, start, "number out of range");
	}
	return 0;
}

static int
scan_literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if (s->len - s->pos < n || memcmp(s->buf + s->pos, word, n) != 0)
		return fail(s, s->pos, "invalid literal (expected %s)", word);
	s->pos += n;
	return 0;
}

static int
keycmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c;

	if ((c = memcmp(x->text, y->text, n)) != 0)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Check the keys of the object just closed, refs[first..nrefs), for
 * duplicates.  Sorting costs O(n log n) where pairwise checks would be
 * quadratic in the number of keys.  Reports the duplicate that comes first
 * in the text.
 */
static int
keys_check(struct scan *s, size_t first)
{
	struct keyref *v = s->refs + first, *dup = NULL;
	size_t n = s->nrefs - first, i;
	char shown[48];

	if (n < 2)
		return 0;
	for (i = 0; i < n; i++)
		v[i].text = s->keys + v[i].off;
	qsort(v, n, sizeof(*v), keycmp);
	for (i = 1; i < n; i++) {
		if (v[i].len != v[i - 1].len ||
		    memcmp(v[i].text, v[i - 1].text, v[i].len) != 0)
			continue;
		if (dup == NULL || v[i].pos < dup->pos)
			dup = &v[i];
	}
	if (dup == NULL)
		return 0;
	log_escape(shown, sizeof(shown), dup->text, dup->len);
	return fail(s, dup->pos, "duplicate key \"%s\"", shown);
}

static int
scan_key(struct scan *s)
{
	struct keyref *r;
	char what[16];

	if (s->pos >= s->len || s->buf[s->pos] != '"')
		return fail(s, s->pos, "expected a string key, found %s",
		    found(s, s->pos, what, sizeof(what)));
	if (s->nrefs == s->refs_cap) {
		s->refs_cap = s->refs_cap * 2 + 16;
		s->refs = xrealloc(s->refs, s->refs_cap * sizeof(*s->refs));
	}
	r = &s->refs[s->nrefs++];
	r->off = s->keys_len;
	r->pos = s->pos;
	if (scan_string(s, 1) == -1)
		return -1;
	r->len = s->keys_len - r->off;
	return 0;
}

static int
scan_object(struct scan *s, unsigned depth)
{
	size_t first = s->nrefs, keys_mark = s->keys_len;
	char what[16];

	s->pos++;
	skip_ws(s);
	if (s->pos < s->len && s->buf[s->pos] == '}') {
		s->pos++;
		return 0;
	}
	for (;;) {
		skip_ws(s);
		if (scan_key(s) == -1)
			return -1;
		skip_ws(s);
		if (s->pos >= s->len || s->buf[s->pos] != ':')
			return fail(s, s->pos, "expected ':' after key, "
			    "found %s", found(s, s->pos, what, sizeof(what)));
		s->pos++;
		if (scan_value(s, depth) == -1)
			return -1;
		skip_ws(s);
		if (s->pos < s->len && s->buf[s->pos] == ',') {
			s->pos++;
			continue;
		}
		if (s->pos < s->len && s->buf[s->pos] == '}')
			break;
		return fail(s, s->pos, "expected ',' or '}' in object, "
		    "found %s", found(s, s->pos, what, sizeof(what)));
	}
	s->pos++;
	if (keys_check(s, first) == -1)
		return -1;
	s->nrefs = first;
	s->keys_len = keys_mark;
	return 0;
}

/* An array; at the top level (entry_max != 0) each element is an entry
 * whose text is measured. */
static int
scan_array(struct scan *s, unsigned depth, size_t entry_max)
{
	size_t start, n = 0;
	char what[16];

	s->pos++;
	skip_ws(s);
	if (s->pos < s->len && s->buf[s->pos] == ']') {
		s->pos++;
		return 0;
	}
	for (;;) {
		skip_ws(s);
		start = s->pos;
		n++;
		if (scan_value(s, depth) == -1)
			return -1;
		if (entry_max != 0 && s->pos - start > entry_max)
			return fail_at(s, start, "entry_too_large", 413,
			    "array element %zu is %zu bytes, more than the "
			    "%zu allowed", n, s->pos - start, entry_max);
		skip_ws(s);
		if (s->pos < s->len && s->buf[s->pos] == ',') {
			s->pos++;
			continue;
		}
		if (s->pos < s->len && s->buf[s->pos] == ']')
			break;
		return fail(s, s->pos, "expected ',' or ']' in array, "
		    "found %s", found(s, s->pos, what, sizeof(what)));
	}
	s->pos++;
	return 0;
}

/* Any value after optional white space; depth counts the containers that
 * enclose it. */
static int
scan_value(struct scan *s, unsigned depth)
{
	char what[16], c;

	skip_ws(s);
	if (s->pos >= s->len)
		return fail(s, s->pos, "expected a value, found the end of "
		    "the input");
	c = s->buf[s->pos];
	if ((c == '{' || c == '[') && depth + 1 > s->max_depth)
		return fail(s, s->pos, "nesting deeper than %u levels",
		    s->max_depth);
	switch (c) {
	case '{':
		return scan_object(s, depth + 1);
	case '[':
		return scan_array(s, depth + 1, 0);
	case '"':
		return scan_string(s, 0);
	case 't':
		return scan_literal(s, "true");
	case 'f':
		return scan_literal(s, "false");
	case 'n':
		return scan_literal(s, "null");
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return scan_number(s);
		return fail(s, s->pos, "expected a value, found %s",
		    found(s, s->pos, what, sizeof(what)));
	}
}

/* The whole document: one value, measured as entries, then only space. */
static int
scan_document(struct scan *s, size_t entry_max, size_t *end)
{
	size_t start;
	char what[16];

	skip_ws(s);
	if (s->pos >= s->len)
		return fail(s, s->pos, "empty input");
	start = s->pos;
	if (s->buf[s->pos] == '[' && s->max_depth >= 1) {
		if (scan_array(s, 1, entry_max ? entry_max : SIZE_MAX) == -1)
			return -1;
	} else {
		if (scan_value(s, 0) == -1)
			return -1;
		if (entry_max != 0 && s->pos - start > entry_max)
			return fail_at(s, start, "entry_too_large", 413,
			    "entry is %zu bytes, more than the %zu allowed",
			    s->pos - start, entry_max);
	}
	*end = s->pos;
	skip_ws(s);
	if (s->pos < s->len)
		return fail(s, s->pos, "unexpected %s after the value",
		    found(s, s->pos, what, sizeof(what)));
	return 0;
}

cJSON *
json_parse_strict(const char *buf, size_t len, unsigned max_depth,
    size_t entry_max, struct json_error *err)
{
	struct scan s;
	const char *end = NULL;
	cJSON *root = NULL;
	size_t value_end = 0;

	memset(&s, 0, sizeof(s));
	s.buf = buf;
	s.len = len;
	s.err = err;
	/* cJSON refuses deeper documents on its own; agree with it. */
	s.max_depth = max_depth < CJSON_NESTING_LIMIT ? max_depth :
	    CJSON_NESTING_LIMIT;
	if (scan_document(&s, entry_max, &value_end) == -1)
		goto fail;

	/* The scan accepts only what cJSON reads the same way, so cJSON must
	 * stop exactly where the scan did. */
	root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (root == NULL || end != buf + value_end) {
		fail(&s, end != NULL && end > buf ? (size_t)(end - buf) : 0,
		    "document refused by the JSON parser");
		goto fail;
	}
	free(s.keys);
	free(s.refs);
	return root;

fail:
	cJSON_Delete(root);
	free(s.keys);
	free(s.refs);
	return NULL;
}

/* The printer: compact JSON with exact numbers. */

struct jbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static void
jb_put(struct jbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap *= 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
print_string(struct jbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;
	char esc[7];
	unsigned char c;

	jb_put(b, "\"", 1);
	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		jb_put(b, run, (size_t)(s - run));
		run = s + 1;
		switch (c) {
		case '"':	jb_put(b, "\\\"", 2); break;
		case '\\':	jb_put(b, "\\\\", 2); break;
		case '\b':	jb_put(b, "\\b", 2); break;
		case '\f':	jb_put(b, "\\f", 2); break;
		case '\n':	jb_put(b, "\\n", 2); break;
		case '\r':	jb_put(b, "\\r", 2); break;
		case '\t':	jb_put(b, "\\t", 2); break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			jb_put(b, esc, 6);
		}
	}
	jb_put(b, run, (size_t)(s - run));
	jb_put(b, "\"", 1);
}

static void
print_number(struct jbuf *b, double d)
{
	char buf[32], *p;
	int prec;

	if (!isfinite(d)) {
		jb_put(b, "null", 4);
		return;
	}
	/* Integers that doubles hold exactly print as integers. */
	if (d > -9007199254740992.0 && d < 9007199254740992.0 &&
	    (double)(int64_t)d == d) {
		p = buf;
		if (d < 0)
			*p++ = '-';
		p = fmt_uint(p, (uint64_t)(d < 0 ? -d : d), 1);
		jb_put(b, buf, (size_t)(p - buf));
		return;
	}
	for (prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	jb_put(b, buf, strlen(buf));
}

static void
print_item(struct jbuf *b, const cJSON *item)
{
	const cJSON *child;
	int first = 1;

	switch (item->type & 0xff) {
	case cJSON_False:
		jb_put(b, "false", 5);
		break;
	case cJSON_True:
		jb_put(b, "true", 4);
		break;
	case cJSON_NULL:
		jb_put(b, "null", 4);
		break;
	case cJSON_Number:
		print_number(b, item->valuedouble);
		break;
	case cJSON_String:
		print_string(b, item->valuestring != NULL ?
		    item->valuestring : "");
		break;
	case cJSON_Raw:
		if (item->valuestring != NULL)
			jb_put(b, item->valuestring,
			    strlen(item->valuestring));
		break;
	case cJSON_Array:
	case cJSON_Object:
		jb_put(b, cJSON_IsArray(item) ? "[" : "{", 1);
		for (child = item->child; child != NULL; child = child->next) {
			if (!first)
				jb_put(b, ",", 1);
			first = 0;
			if (cJSON_IsObject(item)) {
				print_string(b, child->string != NULL ?
				    child->string : "");
				jb_put(b, ":", 1);
			}
			print_item(b, child);
		}
		jb_put(b, cJSON_IsArray(item) ? "]" : "}", 1);
		break;
	default:
		fatalx("json_print: item of unknown type %d", item->type);
	}
}

char *
json_print(const cJSON *item, size_t *len)
{
	struct jbuf b = { xmalloc(1024), 0, 1024 };	/* an envelope fits */

	b.p[0] = '\0';
	print_item(&b, item);
	if (len != NULL)
		*len = b.len;
	return b.p;
}

int
json_is_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		s += strspn(s, "0123456789");
	else
		return 0;
	if (*s == '.') {
		if (strspn(++s, "0123456789") == 0)
			return 0;
		s += strspn(s, "0123456789");
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (strspn(s, "0123456789") == 0)
			return 0;
		s += strspn(s, "0123456789");
	}
	return *s == '\0';
}

int
json_int(const cJSON *v, int64_t *out)
{
	double d;

	if (!cJSON_IsNumber(v))
		return -1;
	/* The range test is false for NaN too; within range the cast is
	 * defined, and it is exact only for integers. */
	d = v->valuedouble;
	if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) ||
	    (double)(int64_t)d != d)
		return -1;
	*out = (int64_t)d;
	return 0;
}
