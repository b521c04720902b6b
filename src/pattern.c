/* EventBridge-style event patterns: compiled into trees, matched in place. */
#include "autoconf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pattern.h"
#include "util.h"

/*
 * Semantics, where EventBridge leaves room or we chose:
 *
 * - Keys are ANDed, the matchers in a list are ORed, "$or" at any level
 *   needs one of its alternatives (each a pattern for that same level).
 * - A field whose value is an array matches a matcher when any element
 *   does; arrays inside arrays are searched too.
 * - A nested pattern applied to an array of objects matches when one
 *   element matches it whole: fields are never combined across elements.
 *   Applied to a missing field or a non-object, it sees no fields at all,
 *   so only exists:false (or an empty pattern) below it can match.
 * - Every matcher but exists looks at leaf values only (string, number,
 *   boolean, null): a field holding an object never matches them.
 * - exists, as in EventBridge, is about leaves: exists:true matches a
 *   leaf value, null included, or an array holding at least one leaf;
 *   exists:false matches everything else: a missing field, an object, an
 *   empty array.  So {"detail": [{"exists": true}]} does not match an
 *   event whose detail is an object.
 * - Literals are typed: "5" never matches 5; numbers compare as doubles,
 *   so 5 matches 5.0.
 * - anything-but matches a present leaf that no listed value matches,
 *   whatever its type ("x" excludes only the string "x", so 5 and null
 *   pass).  Its string forms (prefix, suffix, equals-ignore-case,
 *   wildcard) say something about strings, so they match strings only.
 *   On an array it matches when any element is not excluded.
 * - equals-ignore-case folds ASCII letters only; other bytes must be
 *   equal.  All string comparison is on bytes.
 * - A key repeated in a pattern is ANDed; a key repeated in an event is
 *   seen as its first occurrence, as cJSON looks it up.
 *
 * XXX: numbers are doubles, so integers past 2^53 compare inexactly;
 * EventBridge caps its numbers far below that, we do not check.
 * XXX: a string with an escaped NUL ("a\u0000b") is cut there by cJSON,
 * so it matches as "a"; cJSON keeps no length to do better with.
 */

#define PATTERN_MAX_DEPTH	16
#define PATTERN_MAX_MATCHERS	256

enum mkind {
	M_STRING,
	M_NUMBER,
	M_BOOL,
	M_NULL,
	M_PREFIX,
	M_SUFFIX,
	M_EQUALS_CI,
	M_WILDCARD,
	M_EXISTS,
	M_NUMERIC,
	M_ANYTHING_BUT,
};

/* numeric bounds present and whether they include their value */
#define NUM_LO		0x1
#define NUM_LO_INCL	0x2
#define NUM_HI		0x4
#define NUM_HI_INCL	0x8

struct matcher {
	enum mkind	 kind;
	/*
	 * M_BOOL: the value; M_EXISTS: wanted presence; M_PREFIX, M_SUFFIX:
	 * ignore case; M_NUMERIC: NUM_* bits; M_ANYTHING_BUT: strings only.
	 */
	int		 flag;
	double		 num;		/* M_NUMBER */
	double		 lo, hi;	/* M_NUMERIC */
	char		*str;		/* lower case when case is ignored */
	size_t		 len;
	/* M_WILDCARD: str holds the literal pieces between stars, back to
	 * back; piece i is plen[i] bytes long. */
	size_t		*plen;
	size_t		 npieces;
	struct matcher	*not;		/* M_ANYTHING_BUT: excluded values */
	size_t		 nnot;
};

struct node;

struct field {
	char		*name;
	struct matcher	*m;		/* a list of matchers, or */
	size_t		 nm;
	struct node	*sub;		/* a nested pattern */
};

struct orset {
	struct node	*alt;
	size_t		 nalt;
};

struct node {
	struct field	*f;
	size_t		 nf;
	struct orset	*ors;
	size_t		 nors;
};

struct pattern {
	struct node	 root;
};

struct cstate {
	const cJSON	**bad;
	char		 *err;
	size_t		  errlen;
	size_t		  nmatchers;
};

static int	cerr(struct cstate *, const cJSON *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	compile_node(struct cstate *, struct node *, const cJSON *,
		    int);
static int	match_node(const struct node *, const cJSON *);
static void	free_node(struct node *);

/* Record a compile error; returns -1 so callers can return it. */
static int
cerr(struct cstate *cs, const cJSON *item, const char *fmt, ...)
{
	va_list ap;

	if (cs->bad != NULL)
		*cs->bad = item;
	if (cs->err != NULL && cs->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(cs->err, cs->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
count_matcher(struct cstate *cs, const cJSON *item)
{
	if (++cs->nmatchers > PATTERN_MAX_MATCHERS)
		return cerr(cs, item, "pattern has more than %d matchers",
		    PATTERN_MAX_MATCHERS);
	return 0;
}

static int
fold(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static void
set_string(struct matcher *m, const char *s, int ci)
{
	size_t i;

	m->len = strlen(s);
	m->str = xstrdup(s);
	if (ci)
		for (i = 0; i < m->len; i++)
			m->str[i] = fold((unsigned char)m->str[i]);
}

/*
 * Split a wildcard into the literal pieces around its stars.  Only '*' is
 * special; "\*" is a literal star and "\\" a literal backslash.  Two stars
 * in a row are refused, as EventBridge does: they mean no more than one
 * and usually betray a typo.
 */
static int
compile_wildcard(struct cstate *cs, struct matcher *m, const cJSON *item)
{
	const char *s;
	size_t i, n, piece;
	int star;

	if (!cJSON_IsString(item))
		return cerr(cs, item, "wildcard: expects a string");
	s = item->valuestring;
	m->kind = M_WILDCARD;
	/* every star may end a piece; escaped ones are put right below */
	m->npieces = 1;
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] == '*')
			m->npieces++;
	m->str = xmalloc(strlen(s) + 1);
	m->plen = xcalloc(m->npieces, sizeof(*m->plen));

	n = piece = 0;
	star = 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '\\') {
			if (s[i + 1] != '*' && s[i + 1] != '\\')
				return cerr(cs, item, "wildcard: '\\' must be "
				    "followed by '*' or '\\'");
			m->str[n++] = s[++i];
			m->plen[piece]++;
			star = 0;
		} else if (s[i] == '*') {
			if (star)
				return cerr(cs, item, "wildcard: "
				    "consecutive '*' are not allowed");
			piece++;
			star = 1;
		} else {
			m->str[n++] = s[i];
			m->plen[piece]++;
			star = 0;
		}
	}
	m->str[n] = '\0';
	m->len = n;
	m->npieces = piece + 1;
	return 0;
}

/* The operand of prefix, suffix, equals-ignore-case and wildcard. */
static int
compile_strop(struct cstate *cs, struct matcher *m, int kind,
    const char *op, const cJSON *item)
{
	if (kind == M_WILDCARD)
		return compile_wildcard(cs, m, item);
	if (!cJSON_IsString(item))
		return cerr(cs, item, "%s: expects a string", op);
	m->kind = kind;
	m->flag = kind == M_EQUALS_CI;
	set_string(m, item->valuestring, m->flag);
	return 0;
}

/* prefix and suffix: a string, or {"equals-ignore-case": string}. */
static int
compile_affix(struct cstate *cs, struct matcher *m, enum mkind kind,
    const cJSON *op)
{
	const cJSON *ci = op->child;

	if (cJSON_IsString(op))
		return compile_strop(cs, m, kind, op->string, op);
	if (cJSON_IsObject(op) && ci != NULL && ci->next == NULL &&
	    strcmp(ci->string, "equals-ignore-case") == 0 &&
	    cJSON_IsString(ci)) {
		m->kind = kind;
		m->flag = 1;
		set_string(m, ci->valuestring, 1);
		return 0;
	}
	return cerr(cs, op, "%s: expects a string or "
	    "{\"equals-ignore-case\": string}", op->string);
}

static int
numeric_op(const cJSON *item)
{
	static const char *ops[] = { "<", "<=", "=", ">", ">=" };
	size_t i;

	if (!cJSON_IsString(item))
		return -1;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(item->valuestring, ops[i]) == 0)
			return (int)i;
	return -1;
}

/* Fold one comparison into the range; lower says which end it may set. */
static int
numeric_bound(struct cstate *cs, struct matcher *m, const cJSON *opi,
    int range, int lower)
{
	const cJSON *num = opi->next;
	int op;

	if ((op = numeric_op(opi)) == -1)
		return cerr(cs, opi, "numeric: expects one of "
		    "<, <=, =, >, >=");
	if (!cJSON_IsNumber(num) || !isfinite(num->valuedouble))
		return cerr(cs, num, "numeric: expects a number after \"%s\"",
		    opi->valuestring);
	if (range && lower && op != 3 && op != 4)
		return cerr(cs, opi, "numeric: a range must start with "
		    "> or >=");
	if (range && !lower && op != 0 && op != 1)
		return cerr(cs, opi, "numeric: a range must end with "
		    "< or <=");

	switch (op) {
	case 0:
	case 1:
		m->hi = num->valuedouble;
		m->flag |= NUM_HI | (op == 1 ? NUM_HI_INCL : 0);
		break;
	case 2:
		m->lo = m->hi = num->valuedouble;
		m->flag |= NUM_LO | NUM_LO_INCL | NUM_HI | NUM_HI_INCL;
		break;
	default:
		m->lo = num->valuedouble;
		m->flag |= NUM_LO | (op == 4 ? NUM_LO_INCL : 0);
		break;
	}
	return 0;
}

static int
compile_numeric(struct cstate *cs, struct matcher *m, const cJSON *op)
{
	int n;

	m->kind = M_NUMERIC;
	n = cJSON_IsArray(op) ? cJSON_GetArraySize(op) : -1;
	if (n != 2 && n != 4)
		return cerr(cs, op, "numeric: expects one comparison or a "
		    "range, like [\">\", 0, \"<=\", 5]");
	if (numeric_bound(cs, m, op->child, n == 4, 1) == -1)
		return -1;
	if (n == 2)
		return 0;
	if (numeric_bound(cs, m, op->child->next->next, 1, 0) == -1)
		return -1;
	if (m->lo > m->hi || (m->lo == m->hi &&
	    (m->flag & (NUM_LO_INCL | NUM_HI_INCL)) !=
	    (NUM_LO_INCL | NUM_HI_INCL)))
		return cerr(cs, op->child->next->next->next,
		    "numeric: the range is empty");
	return 0;
}

/* Returns the kind of a string operator's name, or -1. */
static int
strop_kind(const char *op)
{
	if (strcmp(op, "prefix") == 0)
		return M_PREFIX;
	if (strcmp(op, "suffix") == 0)
		return M_SUFFIX;
	if (strcmp(op, "equals-ignore-case") == 0)
		return M_EQUALS_CI;
	if (strcmp(op, "wildcard") == 0)
		return M_WILDCARD;
	return -1;
}

/* anything-but {"prefix" | "suffix" | ...: string or [strings]} */
static int
compile_but_strop(struct cstate *cs, struct matcher *m, const cJSON *op)
{
	const cJSON *inner = op->child, *it;
	size_t i;
	int kind;

	if (inner == NULL)
		return cerr(cs, op, "anything-but: empty operator object");
	if (inner->next != NULL)
		return cerr(cs, inner->next, "anything-but: expects one "
		    "operator, found \"%s\" too", inner->next->string);
	if ((kind = strop_kind(inner->string)) == -1)
		return cerr(cs, inner, "anything-but: \"%s\" is not supported "
		    "here; use prefix, suffix, equals-ignore-case or wildcard",
		    inner->string);

	m->flag = 1;
	if (!cJSON_IsArray(inner)) {
		m->not = xcalloc(1, sizeof(*m->not));
		m->nnot = 1;
		if (count_matcher(cs, inner) == -1)
			return -1;
		return compile_strop(cs, m->not, kind, inner->string, inner);
	}
	if ((m->nnot = cJSON_GetArraySize(inner)) == 0)
		return cerr(cs, inner, "anything-but: %s: empty list",
		    inner->string);
	m->not = xcalloc(m->nnot, sizeof(*m->not));
	i = 0;
	cJSON_ArrayForEach(it, inner) {
		if (count_matcher(cs, it) == -1 ||
		    compile_strop(cs, &m->not[i++], kind, inner->string,
		    it) == -1)
			return -1;
	}
	return 0;
}

static void
set_value(struct matcher *m, const cJSON *v)
{
	if (cJSON_IsString(v)) {
		m->kind = M_STRING;
		set_string(m, v->valuestring, 0);
	} else {
		m->kind = M_NUMBER;
		m->num = v->valuedouble;
	}
}

static int
compile_anything_but(struct cstate *cs, struct matcher *m, const cJSON *op)
{
	const cJSON *it;
	size_t i;

	m->kind = M_ANYTHING_BUT;
	if (cJSON_IsObject(op))
		return compile_but_strop(cs, m, op);
	if (cJSON_IsString(op) || cJSON_IsNumber(op)) {
		m->not = xcalloc(1, sizeof(*m->not));
		m->nnot = 1;
		if (count_matcher(cs, op) == -1)
			return -1;
		set_value(m->not, op);
		return 0;
	}
	if (!cJSON_IsArray(op))
		return cerr(cs, op, "anything-but: expects a string, a "
		    "number, a list of them, or an operator object");
	if ((m->nnot = cJSON_GetArraySize(op)) == 0)
		return cerr(cs, op, "anything-but: empty list");

	m->not = xcalloc(m->nnot, sizeof(*m->not));
	i = 0;
	cJSON_ArrayForEach(it, op) {
		/* EventBridge's rule; a mixed list is most likely a typo */
		if ((!cJSON_IsString(it) && !cJSON_IsNumber(it)) ||
		    cJSON_IsString(it) != cJSON_IsString(op->child))
			return cerr(cs, it, "anything-but: a list must hold "
			    "only strings or only numbers");
		if (count_matcher(cs, it) == -1)
			return -1;
		set_value(&m->not[i++], it);
	}
	return 0;
}

/* An operator object such as {"prefix": "x"}: exactly one operator. */
static int
compile_operator(struct cstate *cs, struct matcher *m, const cJSON *obj)
{
	const cJSON *op = obj->child;
	const char *name;
	int kind;

	if (op == NULL)
		return cerr(cs, obj, "matcher: empty operator object");
	if (op->next != NULL)
		return cerr(cs, op->next, "%s: expects one operator per "
		    "object, found \"%s\" too", op->string, op->next->string);
	name = op->string;

	if (strcmp(name, "prefix") == 0)
		return compile_affix(cs, m, M_PREFIX, op);
	if (strcmp(name, "suffix") == 0)
		return compile_affix(cs, m, M_SUFFIX, op);
	if ((kind = strop_kind(name)) != -1)
		return compile_strop(cs, m, kind, name, op);
	if (strcmp(name, "exists") == 0) {
		if (!cJSON_IsBool(op))
			return cerr(cs, op, "exists: expects true or false");
		m->kind = M_EXISTS;
		m->flag = cJSON_IsTrue(op);
		return 0;
	}
	if (strcmp(name, "numeric") == 0)
		return compile_numeric(cs, m, op);
	if (strcmp(name, "anything-but") == 0)
		return compile_anything_but(cs, m, op);
	if (strcmp(name, "cidr") == 0)
		return cerr(cs, op, "cidr: unsupported operator");
	return cerr(cs, op, "%s: unknown operator", name);
}

static int
compile_matcher(struct cstate *cs, struct matcher *m, const cJSON *item)
{
	if (count_matcher(cs, item) == -1)
		return -1;
	if (cJSON_IsString(item) || cJSON_IsNumber(item)) {
		set_value(m, item);
		return 0;
	}
	if (cJSON_IsBool(item)) {
		m->kind = M_BOOL;
		m->flag = cJSON_IsTrue(item);
		return 0;
	}
	if (cJSON_IsNull(item)) {
		m->kind = M_NULL;
		return 0;
	}
	if (cJSON_IsObject(item))
		return compile_operator(cs, m, item);
	return cerr(cs, item, "matcher: expects a value or an operator "
	    "object, not a list");
}

static int
compile_field(struct cstate *cs, struct field *f, const cJSON *item,
    int depth)
{
	const cJSON *it;
	size_t i;

	f->name = xstrdup(item->string);
	if (cJSON_IsObject(item)) {
		f->sub = xcalloc(1, sizeof(*f->sub));
		return compile_node(cs, f->sub, item, depth + 1);
	}
	if (!cJSON_IsArray(item))
		return cerr(cs, item, "%s: expects a list of matchers or a "
		    "nested pattern object", f->name);
	if ((f->nm = cJSON_GetArraySize(item)) == 0)
		return cerr(cs, item, "%s: empty matcher list", f->name);

	f->m = xcalloc(f->nm, sizeof(*f->m));
	i = 0;
	cJSON_ArrayForEach(it, item) {
		if (compile_matcher(cs, &f->m[i++], it) == -1)
			return -1;
	}
	return 0;
}

static int
compile_or(struct cstate *cs, struct orset *o, const cJSON *item, int depth)
{
	const cJSON *it;
	size_t i;

	if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) < 2)
		return cerr(cs, item, "$or: expects a list of at least two "
		    "patterns");
	o->nalt = cJSON_GetArraySize(item);
	o->alt = xcalloc(o->nalt, sizeof(*o->alt));
	i = 0;
	cJSON_ArrayForEach(it, item) {
		if (!cJSON_IsObject(it))
			return cerr(cs, it, "$or: each alternative must be a "
			    "pattern object");
		/* an alternative counts as a level: it is one more object */
		if (compile_node(cs, &o->alt[i++], it, depth + 1) == -1)
			return -1;
	}
	return 0;
}

/*
 * Arrays are sized up front and zeroed, so whatever an error leaves half
 * built can be freed as it is by the caller.
 */
static int
compile_node(struct cstate *cs, struct node *n, const cJSON *obj, int depth)
{
	const cJSON *it;
	size_t nf, no;

	if (depth > PATTERN_MAX_DEPTH)
		return cerr(cs, obj, "pattern nests deeper than %d levels",
		    PATTERN_MAX_DEPTH);
	nf = no = 0;
	cJSON_ArrayForEach(it, obj) {
		if (strcmp(it->string, "$or") == 0)
			no++;
		else
			nf++;
	}
	if (nf > 0)
		n->f = xcalloc(nf, sizeof(*n->f));
	if (no > 0)
		n->ors = xcalloc(no, sizeof(*n->ors));
	n->nf = nf;
	n->nors = no;

	nf = no = 0;
	cJSON_ArrayForEach(it, obj) {
		if (strcmp(it->string, "$or") == 0) {
			if (compile_or(cs, &n->ors[no++], it, depth) == -1)
				return -1;
		} else if (compile_field(cs, &n->f[nf++], it, depth) == -1)
			return -1;
	}
	return 0;
}

struct pattern *
pattern_compile(const cJSON *json, const cJSON **bad, char *err,
    size_t errlen)
{
	struct cstate cs = { bad, err, errlen, 0 };
	struct pattern *p;

	if (bad != NULL)
		*bad = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (!cJSON_IsObject(json)) {
		cerr(&cs, json, "pattern: expects a JSON object");
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	if (compile_node(&cs, &p->root, json, 1) == -1)
		goto fail;
	return p;

fail:
	pattern_free(p);
	return NULL;
}

/* Matching: no allocation, no cJSON changes. */

static int
eq_ci(const char *s, const char *folded, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (fold((unsigned char)s[i]) != (unsigned char)folded[i])
			return 0;
	return 1;
}

static int
eq_bytes(const char *s, const char *t, size_t len, int ci)
{
	return ci ? eq_ci(s, t, len) : memcmp(s, t, len) == 0;
}

/*
 * Stars only, so the first piece anchors the start, the last the end, and
 * the ones between can each take their leftmost place: a later place
 * never leaves more room for what follows.
 */
static int
match_wildcard(const struct matcher *m, const char *s, size_t slen)
{
	const char *piece = m->str, *at;
	size_t i, first, last, pos, end;

	first = m->plen[0];
	if (m->npieces == 1)
		return slen == first && memcmp(s, piece, slen) == 0;
	last = m->plen[m->npieces - 1];
	if (slen < first + last || memcmp(s, piece, first) != 0 ||
	    memcmp(s + slen - last, m->str + m->len - last, last) != 0)
		return 0;

	pos = first;
	end = slen - last;
	piece += first;
	for (i = 1; i < m->npieces - 1; i++) {
		at = memmem(s + pos, end - pos, piece, m->plen[i]);
		if (at == NULL)
			return 0;
		pos = (size_t)(at - s) + m->plen[i];
		piece += m->plen[i];
	}
	return 1;
}

static int
match_numeric(const struct matcher *m, double d)
{
	if (m->flag & NUM_LO) {
		if (d < m->lo || (d == m->lo && !(m->flag & NUM_LO_INCL)))
			return 0;
	}
	if (m->flag & NUM_HI) {
		if (d > m->hi || (d == m->hi && !(m->flag & NUM_HI_INCL)))
			return 0;
	}
	return 1;
}

/* One matcher against one leaf value (not an array, not an object). */
static int
match_leaf(const struct matcher *m, const cJSON *v)
{
	const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
	size_t i, slen = s != NULL ? strlen(s) : 0;

	switch (m->kind) {
	case M_STRING:
		return s != NULL && slen == m->len &&
		    memcmp(s, m->str, slen) == 0;
	case M_NUMBER:
		return cJSON_IsNumber(v) && v->valuedouble == m->num;
	case M_BOOL:
		return m->flag ? cJSON_IsTrue(v) : cJSON_IsFalse(v);
	case M_NULL:
		return cJSON_IsNull(v);
	case M_PREFIX:
		return s != NULL && slen >= m->len &&
		    eq_bytes(s, m->str, m->len, m->flag);
	case M_SUFFIX:
		return s != NULL && slen >= m->len &&
		    eq_bytes(s + slen - m->len, m->str, m->len, m->flag);
	case M_EQUALS_CI:
		return s != NULL && slen == m->len &&
		    eq_ci(s, m->str, slen);
	case M_WILDCARD:
		return s != NULL && match_wildcard(m, s, slen);
	case M_NUMERIC:
		return cJSON_IsNumber(v) && match_numeric(m, v->valuedouble);
	case M_ANYTHING_BUT:
		if (m->flag && s == NULL)
			return 0;
		for (i = 0; i < m->nnot; i++)
			if (match_leaf(&m->not[i], v))
				return 0;
		return 1;
	case M_EXISTS:
		break;
	}
	return 0;
}

/* Does v hold a leaf value, itself or inside arrays? */
static int
has_leaf(const cJSON *v)
{
	const cJSON *e;

	if (v == NULL || cJSON_IsObject(v))
		return 0;
	if (!cJSON_IsArray(v))
		return 1;
	cJSON_ArrayForEach(e, v) {
		if (has_leaf(e))
			return 1;
	}
	return 0;
}

/* v is the event's field, NULL when it is missing. */
static int
match_value(const struct matcher *m, const cJSON *v)
{
	const cJSON *e;

	if (m->kind == M_EXISTS)
		return has_leaf(v) == m->flag;
	if (v == NULL || cJSON_IsObject(v))
		return 0;
	if (!cJSON_IsArray(v))
		return match_leaf(m, v);
	cJSON_ArrayForEach(e, v) {
		if (match_value(m, e))
			return 1;
	}
	return 0;
}

static int
match_sub(const struct node *n, const cJSON *v)
{
	const cJSON *e;
	int objects = 0;

	if (cJSON_IsObject(v))
		return match_node(n, v);
	if (cJSON_IsArray(v)) {
		cJSON_ArrayForEach(e, v) {
			if (!cJSON_IsObject(e))
				continue;
			if (match_node(n, e))
				return 1;
			objects = 1;
		}
		if (objects)
			return 0;
	}
	return match_node(n, NULL);
}

/* obj is an event object, or NULL for a level the event does not have. */
static int
match_node(const struct node *n, const cJSON *obj)
{
	const struct field *f;
	const cJSON *v;
	size_t i, j;
	int any;

	for (i = 0; i < n->nf; i++) {
		f = &n->f[i];
		v = obj != NULL ?
		    cJSON_GetObjectItemCaseSensitive(obj, f->name) : NULL;
		if (f->sub != NULL) {
			if (!match_sub(f->sub, v))
				return 0;
			continue;
		}
		any = 0;
		for (j = 0; j < f->nm && !any; j++)
			any = match_value(&f->m[j], v);
		if (!any)
			return 0;
	}
	for (i = 0; i < n->nors; i++) {
		any = 0;
		for (j = 0; j < n->ors[i].nalt && !any; j++)
			any = match_node(&n->ors[i].alt[j], obj);
		if (!any)
			return 0;
	}
	return 1;
}

int
pattern_match(const struct pattern *p, const cJSON *event)
{
	if (!cJSON_IsObject(event))
		return 0;
	return match_node(&p->root, event);
}

static void
free_matcher(struct matcher *m)
{
	size_t i;

	free(m->str);
	free(m->plen);
	for (i = 0; i < m->nnot; i++)
		free_matcher(&m->not[i]);
	free(m->not);
}

static void
free_node(struct node *n)
{
	size_t i, j;

	for (i = 0; i < n->nf; i++) {
		free(n->f[i].name);
		for (j = 0; j < n->f[i].nm; j++)
			free_matcher(&n->f[i].m[j]);
		free(n->f[i].m);
		if (n->f[i].sub != NULL) {
			free_node(n->f[i].sub);
			free(n->f[i].sub);
		}
	}
	free(n->f);
	for (i = 0; i < n->nors; i++) {
		for (j = 0; j < n->ors[i].nalt; j++)
			free_node(&n->ors[i].alt[j]);
		free(n->ors[i].alt);
	}
	free(n->ors);
}

void
pattern_free(struct pattern *p)
{
	if (p == NULL)
		return;
	free_node(&p->root);
	free(p);
}
