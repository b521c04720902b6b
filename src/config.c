/* ctr.conf: YAML read into a node tree with positions, then checked
 * against one option table into an immutable struct config. */
#include "autoconf.h"

#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>
#include <yaml.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "pattern.h"
#include "util.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR	"/var"
#endif

#define CONF_SIZE_MAX	(4 * 1024 * 1024)	/* far above any real file */
#define TREE_DEPTH_MAX	64	/* bounds every recursion below */
#define ERRORS_MAX	100	/* past this, more lines help no one */
#define PATH_TEXT_MAX	512
#define NAME_LEN_MAX	64
#define WHSEC_PREFIX	"whsec_"
#define WHSEC_MIN	24
#define WHSEC_MAX	64

/* The YAML document as a tree; every node remembers where it started. */
enum ntype {
	N_SCALAR,
	N_SEQ,
	N_MAP,
	N_BAD,		/* an alias: already reported, skipped by checks */
};

struct node {
	enum ntype	 type;
	int		 line;		/* from 1 */
	int		 col;		/* from 1 */
	char		*str;		/* scalars and keys */
	size_t		 len;
	int		 plain;		/* unquoted scalar: may be typed */
	struct node	**kids;		/* maps: key, value, key, value... */
	size_t		 nkids;
	size_t		 kcap;
	struct node	*parent;
	struct node	*key;		/* map values: their key */
	size_t		 index;		/* sequence items: position */
	int		 iskey;
	int		 ignored;	/* key reported bad: skip the pair */
};

/* What a table entry holds; the setter for each is in opt_set. */
enum otype {
	OT_UINT,	/* unsigned, min..max */
	OT_SIZE,	/* size_t, min..max */
	OT_STRING,	/* text of min..max characters */
	OT_DIGITS,	/* decimal digits, min..max of them */
	OT_PATH,	/* relative to the config file's directory */
	OT_LISTEN,
	OT_SECRET_FILE,
	OT_NAME,
	OT_KIND,
	OT_URL,
	OT_HEADERS,
	OT_WHSEC,
	OT_PATTERN,
	OT_KEY_HASH,
	OT_GLOBS,
	OT_PRODUCERS,
	OT_CONSUMERS,
	OT_STREAM,
	OT_ACCESS,
	OT_TOKENS,
	OT_TOKEN_HASH,
	OT_ORIGINS,
};

#define OPT_REQUIRED	0x1
#define OPT_DISCORD	0x2	/* only for kind: discord */
#define OPT_WEBHOOK	0x4	/* only for kind: webhook */

/*
 * One row per option.  man/ctr.conf.5 lists the same rows with the same
 * ranges and defaults; change both together.
 */
struct opt {
	const char	*name;
	enum otype	 type;
	long long	 min;
	long long	 max;
	long long	 def;		/* numbers and kinds */
	const char	*def_str;	/* text options; NULL: none */
	size_t		 off;		/* field in the struct filled */
	size_t		 off_n;		/* its count, for lists */
	unsigned	 flags;
	const char	*help;
};

/* Numbers each configuration loaded, so that users of one can tell a
 * new one from an old one at a reused address. */
static uint64_t		generations;

#define CF(f)	offsetof(struct config, f)
#define PF(f)	offsetof(struct producer_conf, f)
#define KF(f)	offsetof(struct consumer_conf, f)
#define SF(f)	offsetof(struct stream_conf, f)
#define TF(f)	offsetof(struct stream_token, f)

static const struct opt token_opts[] = {
	{ .name = "name", .type = OT_NAME, .off = TF(name),
	  .flags = OPT_REQUIRED, .help = "unique name, used in logs" },
	{ .name = "token_hash", .type = OT_TOKEN_HASH, .flags = OPT_REQUIRED,
	  .help = "keyed BLAKE2b-256 of the token in hex, like key_hash" },
	{ .name = "producers", .type = OT_GLOBS, .off = TF(producers),
	  .off_n = TF(nproducers),
	  .help = "globs of the producers it may watch; none: any" },
};

static const struct opt stream_opts[] = {
	{ .name = "access", .type = OT_ACCESS, .def = STREAM_PUBLIC,
	  .off = SF(access), .help = "public, or token: one of tokens" },
	{ .name = "tokens", .type = OT_TOKENS,
	  .help = "who may subscribe with access: token" },
	{ .name = "cors_origins", .type = OT_ORIGINS,
	  .help = "origins whose pages may read the stream, or \"*\"" },
	{ .name = "ring_events", .type = OT_UINT, .min = 0, .max = 100000,
	  .def = 1000, .off = SF(ring_events),
	  .help = "recent events kept for subscribers that resume" },
	{ .name = "ring_age_s", .type = OT_UINT, .min = 1, .max = 604800,
	  .def = 3600, .off = SF(ring_age_s),
	  .help = "and kept no longer than this many seconds" },
	{ .name = "keepalive_s", .type = OT_UINT, .min = 1, .max = 3600,
	  .def = 15, .off = SF(keepalive_s),
	  .help = "seconds of silence before a keep-alive comment" },
	{ .name = "retry_ms", .type = OT_UINT, .min = 100, .max = 3600000,
	  .def = 3000, .off = SF(retry_ms),
	  .help = "how soon a browser reconnects, sent as retry:" },
	{ .name = "max_subscribers", .type = OT_UINT, .min = 0,
	  .max = 100000, .def = 512, .off = SF(max_subscribers),
	  .help = "open streams, all clients together; 0: none" },
	{ .name = "max_subscribers_per_ip", .type = OT_UINT, .min = 0,
	  .max = 100000, .def = 8, .off = SF(max_subscribers_per_ip),
	  .help = "open streams from one address; 0: no limit" },
	{ .name = "backlog_max", .type = OT_SIZE, .min = 1024,
	  .max = 67108864, .def = 262144, .off = SF(backlog_max),
	  .help = "unsent bytes before a slow subscriber is dropped" },
};

static const struct opt top_opts[] = {
	{ .name = "listen", .type = OT_LISTEN, .def_str = "127.0.0.1:8080",
	  .help = "numeric address and port for producers; port 0 picks one" },
	{ .name = "secret_file", .type = OT_SECRET_FILE,
	  .off = CF(secret_file), .flags = OPT_REQUIRED,
	  .help = "file of exactly 32 random bytes, mode 0600 or stricter" },
	{ .name = "dead_letter_file", .type = OT_PATH,
	  .def_str = LOCALSTATEDIR "/lib/ctrd/dead-letter.jsonl",
	  .off = CF(dead_letter_file),
	  .help = "where undelivered events are appended, a JSON line each" },
	{ .name = "body_max", .type = OT_SIZE, .min = 1024, .max = 16777216,
	  .def = 262144, .off = CF(body_max),
	  .help = "largest request body accepted, in bytes" },
	{ .name = "entry_max", .type = OT_SIZE, .min = 256, .max = 16777216,
	  .def = 65536, .off = CF(entry_max),
	  .help = "largest single event of a batch, in bytes; <= body_max" },
	{ .name = "json_depth_max", .type = OT_UINT, .min = 2, .max = 128,
	  .def = 32, .off = CF(json_depth_max),
	  .help = "deepest nesting accepted in a request body" },
	{ .name = "queue_max", .type = OT_UINT, .min = 1, .max = 10000000,
	  .def = 65536, .off = CF(queue_max),
	  .help = "deliveries waiting across all consumers" },
	{ .name = "overload_busy_pct", .type = OT_UINT, .min = 0,
	  .max = 100, .def = 95, .off = CF(overload_busy_pct),
	  .help = "refuse events while the loop is this busy, in percent, "
	  "and deliveries queue up; 100: never" },
	{ .name = "max_connections", .type = OT_UINT, .min = 1,
	  .max = 100000, .def = 1024, .off = CF(max_connections),
	  .help = "open HTTP connections, all clients together" },
	{ .name = "max_connections_per_ip", .type = OT_UINT, .min = 0,
	  .max = 100000, .def = 64, .off = CF(max_connections_per_ip),
	  .help = "open HTTP connections from one address; 0: no limit" },
	{ .name = "connection_timeout_s", .type = OT_UINT, .min = 1,
	  .max = 3600, .def = 30, .off = CF(connection_timeout_s),
	  .help = "seconds an idle HTTP connection is kept" },
	{ .name = "drain_ms", .type = OT_UINT, .min = 0, .max = 600000,
	  .def = 5000, .off = CF(drain_ms),
	  .help = "longest wait for deliveries in flight on SIGTERM" },
	{ .name = "producers", .type = OT_PRODUCERS,
	  .help = "who may post events: a list of producer mappings" },
	{ .name = "consumers", .type = OT_CONSUMERS,
	  .help = "where events go: a list of consumer mappings" },
	/* after producers: token hashes are checked against theirs */
	{ .name = "stream", .type = OT_STREAM,
	  .help = "the live event stream for browsers and apps" },
};

static const struct opt producer_opts[] = {
	{ .name = "name", .type = OT_NAME, .off = PF(name),
	  .flags = OPT_REQUIRED,
	  .help = "unique name, stamped on each envelope as producer" },
	{ .name = "key_hash", .type = OT_KEY_HASH, .min = 1,
	  .max = PRODUCER_KEYS_MAX, .flags = OPT_REQUIRED,
	  .help = "keyed BLAKE2b-256 of the API key in hex, or a list" },
	{ .name = "sources", .type = OT_GLOBS, .off = PF(sources),
	  .off_n = PF(nsources),
	  .help = "globs the event source must match; none: any" },
	{ .name = "types", .type = OT_GLOBS, .off = PF(types),
	  .off_n = PF(ntypes),
	  .help = "globs the event type must match; none: any" },
	{ .name = "rate_limit", .type = OT_UINT, .min = 0, .max = 1000000,
	  .def = 0, .off = PF(rate_limit),
	  .help = "events a second this producer may send; 0: no limit" },
	{ .name = "rate_burst", .type = OT_UINT, .min = 0, .max = 1000000,
	  .def = 0, .off = PF(rate_burst),
	  .help = "events it may send at once; 0: twice rate_limit" },
};

static const struct opt consumer_opts[] = {
	{ .name = "name", .type = OT_NAME, .off = KF(name),
	  .flags = OPT_REQUIRED,
	  .help = "unique name, used in logs and metrics" },
	{ .name = "kind", .type = OT_KIND, .def = CONSUMER_WEBHOOK,
	  .off = KF(kind), .help = "webhook or discord" },
	{ .name = "url", .type = OT_URL, .off = KF(url),
	  .flags = OPT_REQUIRED, .help = "http:// or https:// endpoint" },
	{ .name = "headers", .type = OT_HEADERS,
	  .help = "extra request headers: a mapping of name to value" },
	{ .name = "secret", .type = OT_WHSEC,
	  .help = "whsec_ and base64 of 24 to 64 bytes: sign deliveries" },
	{ .name = "budget_ms", .type = OT_UINT, .min = 1, .max = 60000,
	  .def = 2000, .off = KF(budget_ms),
	  .help = "time from receipt within which delivery must land" },
	{ .name = "max_in_flight", .type = OT_UINT, .min = 1, .max = 1024,
	  .def = 16, .off = KF(max_in_flight),
	  .help = "concurrent requests to this consumer" },
	{ .name = "queue_max", .type = OT_UINT, .min = 1, .max = 1000000,
	  .def = 4096, .off = KF(queue_max),
	  .help = "deliveries waiting for this consumer" },
	{ .name = "circuit_breaker", .type = OT_UINT, .min = 0, .max = 1000,
	  .def = 5, .off = KF(circuit_breaker), .flags = OPT_WEBHOOK,
	  .help = "failed deliveries in a row that stop deliveries for a "
	  "while; 0: never" },
	{ .name = "pattern", .type = OT_PATTERN,
	  .help = "event pattern; without one every event is delivered" },
	{ .name = "types", .type = OT_GLOBS, .off = KF(types),
	  .off_n = KF(ntypes),
	  .help = "globs of the event types to deliver; none: every type" },
	{ .name = "username", .type = OT_STRING, .min = 1, .max = 80,
	  .off = KF(username), .flags = OPT_DISCORD,
	  .help = "name the Discord message is posted under" },
	{ .name = "avatar_url", .type = OT_URL, .off = KF(avatar_url),
	  .flags = OPT_DISCORD, .help = "picture shown with the message" },
	{ .name = "thread_id", .type = OT_DIGITS, .min = 1, .max = 20,
	  .off = KF(thread_id), .flags = OPT_DISCORD,
	  .help = "post into this thread of the channel" },
};

#define NOPTS(t)	(sizeof(t) / sizeof((t)[0]))
#define OPTS_MAX	16	/* rows in the longest table */

_Static_assert(NOPTS(top_opts) <= OPTS_MAX &&
    NOPTS(producer_opts) <= OPTS_MAX && NOPTS(consumer_opts) <= OPTS_MAX &&
    NOPTS(stream_opts) <= OPTS_MAX && NOPTS(token_opts) <= OPTS_MAX,
    "raise OPTS_MAX");

/* Where each cJSON item of a pattern came from, to place its errors. */
struct origin {
	const cJSON		*item;
	const struct node	*node;
};

struct cparse {
	const char		*file;		/* as given: for messages */
	char			*dir;		/* relative paths start here */
	struct config_errors	*errs;
	size_t			 first;		/* our first error in errs */
	size_t			 dropped;	/* past ERRORS_MAX */
	struct config		*cfg;
	size_t			 cur;		/* producer being read */
	size_t			 cur_token;	/* stream token being read */
	struct origin		*orig;
	size_t			 norig;
	size_t			 origcap;
};

static void	add_error(struct cparse *, int, int, const char *,
		    const char *, va_list)
		    __attribute__((format(printf, 5, 0)));
static void	nerr(struct cparse *, const struct node *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	perr(struct cparse *, int, int, const char *, const char *,
		    ...)
		    __attribute__((format(printf, 5, 6)));
static void	opt_set(struct cparse *, const struct opt *, void *,
		    const struct node *);

/* Errors */

static void
add_error(struct cparse *cp, int line, int col, const char *key,
    const char *fmt, va_list ap)
{
	struct config_errors *errs = cp->errs;
	struct config_error *e;
	char problem[512];

	if (errs->n - cp->first >= ERRORS_MAX) {
		cp->dropped++;
		return;
	}
	vsnprintf(problem, sizeof(problem), fmt, ap);
	errs->v = xrealloc(errs->v, (errs->n + 1) * sizeof(*errs->v));
	e = &errs->v[errs->n++];
	e->file = xstrdup(cp->file);
	e->line = line;
	e->col = col;
	if (key == NULL)
		e->msg = xstrdup(problem);
	else {
		e->msg = xmalloc(strlen(key) + 2 + strlen(problem) + 1);
		sprintf(e->msg, "%s: %s", key, problem);
	}
}

/* An error about the file as a whole: line and col are 0. */
static void __attribute__((format(printf, 2, 3)))
ferr(struct cparse *cp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_error(cp, 0, 0, NULL, fmt, ap);
	va_end(ap);
}

/* An error at a position, under a key path given as text. */
static void
perr(struct cparse *cp, int line, int col, const char *key,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_error(cp, line, col, key[0] != '\0' ? key : "top level", fmt,
	    ap);
	va_end(ap);
}

/*
 * The key path of a node, "consumers[1].budget_ms".  Key text comes from
 * the file, so it is escaped like any other untrusted text in a log line.
 */
static void
node_path(const struct node *n, char *buf, size_t len)
{
	const struct node *p = n->parent, *k;
	char esc[128];
	size_t used;

	buf[0] = '\0';
	if (p == NULL)
		return;
	node_path(p, buf, len);
	used = strlen(buf);
	if (p->type == N_SEQ)
		snprintf(buf + used, len - used, "[%zu]", n->index);
	else {
		k = n->iskey ? n : n->key;
		log_escape(esc, sizeof(esc), k->str, k->len);
		snprintf(buf + used, len - used, "%s%s", used ? "." : "",
		    esc);
	}
}

/* An error at a node, under the node's own key path. */
static void
nerr(struct cparse *cp, const struct node *n, const char *fmt, ...)
{
	char path[PATH_TEXT_MAX];
	va_list ap;

	node_path(n, path, sizeof(path));
	va_start(ap, fmt);
	add_error(cp, n->line, n->col, path[0] != '\0' ? path : "top level",
	    fmt, ap);
	va_end(ap);
}

static int
error_cmp(const struct config_error *a, const struct config_error *b)
{
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

/*
 * Checks run option by option, not line by line; put the report back in
 * file order.  Insertion sort: stable, and there are at most ERRORS_MAX.
 */
static void
errors_sort(struct cparse *cp)
{
	struct config_error *v = cp->errs->v, t;
	size_t i, j;

	for (i = cp->first + 1; i < cp->errs->n; i++) {
		t = v[i];
		for (j = i; j > cp->first && error_cmp(&v[j - 1], &t) > 0; j--)
			v[j] = v[j - 1];
		v[j] = t;
	}
	if (cp->dropped > 0) {
		cp->first = cp->errs->n;	/* let the summary in */
		ferr(cp, "%zu more errors not shown", cp->dropped);
	}
}

/* The tree */

static struct node *
node_new(enum ntype type, const yaml_mark_t *mark)
{
	struct node *n;

	n = xcalloc(1, sizeof(*n));
	n->type = type;
	/* yaml_mark_t counts from 0; people count from 1 */
	n->line = mark->line >= INT_MAX ? INT_MAX : (int)mark->line + 1;
	n->col = mark->column >= INT_MAX ? INT_MAX : (int)mark->column + 1;
	return n;
}

static void
node_free(struct node *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	/* scalars may be secrets: leave no copy in freed memory */
	if (n->str != NULL) {
		sodium_memzero(n->str, n->len);
		free(n->str);
	}
	free(n);
}

static int
node_is_null(const struct node *n)
{
	static const char *nulls[] = { "", "~", "null", "Null", "NULL" };
	size_t i;

	if (n->type != N_SCALAR || !n->plain)
		return 0;
	for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(n->str, nulls[i]) == 0 &&
		    strlen(nulls[i]) == n->len)
			return 1;
	return 0;
}

/* Append n under p (or make it the root), checking keys as they come. */
static void
node_attach(struct cparse *cp, struct node **root, struct node *p,
    struct node *n)
{
	struct node *k;
	char path[PATH_TEXT_MAX];
	size_t i;

	if (p == NULL) {
		*root = n;
		return;
	}
	if (p->nkids == p->kcap) {
		p->kcap = p->kcap ? p->kcap * 2 : 8;
		p->kids = xrealloc(p->kids, p->kcap * sizeof(*p->kids));
	}
	n->parent = p;
	if (p->type == N_SEQ)
		n->index = p->nkids;
	else if (p->nkids % 2 == 1)
		n->key = p->kids[p->nkids - 1];
	else {
		n->iskey = 1;
		if (n->type != N_SCALAR) {
			/* paths need key text; this one will never be used */
			n->str = xstrdup("?");
			n->len = 1;
			n->ignored = 1;
			if (n->type != N_BAD) {
				node_path(p, path, sizeof(path));
				perr(cp, n->line, n->col, path,
				    "mapping keys must be scalars");
			}
		} else {
			for (i = 0; i < p->nkids; i += 2) {
				k = p->kids[i];
				if (k->ignored || k->len != n->len ||
				    memcmp(k->str, n->str, n->len) != 0)
					continue;
				n->ignored = 1;
				p->kids[p->nkids++] = n;
				nerr(cp, n, "duplicate key (first at %d:%d)",
				    k->line, k->col);
				return;
			}
		}
	}
	p->kids[p->nkids++] = n;
}

/* Refuse what would make the tree a graph or change how text is typed. */
static void
node_check_props(struct cparse *cp, const struct node *n,
    const yaml_char_t *anchor, const yaml_char_t *tag)
{
	if (anchor != NULL)
		nerr(cp, n, "YAML anchors are not supported");
	if (tag != NULL)
		nerr(cp, n, "YAML tags are not supported");
}

/* Map a byte offset to line and column for the reader's errors. */
static void
offset_pos(const char *buf, size_t len, size_t off, int *line, int *col)
{
	size_t i;

	*line = *col = 1;
	for (i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80)
			(*col)++;
	}
}

static void
syntax_error(struct cparse *cp, const yaml_parser_t *yp, const char *buf,
    size_t len)
{
	int line, col;

	if (yp->error == YAML_MEMORY_ERROR)
		fatalx("%s: out of memory parsing YAML", cp->file);
	if (yp->error == YAML_READER_ERROR) {
		/* the reader knows only a byte offset */
		offset_pos(buf, len, yp->problem_offset, &line, &col);
		perr(cp, line, col, "yaml", "%s", yp->problem ? yp->problem :
		    "cannot read the input");
		return;
	}
	line = (int)yp->problem_mark.line + 1;
	col = (int)yp->problem_mark.column + 1;
	if (yp->context != NULL)
		perr(cp, line, col, "yaml", "%s (%s at %d:%d)",
		    yp->problem ? yp->problem : "syntax error", yp->context,
		    (int)yp->context_mark.line + 1,
		    (int)yp->context_mark.column + 1);
	else
		perr(cp, line, col, "yaml", "%s",
		    yp->problem ? yp->problem : "syntax error");
}

/*
 * The node for an event that makes one (alias, scalar, start of a list
 * or mapping), attached under top; NULL for any other event.
 */
static struct node *
event_node(struct cparse *cp, struct node **root, struct node *top,
    const yaml_event_t *ev)
{
	struct node *n;

	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		n = node_new(N_BAD, &ev->start_mark);
		node_attach(cp, root, top, n);
		nerr(cp, n, "YAML aliases are not supported");
		return n;
	case YAML_SCALAR_EVENT:
		n = node_new(N_SCALAR, &ev->start_mark);
		n->str = xstrndup((char *)ev->data.scalar.value,
		    ev->data.scalar.length);
		n->len = ev->data.scalar.length;
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		node_attach(cp, root, top, n);
		node_check_props(cp, n, ev->data.scalar.anchor,
		    ev->data.scalar.tag);
		return n;
	case YAML_SEQUENCE_START_EVENT:
		n = node_new(N_SEQ, &ev->start_mark);
		node_attach(cp, root, top, n);
		node_check_props(cp, n, ev->data.sequence_start.anchor,
		    ev->data.sequence_start.tag);
		return n;
	case YAML_MAPPING_START_EVENT:
		n = node_new(N_MAP, &ev->start_mark);
		node_attach(cp, root, top, n);
		node_check_props(cp, n, ev->data.mapping_start.anchor,
		    ev->data.mapping_start.tag);
		return n;
	default:
		return NULL;
	}
}

/*
 * Build the tree from libyaml's events.  Returns 0 with *root set (NULL
 * for an empty stream), or -1 when the YAML itself is broken or too deep;
 * problems inside a good document are reported and building goes on.
 */
static int
tree_build(struct cparse *cp, const char *buf, size_t len,
    struct node **root)
{
	yaml_parser_t yp;
	yaml_event_t ev;
	struct node *stack[TREE_DEPTH_MAX], *n;
	size_t depth = 0;
	int docs = 0, rc = -1;

	/*
	 * XXX: libyaml frees its token buffers without wiping them, so copies
	 * of consumer secrets may stay in freed heap; its allocator cannot
	 * be replaced, and a wrapper around free() would be a hack.
	 */
	*root = NULL;
	if (!yaml_parser_initialize(&yp))
		fatalx("yaml_parser_initialize failed");
	yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
	for (;;) {
		if (!yaml_parser_parse(&yp, &ev)) {
			syntax_error(cp, &yp, buf, len);
			goto fail;
		}
		if (ev.type == YAML_STREAM_END_EVENT)
			break;
		if (ev.type == YAML_DOCUMENT_START_EVENT && docs++ > 0) {
			perr(cp, (int)ev.start_mark.line + 1,
			    (int)ev.start_mark.column + 1, "yaml",
			    "only one document is allowed");
			goto fail;
		}
		if (ev.type == YAML_SEQUENCE_END_EVENT ||
		    ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		n = event_node(cp, root, depth > 0 ? stack[depth - 1] : NULL,
		    &ev);
		if (n != NULL && (n->type == N_SEQ || n->type == N_MAP)) {
			if (depth == TREE_DEPTH_MAX) {
				nerr(cp, n, "nested deeper than %d levels",
				    TREE_DEPTH_MAX);
				goto fail;
			}
			stack[depth++] = n;
		}
		yaml_event_delete(&ev);
	}
	rc = 0;
 fail:
	/* deleting an event twice, or one never filled, is harmless */
	yaml_event_delete(&ev);
	yaml_parser_delete(&yp);
	if (rc == -1) {
		node_free(*root);
		*root = NULL;
	}
	return rc;
}

/* Scalars */

/* Text of a scalar meant as a string, or NULL after saying why not. */
static const char *
want_string(struct cparse *cp, const struct node *n)
{
	size_t i;

	if (n->type == N_BAD)
		return NULL;
	if (n->type != N_SCALAR) {
		nerr(cp, n, "must be a string");
		return NULL;
	}
	if (n->len == 0 || node_is_null(n)) {
		nerr(cp, n, "must not be empty");
		return NULL;
	}
	for (i = 0; i < n->len; i++)
		if ((unsigned char)n->str[i] < 0x20 || n->str[i] == 0x7f) {
			nerr(cp, n, "must not contain control characters");
			return NULL;
		}
	return n->str;
}

/*
 * A plain scalar in decimal, optionally negative: 0, or -1 if it is not
 * an integer at all; *v is clamped to LLONG_MIN..LLONG_MAX, which every
 * range check then refuses.
 */
static int
integer_parse(const struct node *n, long long *v)
{
	const char *digits;

	if (n->type != N_SCALAR || !n->plain)
		return -1;
	digits = n->str + (n->str[0] == '-');
	if (digits[0] == '\0' ||
	    strspn(digits, "0123456789") != n->len - (digits - n->str))
		return -1;
	*v = strtoll(n->str, NULL, 10);
	return 0;
}

static int
want_integer(struct cparse *cp, const struct node *n, long long min,
    long long max, long long *out)
{
	long long v;

	if (n->type == N_BAD)
		return -1;
	if (integer_parse(n, &v) == -1) {
		nerr(cp, n, "must be an integer");
		return -1;
	}
	if (v < min || v > max) {
		nerr(cp, n, "must be between %lld and %lld", min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/*
 * Split "a.b.c.d:port" or "[v6]:port", numeric addresses only.  Returns 0
 * with *host (owned by the caller) and *port set, or -1.
 */
static int
listen_parse(const char *s, char **host, unsigned *port)
{
	const char *h, *hend, *ps;
	unsigned char addr[16];
	char *tmp;
	long v;
	int af;

	if (s[0] == '[') {
		h = s + 1;
		if ((hend = strchr(h, ']')) == NULL || hend[1] != ':')
			return -1;
		ps = hend + 2;
		af = AF_INET6;
	} else {
		h = s;
		if ((hend = strchr(h, ':')) == NULL ||
		    strchr(hend + 1, ':') != NULL)
			return -1;
		ps = hend + 1;
		af = AF_INET;
	}
	if (ps[0] == '\0' || strlen(ps) > 5 ||
	    strspn(ps, "0123456789") != strlen(ps))
		return -1;
	if ((v = strtol(ps, NULL, 10)) > 65535)
		return -1;
	tmp = xstrndup(h, hend - h);
	if (inet_pton(af, tmp, addr) != 1) {
		free(tmp);
		return -1;
	}
	*host = tmp;
	*port = (unsigned)v;
	return 0;
}

/*
 * Returns NULL if u is an acceptable http(s) URL, else what is wrong with
 * it.  The URL itself is never quoted back: it may carry a token.
 */
static const char *
url_problem(const char *u)
{
	const char *p, *host, *end, *hend;
	size_t n;

	for (p = u; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return "must not contain spaces, control or "
			    "non-ASCII characters";
	if (strncasecmp(u, "http://", 7) == 0)
		host = u + 7;
	else if (strncasecmp(u, "https://", 8) == 0)
		host = u + 8;
	else
		return "must start with http:// or https://";
	end = host + strcspn(host, "/?#");
	if (memchr(host, '@', end - host) != NULL)
		return "must not hold user:password@; use headers instead";
	if (host[0] == '[') {
		if ((hend = memchr(host, ']', end - host)) == NULL ||
		    hend == host + 1)
			return "has a malformed [IPv6] host";
		hend++;
	} else if ((hend = memchr(host, ':', end - host)) == NULL)
		hend = end;
	if (hend == host)
		return "must have a host";
	if (hend == end)
		return NULL;
	if (*hend != ':')
		return "has a malformed host";
	n = end - (hend + 1);
	if (n == 0 || n > 5 || strspn(hend + 1, "0123456789") < n ||
	    strtol(hend + 1, NULL, 10) < 1 ||
	    strtol(hend + 1, NULL, 10) > 65535)
		return "has a bad port";
	return NULL;
}

static int
token_valid(const char *s, size_t len)
{
	size_t i;

	/* RFC 7230 tchar */
	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] == '\0' || strchr("!#$%&'*+-.^_`|~0123456789"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
		    s[i]) == NULL)
			return 0;
	return 1;
}

static int
header_reserved(const char *name)
{
	static const char *set[] = { "Host", "Content-Length",
	    "Content-Type", "Transfer-Encoding", "Connection" };
	size_t i;

	/* ctrd writes these; a second copy would confuse the receiver */
	for (i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		if (strcasecmp(name, set[i]) == 0)
			return 1;
	return strncasecmp(name, "webhook-", 8) == 0;
}

static int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
key_hash_decode(const struct node *n, unsigned char out[KEY_HASH_LEN])
{
	size_t i;
	int hi, lo;

	if (n->type != N_SCALAR || n->len != KEY_HASH_LEN * 2)
		return -1;
	for (i = 0; i < KEY_HASH_LEN; i++) {
		if ((hi = hex_digit(n->str[2 * i])) == -1 ||
		    (lo = hex_digit(n->str[2 * i + 1])) == -1)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* Edit distance, for "did you mean"; only short names are compared. */
static size_t
edit_distance(const char *a, size_t alen, const char *b)
{
	size_t row[NAME_LEN_MAX + 1], i, j, blen, diag, up;

	blen = strlen(b);
	if (alen > NAME_LEN_MAX || blen > NAME_LEN_MAX)
		return SIZE_MAX;
	for (j = 0; j <= blen; j++)
		row[j] = j;
	for (i = 1; i <= alen; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= blen; j++) {
			up = row[j];
			row[j] = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < row[j])
				row[j] = up + 1;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			diag = up;
		}
	}
	return row[blen];
}

/* Option tables */

static char *
path_resolve(struct cparse *cp, const char *s)
{
	char *p;

	if (s[0] == '/' || cp->dir == NULL)
		return xstrdup(s);
	p = xmalloc(strlen(cp->dir) + 1 + strlen(s) + 1);
	sprintf(p, "%s/%s", cp->dir, s);
	return p;
}

static void
opt_default(const struct opt *o, void *base)
{
	char *b = base;
	unsigned port;
	size_t i;

	switch (o->type) {
	case OT_UINT:
		*(unsigned *)(b + o->off) = (unsigned)o->def;
		break;
	case OT_KIND:
		*(enum consumer_kind *)(b + o->off) =
		    (enum consumer_kind)o->def;
		break;
	case OT_ACCESS:
		*(enum stream_access *)(b + o->off) =
		    (enum stream_access)o->def;
		break;
	case OT_STREAM:
		/* a file without a stream section gets the defaults too */
		for (i = 0; i < NOPTS(stream_opts); i++)
			opt_default(&stream_opts[i],
			    &((struct config *)base)->stream);
		break;
	case OT_SIZE:
		*(size_t *)(b + o->off) = (size_t)o->def;
		break;
	case OT_PATH:
		if (o->def_str != NULL)
			*(char **)(b + o->off) = xstrdup(o->def_str);
		break;
	case OT_LISTEN:
		if (listen_parse(o->def_str, &((struct config *)base)->
		    listen_host, &port) == -1)
			fatalx("built-in listen default is malformed");
		((struct config *)base)->listen_port = port;
		break;
	default:
		break;
	}
}

/* The row of tab named name[0..len), or -1. */
static int
opt_find(const struct opt *tab, size_t ntab, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < ntab; i++)
		if (strlen(tab[i].name) == len &&
		    memcmp(tab[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

/* Pair each key of map with its row in seen[]; say which keys fit none. */
static void
map_match(struct cparse *cp, const struct opt *tab, size_t ntab,
    const struct node *map, const struct node **seen)
{
	const struct node *k;
	size_t i, j, d, best_d;
	const char *best;
	int r;

	for (j = 0; j < ntab; j++)
		seen[j] = NULL;
	for (i = 0; i + 1 < map->nkids; i += 2) {
		k = map->kids[i];
		if (k->ignored)
			continue;
		if ((r = opt_find(tab, ntab, k->str, k->len)) != -1) {
			seen[r] = map->kids[i + 1];
			continue;
		}
		best = NULL;
		best_d = 3;	/* farther than two edits is a guess */
		for (j = 0; j < ntab; j++) {
			d = edit_distance(k->str, k->len, tab[j].name);
			if (d < best_d && d < strlen(tab[j].name)) {
				best = tab[j].name;
				best_d = d;
			}
		}
		if (best != NULL)
			nerr(cp, k, "unknown option (did you mean \"%s\"?)",
			    best);
		else
			nerr(cp, k, "unknown option");
	}
}

/*
 * Set every row of tab in base: from seen[] when given, else its default.
 * discord is 1 for a discord consumer, 0 for another, -1 when the kind
 * itself is wrong (and discord-only rows are left unjudged).
 */
static void
map_apply(struct cparse *cp, const struct opt *tab, size_t ntab,
    const struct node *map, void *base, const struct node **seen,
    int discord)
{
	char path[PATH_TEXT_MAX], key[PATH_TEXT_MAX + NAME_LEN_MAX + 2];
	size_t i;

	for (i = 0; i < ntab; i++)
		opt_default(&tab[i], base);
	for (i = 0; i < ntab; i++) {
		if (seen[i] == NULL) {
			if (!(tab[i].flags & OPT_REQUIRED))
				continue;
			node_path(map, path, sizeof(path));
			snprintf(key, sizeof(key), "%s%s%s", path,
			    path[0] != '\0' ? "." : "", tab[i].name);
			perr(cp, map->line, map->col, key,
			    "required option is missing");
			continue;
		}
		if ((tab[i].flags & OPT_DISCORD) && discord != 1) {
			if (discord == 0)
				nerr(cp, seen[i]->key,
				    "only allowed for kind discord");
			continue;
		}
		if ((tab[i].flags & OPT_WEBHOOK) && discord == 1) {
			nerr(cp, seen[i]->key,
			    "only allowed for kind webhook");
			continue;
		}
		opt_set(cp, &tab[i], base, seen[i]);
	}
}

/* Setters */

static void
set_number(struct cparse *cp, const struct opt *o, void *base,
    const struct node *v)
{
	char *b = base;
	long long n;

	if (want_integer(cp, v, o->min, o->max, &n) == -1)
		return;
	if (o->type == OT_SIZE)
		*(size_t *)(b + o->off) = (size_t)n;
	else
		*(unsigned *)(b + o->off) = (unsigned)n;
}

static void
set_string(struct cparse *cp, const struct opt *o, void *base,
    const struct node *v)
{
	char **dst = (char **)((char *)base + o->off);
	const char *s;
	size_t n;

	if ((s = want_string(cp, v)) == NULL)
		return;
	switch (o->type) {
	case OT_STRING:
		n = utf8_chars(s);
		if (n < (size_t)o->min || n > (size_t)o->max) {
			nerr(cp, v, "must be %lld to %lld characters",
			    o->min, o->max);
			return;
		}
		break;
	case OT_DIGITS:
		n = strlen(s);
		if (strspn(s, "0123456789") != n || n < (size_t)o->min ||
		    n > (size_t)o->max) {
			nerr(cp, v, "must be %lld to %lld decimal digits",
			    o->min, o->max);
			return;
		}
		break;
	case OT_NAME:
		if (!name_is_valid(s)) {
			nerr(cp, v, "must be 1 to %d letters, digits, '_', "
			    "'.' or '-', starting with a letter or digit",
			    NAME_LEN_MAX);
			return;
		}
		break;
	case OT_URL:
		if (url_problem(s) != NULL) {
			nerr(cp, v, "%s", url_problem(s));
			return;
		}
		break;
	default:
		break;
	}
	free(*dst);
	*dst = o->type == OT_PATH ? path_resolve(cp, s) : xstrdup(s);
}

static void
set_listen(struct cparse *cp, struct config *cfg, const struct node *v)
{
	const char *s;
	char *host;
	unsigned port;

	if ((s = want_string(cp, v)) == NULL)
		return;
	if (listen_parse(s, &host, &port) == -1) {
		nerr(cp, v, "must be IPv4:port or [IPv6]:port, with a numeric "
		    "address and a port from 0 to 65535");
		return;
	}
	free(cfg->listen_host);
	cfg->listen_host = host;
	cfg->listen_port = port;
}

/*
 * The server secret keys every API key hash: a copy anyone else can read
 * would let them forge producers, so loose modes are refused outright.
 */
static void
set_secret_file(struct cparse *cp, struct config *cfg,
    const struct node *v)
{
	const char *s;
	struct stat st;
	ssize_t r;
	size_t got;
	int fd;

	if ((s = want_string(cp, v)) == NULL)
		return;
	cfg->secret_file = path_resolve(cp, s);
	/* O_NONBLOCK: a FIFO put there must not hang start-up */
	fd = open(cfg->secret_file, O_RDONLY | O_CLOEXEC | O_NONBLOCK |
	    O_NOCTTY);
	if (fd == -1) {
		nerr(cp, v, "cannot open: %s", strerror(errno));
		return;
	}
	if (fstat(fd, &st) == -1) {
		nerr(cp, v, "cannot stat: %s", strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		nerr(cp, v, "not a regular file");
		goto done;
	}
	if (st.st_mode & 077) {
		nerr(cp, v, "mode %04o lets group or others in; chmod 600 it",
		    (unsigned)(st.st_mode & 07777));
		goto done;
	}
	if (st.st_size != SERVER_SECRET_LEN) {
		nerr(cp, v, "must hold exactly %d bytes, not %lld",
		    SERVER_SECRET_LEN, (long long)st.st_size);
		goto done;
	}
	for (got = 0; got < SERVER_SECRET_LEN; got += (size_t)r) {
		r = read(fd, cfg->server_secret + got,
		    SERVER_SECRET_LEN - got);
		if (r == -1 && errno == EINTR) {
			r = 0;
			continue;
		}
		if (r <= 0) {
			nerr(cp, v, "cannot read %d bytes: %s",
			    SERVER_SECRET_LEN, r == 0 ? "file shrank" :
			    strerror(errno));
			break;
		}
	}
 done:
	close(fd);
}

static int
kind_parse(const struct node *v)
{
	if (v->type != N_SCALAR)
		return -1;
	if (strcmp(v->str, "webhook") == 0 && v->len == 7)
		return CONSUMER_WEBHOOK;
	if (strcmp(v->str, "discord") == 0 && v->len == 7)
		return CONSUMER_DISCORD;
	return -1;
}

static void
set_kind(struct cparse *cp, struct consumer_conf *cc, const struct node *v)
{
	int k;

	if (v->type == N_BAD)
		return;
	if ((k = kind_parse(v)) == -1) {
		nerr(cp, v, "must be webhook or discord");
		return;
	}
	cc->kind = (enum consumer_kind)k;
}

static void
set_headers(struct cparse *cp, struct consumer_conf *cc,
    const struct node *v)
{
	const struct node *k, *val;
	const char *s;
	size_t i, j;

	if (v->type == N_BAD)
		return;
	if (v->type != N_MAP) {
		if (!node_is_null(v))
			nerr(cp, v, "must be a mapping of header names to "
			    "values");
		return;
	}
	cc->headers = xcalloc(v->nkids / 2, sizeof(*cc->headers));
	for (i = 0; i + 1 < v->nkids; i += 2) {
		k = v->kids[i];
		val = v->kids[i + 1];
		if (k->ignored)
			continue;
		if (!token_valid(k->str, k->len)) {
			nerr(cp, k, "not a valid header name");
			continue;
		}
		if (header_reserved(k->str)) {
			nerr(cp, k, "set by ctrd; it cannot be configured");
			continue;
		}
		for (j = 0; j < cc->nheaders; j++)
			if (strcasecmp(cc->headers[j].name, k->str) == 0)
				break;
		if (j < cc->nheaders) {
			nerr(cp, k, "repeats header \"%s\" (names ignore "
			    "case)", cc->headers[j].name);
			continue;
		}
		if ((s = want_string(cp, val)) == NULL)
			continue;
		cc->headers[cc->nheaders].name = xstrdup(k->str);
		cc->headers[cc->nheaders].value = xstrdup(s);
		cc->nheaders++;
	}
}

static void
set_whsec(struct cparse *cp, struct consumer_conf *cc, const struct node *v)
{
	unsigned char bin[WHSEC_MAX + 3];
	const char *s, *b64;
	size_t plen = strlen(WHSEC_PREFIX), binlen;

	if ((s = want_string(cp, v)) == NULL)
		return;
	/* the message must never show the value, not even a part of it */
	b64 = s + plen;
	if (strncmp(s, WHSEC_PREFIX, plen) != 0 ||
	    strlen(b64) > (WHSEC_MAX + 2) / 3 * 4 ||
	    sodium_base642bin(bin, sizeof(bin), b64, strlen(b64), NULL,
	    &binlen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    binlen < WHSEC_MIN || binlen > WHSEC_MAX) {
		nerr(cp, v, "must be \"%s\" and standard base64 of %d to %d "
		    "bytes", WHSEC_PREFIX, WHSEC_MIN, WHSEC_MAX);
		sodium_memzero(bin, sizeof(bin));
		return;
	}
	cc->secret = xmalloc(binlen);
	memcpy(cc->secret, bin, binlen);
	cc->secret_len = binlen;
	sodium_memzero(bin, sizeof(bin));
}

/* Turn a YAML subtree into cJSON, noting where each item came from. */
static cJSON *
node_json(struct cparse *cp, const struct node *n)
{
	cJSON *j, *kid;
	const struct node *k;
	char *end;
	double d;
	size_t i;

	switch (n->type) {
	case N_MAP:
		j = cJSON_CreateObject();
		for (i = 0; i + 1 < n->nkids; i += 2) {
			k = n->kids[i];
			if (k->ignored)
				continue;
			if (strlen(k->str) != k->len) {
				nerr(cp, k, "keys must not contain NUL");
				continue;
			}
			if ((kid = node_json(cp, n->kids[i + 1])) != NULL)
				cJSON_AddItemToObject(j, k->str, kid);
		}
		break;
	case N_SEQ:
		j = cJSON_CreateArray();
		for (i = 0; i < n->nkids; i++)
			if ((kid = node_json(cp, n->kids[i])) != NULL)
				cJSON_AddItemToArray(j, kid);
		break;
	case N_SCALAR:
		if (strlen(n->str) != n->len) {
			nerr(cp, n, "must not contain NUL");
			return NULL;
		}
		if (!n->plain)
			j = cJSON_CreateString(n->str);
		else if (node_is_null(n))
			j = cJSON_CreateNull();
		else if (strcmp(n->str, "true") == 0 ||
		    strcmp(n->str, "True") == 0 ||
		    strcmp(n->str, "TRUE") == 0)
			j = cJSON_CreateTrue();
		else if (strcmp(n->str, "false") == 0 ||
		    strcmp(n->str, "False") == 0 ||
		    strcmp(n->str, "FALSE") == 0)
			j = cJSON_CreateFalse();
		else if (json_is_number(n->str)) {
			d = strtod(n->str, &end);
			if (!isfinite(d)) {
				nerr(cp, n, "number out of range");
				return NULL;
			}
			j = cJSON_CreateNumber(d);
		} else
			j = cJSON_CreateString(n->str);
		break;
	default:
		return NULL;	/* an alias, reported already */
	}
	if (cp->norig == cp->origcap) {
		cp->origcap = cp->origcap ? cp->origcap * 2 : 32;
		cp->orig = xrealloc(cp->orig, cp->origcap *
		    sizeof(*cp->orig));
	}
	cp->orig[cp->norig].item = j;
	cp->orig[cp->norig].node = n;
	cp->norig++;
	return j;
}

static void
set_pattern(struct cparse *cp, struct consumer_conf *cc,
    const struct node *v)
{
	const struct node *at;
	const cJSON *bad = NULL;
	cJSON *json;
	char err[256], path[PATH_TEXT_MAX];
	const char *msg;
	size_t before, i, klen;

	if (v->type == N_BAD)
		return;
	if (v->type != N_MAP) {
		nerr(cp, v, "must be a mapping");
		return;
	}
	before = cp->errs->n + cp->dropped;
	cp->norig = 0;
	json = node_json(cp, v);
	if (cp->errs->n + cp->dropped != before)
		goto done;	/* compiling a partial pattern misleads */
	if ((cc->pattern = pattern_compile(json, &bad, err,
	    sizeof(err))) != NULL)
		goto done;

	at = v;
	for (i = 0; i < cp->norig; i++)
		if (cp->orig[i].item == bad)
			at = cp->orig[i].node;
	/* "game: expects..." under a path that ends in game says it twice */
	msg = err;
	node_path(at, path, sizeof(path));
	if (at->key != NULL) {
		klen = strlen(at->key->str);
		if (strncmp(err, at->key->str, klen) == 0 &&
		    strncmp(err + klen, ": ", 2) == 0)
			msg = err + klen + 2;
	}
	nerr(cp, at, "%s", msg);
 done:
	cJSON_Delete(json);
	cp->norig = 0;
}

static void
set_key_hash(struct cparse *cp, const struct opt *o,
    struct producer_conf *pc, const struct node *v)
{
	const struct node *const *items;
	const struct producer_conf *other;
	unsigned char h[KEY_HASH_LEN];
	size_t n, i, j, k;

	if (v->type == N_BAD)
		return;
	if (v->type == N_SCALAR) {
		items = &v;
		n = 1;
	} else if (v->type == N_SEQ) {
		items = (const struct node *const *)v->kids;
		if ((n = v->nkids) < (size_t)o->min || n > (size_t)o->max) {
			nerr(cp, v, "must list %lld to %lld key hashes",
			    o->min, o->max);
			return;
		}
	} else {
		nerr(cp, v, "must be a key hash or a list of them");
		return;
	}

	for (i = 0; i < n; i++) {
		if (items[i]->type == N_BAD)
			continue;
		if (key_hash_decode(items[i], h) == -1) {
			nerr(cp, items[i], "must be %d lowercase hex digits "
			    "(keyed BLAKE2b-256)", KEY_HASH_LEN * 2);
			continue;
		}
		/* one key must name one producer, or who posted is moot */
		for (j = 0; j <= cp->cur; j++) {
			other = &cp->cfg->producers[j];
			for (k = 0; k < other->nkeys; k++)
				if (memcmp(other->key_hash[k], h,
				    KEY_HASH_LEN) == 0)
					break;
			if (k < other->nkeys)
				break;
		}
		if (j < cp->cur)
			nerr(cp, items[i], "same key hash as producers[%zu]",
			    j);
		else if (j == cp->cur)
			nerr(cp, items[i], "repeats a key hash given above");
		else
			memcpy(pc->key_hash[pc->nkeys++], h, KEY_HASH_LEN);
	}
	sodium_memzero(h, sizeof(h));
}

static void
set_globs(struct cparse *cp, const struct opt *o, void *base,
    const struct node *v)
{
	char *b = base, **globs;
	const char *s;
	size_t i, n = 0;

	if (v->type == N_BAD || node_is_null(v))
		return;
	if (v->type != N_SEQ) {
		nerr(cp, v, "must be a list of globs");
		return;
	}
	globs = xcalloc(v->nkids, sizeof(*globs));
	for (i = 0; i < v->nkids; i++)
		if ((s = want_string(cp, v->kids[i])) != NULL)
			globs[n++] = xstrdup(s);
	*(char ***)(b + o->off) = globs;
	*(size_t *)(b + o->off_n) = n;
}

/* Not the two lists' own items: those are checked below. */
static const struct node *
want_list(struct cparse *cp, const struct node *v, const char *what)
{
	if (v->type == N_BAD || node_is_null(v))
		return NULL;
	if (v->type != N_SEQ) {
		nerr(cp, v, "must be a list of %s mappings", what);
		return NULL;
	}
	return v;
}

static void
set_producers(struct cparse *cp, struct config *cfg, const struct node *v)
{
	const struct node *seen[OPTS_MAX], *it;
	struct producer_conf *pc;
	size_t i, j, ntab = NOPTS(producer_opts);
	int ni = opt_find(producer_opts, ntab, "name", 4);

	if ((v = want_list(cp, v, "producer")) == NULL || v->nkids == 0)
		return;
	cfg->producers = xcalloc(v->nkids, sizeof(*cfg->producers));
	cfg->nproducers = v->nkids;
	for (i = 0; i < v->nkids; i++) {
		it = v->kids[i];
		pc = &cfg->producers[i];
		cp->cur = i;
		if (it->type != N_MAP) {
			if (it->type != N_BAD)
				nerr(cp, it, "must be a mapping");
			continue;
		}
		map_match(cp, producer_opts, ntab, it, seen);
		map_apply(cp, producer_opts, ntab, it, pc, seen, 0);
		for (j = 0; pc->name != NULL && j < i; j++)
			if (cfg->producers[j].name != NULL &&
			    strcmp(cfg->producers[j].name, pc->name) == 0) {
				nerr(cp, seen[ni], "\"%s\" is already used by "
				    "producers[%zu]", pc->name, j);
				break;
			}
	}
}

static void
set_consumers(struct cparse *cp, struct config *cfg, const struct node *v)
{
	const struct node *seen[OPTS_MAX], *it;
	struct consumer_conf *cc;
	size_t i, j, ntab = NOPTS(consumer_opts);
	int ni = opt_find(consumer_opts, ntab, "name", 4);
	int ki = opt_find(consumer_opts, ntab, "kind", 4);
	int discord;

	if ((v = want_list(cp, v, "consumer")) == NULL || v->nkids == 0)
		return;
	cfg->consumers = xcalloc(v->nkids, sizeof(*cfg->consumers));
	cfg->nconsumers = v->nkids;
	for (i = 0; i < v->nkids; i++) {
		it = v->kids[i];
		cc = &cfg->consumers[i];
		if (it->type != N_MAP) {
			if (it->type != N_BAD)
				nerr(cp, it, "must be a mapping");
			continue;
		}
		map_match(cp, consumer_opts, ntab, it, seen);
		/* the kind decides which other options may appear */
		if (seen[ki] == NULL)
			discord = 0;
		else if (kind_parse(seen[ki]) == -1)
			discord = -1;
		else
			discord = kind_parse(seen[ki]) == CONSUMER_DISCORD;
		map_apply(cp, consumer_opts, ntab, it, cc, seen, discord);
		for (j = 0; cc->name != NULL && j < i; j++)
			if (cfg->consumers[j].name != NULL &&
			    strcmp(cfg->consumers[j].name, cc->name) == 0) {
				nerr(cp, seen[ni], "\"%s\" is already used by "
				    "consumers[%zu]", cc->name, j);
				break;
			}
	}
}

static void
set_access(struct cparse *cp, struct stream_conf *sc, const struct node *v)
{
	if (v->type == N_BAD)
		return;
	if (v->type == N_SCALAR && strcmp(v->str, "public") == 0)
		sc->access = STREAM_PUBLIC;
	else if (v->type == N_SCALAR && strcmp(v->str, "token") == 0)
		sc->access = STREAM_TOKEN;
	else
		nerr(cp, v, "must be public or token");
}

/*
 * Like a producer's key_hash.  A token goes into URLs and browser pages,
 * so it must never also be a producer's key.
 */
static void
set_token_hash(struct cparse *cp, struct stream_token *tk,
    const struct node *v)
{
	const struct config *cfg = cp->cfg;
	unsigned char h[KEY_HASH_LEN];
	size_t i, k;

	if (v->type == N_BAD)
		return;
	if (key_hash_decode(v, h) == -1) {
		nerr(cp, v, "must be %d lowercase hex digits (keyed "
		    "BLAKE2b-256)", KEY_HASH_LEN * 2);
		return;
	}
	for (i = 0; i < cfg->nproducers; i++)
		for (k = 0; k < cfg->producers[i].nkeys; k++)
			if (memcmp(cfg->producers[i].key_hash[k], h,
			    KEY_HASH_LEN) == 0) {
				nerr(cp, v, "same hash as the key of "
				    "producers[%zu]; a token must be a key "
				    "of its own", i);
				goto done;
			}
	for (i = 0; i < cp->cur_token; i++)
		if (memcmp(cfg->stream.tokens[i].hash, h, KEY_HASH_LEN) == 0) {
			nerr(cp, v, "same hash as stream.tokens[%zu]", i);
			goto done;
		}
	memcpy(tk->hash, h, KEY_HASH_LEN);
 done:
	sodium_memzero(h, sizeof(h));
}

static void
set_tokens(struct cparse *cp, struct stream_conf *sc, const struct node *v)
{
	const struct node *seen[OPTS_MAX], *it;
	struct stream_token *tk;
	size_t i, j, ntab = NOPTS(token_opts);
	int ni = opt_find(token_opts, ntab, "name", 4);

	if ((v = want_list(cp, v, "token")) == NULL || v->nkids == 0)
		return;
	sc->tokens = xcalloc(v->nkids, sizeof(*sc->tokens));
	sc->ntokens = v->nkids;
	for (i = 0; i < v->nkids; i++) {
		it = v->kids[i];
		tk = &sc->tokens[i];
		cp->cur_token = i;
		if (it->type != N_MAP) {
			if (it->type != N_BAD)
				nerr(cp, it, "must be a mapping");
			continue;
		}
		map_match(cp, token_opts, ntab, it, seen);
		map_apply(cp, token_opts, ntab, it, tk, seen, 0);
		for (j = 0; tk->name != NULL && j < i; j++)
			if (sc->tokens[j].name != NULL &&
			    strcmp(sc->tokens[j].name, tk->name) == 0) {
				nerr(cp, seen[ni], "\"%s\" is already used by "
				    "stream.tokens[%zu]", tk->name, j);
				break;
			}
	}
}

/* NULL if s is "*" or a bare http(s) origin, else what is wrong. */
static const char *
origin_problem(const char *s)
{
	const char *host;

	if (strcmp(s, "*") == 0)
		return NULL;
	if (url_problem(s) != NULL)
		return "must be \"*\" or an origin such as "
		    "https://example.org:8443";
	host = s + (strncasecmp(s, "https://", 8) == 0 ? 8 : 7);
	/* browsers send Origin without a path, not even "/" */
	if (host[strcspn(host, "/?#")] != '\0')
		return "must be an origin alone: no path, not even \"/\"";
	return NULL;
}

static void
set_origins(struct cparse *cp, struct stream_conf *sc,
    const struct node *v)
{
	const char *s, *why;
	size_t i;

	if (v->type == N_BAD || node_is_null(v))
		return;
	if (v->type != N_SEQ) {
		nerr(cp, v, "must be a list of origins");
		return;
	}
	sc->cors_origins = xcalloc(v->nkids, sizeof(*sc->cors_origins));
	for (i = 0; i < v->nkids; i++) {
		if ((s = want_string(cp, v->kids[i])) == NULL)
			continue;
		if ((why = origin_problem(s)) != NULL) {
			nerr(cp, v->kids[i], "%s", why);
			continue;
		}
		if (strcmp(s, "*") == 0 && v->nkids > 1) {
			nerr(cp, v->kids[i], "\"*\" allows every origin; "
			    "list nothing else with it");
			continue;
		}
		sc->cors_origins[sc->ncors_origins++] = xstrdup(s);
	}
}

static void
set_stream(struct cparse *cp, struct config *cfg, const struct node *v)
{
	struct stream_conf *sc = &cfg->stream;
	const struct node *seen[OPTS_MAX];
	size_t ntab = NOPTS(stream_opts);
	int ai = opt_find(stream_opts, ntab, "access", 6);
	int ti = opt_find(stream_opts, ntab, "tokens", 6);

	if (v->type == N_BAD || node_is_null(v))
		return;
	if (v->type != N_MAP) {
		nerr(cp, v, "must be a mapping");
		return;
	}
	map_match(cp, stream_opts, ntab, v, seen);
	map_apply(cp, stream_opts, ntab, v, sc, seen, 0);
	/* say so rather than guess which of the two was meant */
	if (sc->access == STREAM_TOKEN && sc->ntokens == 0 &&
	    seen[ai] != NULL)
		nerr(cp, seen[ai], "token needs at least one entry in "
		    "stream.tokens");
	else if (sc->access == STREAM_PUBLIC && sc->ntokens > 0)
		nerr(cp, seen[ti]->key, "given, but the stream is public; "
		    "set access: token");
}

static void
opt_set(struct cparse *cp, const struct opt *o, void *base,
    const struct node *v)
{
	switch (o->type) {
	case OT_UINT:
	case OT_SIZE:
		set_number(cp, o, base, v);
		break;
	case OT_STRING:
	case OT_DIGITS:
	case OT_PATH:
	case OT_NAME:
	case OT_URL:
		set_string(cp, o, base, v);
		break;
	case OT_LISTEN:
		set_listen(cp, base, v);
		break;
	case OT_SECRET_FILE:
		set_secret_file(cp, base, v);
		break;
	case OT_KIND:
		set_kind(cp, base, v);
		break;
	case OT_HEADERS:
		set_headers(cp, base, v);
		break;
	case OT_WHSEC:
		set_whsec(cp, base, v);
		break;
	case OT_PATTERN:
		set_pattern(cp, base, v);
		break;
	case OT_KEY_HASH:
		set_key_hash(cp, o, base, v);
		break;
	case OT_GLOBS:
		set_globs(cp, o, base, v);
		break;
	case OT_PRODUCERS:
		set_producers(cp, base, v);
		break;
	case OT_CONSUMERS:
		set_consumers(cp, base, v);
		break;
	case OT_STREAM:
		set_stream(cp, base, v);
		break;
	case OT_ACCESS:
		set_access(cp, base, v);
		break;
	case OT_TOKENS:
		set_tokens(cp, base, v);
		break;
	case OT_TOKEN_HASH:
		set_token_hash(cp, base, v);
		break;
	case OT_ORIGINS:
		set_origins(cp, base, v);
		break;
	}
}

/* Whether an option's node, if given, holds a number in the row's range. */
static int
in_range(const struct node *n, const struct opt *o)
{
	long long v;

	if (n == NULL)
		return 1;
	return integer_parse(n, &v) == 0 && v >= o->min && v <= o->max;
}

static void
parse_top(struct cparse *cp, struct config *cfg, const struct node *root)
{
	static const struct node empty = { .type = N_MAP, .line = 1,
	    .col = 1 };
	const struct node *seen[OPTS_MAX];
	size_t ntab = NOPTS(top_opts);
	int bi = opt_find(top_opts, ntab, "body_max", 8);
	int ei = opt_find(top_opts, ntab, "entry_max", 9);

	/* a file of only comments is an empty mapping: say what is missing */
	if (root == NULL || node_is_null(root))
		root = &empty;
	if (root->type != N_MAP) {
		if (root->type != N_BAD)
			nerr(cp, root, "must be a mapping of options");
		return;
	}
	map_match(cp, top_opts, ntab, root, seen);
	map_apply(cp, top_opts, ntab, root, cfg, seen, 0);

	if (cfg->entry_max <= cfg->body_max || !in_range(seen[ei],
	    &top_opts[ei]) || !in_range(seen[bi], &top_opts[bi]))
		return;
	if (seen[ei] != NULL)
		nerr(cp, seen[ei], "must not exceed body_max (%zu)",
		    cfg->body_max);
	else
		nerr(cp, seen[bi], "must be at least entry_max (%zu)",
		    cfg->entry_max);
}

/* Read the whole file; the checks on the file itself come first. */
static int
file_read(struct cparse *cp, const char *path, char **bufp, size_t *lenp)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK |
	    O_NOCTTY)) == -1) {
		ferr(cp, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		ferr(cp, "cannot stat: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		ferr(cp, "not a regular file");
		goto fail;
	}
	/*
	 * Whoever can write it can point ctrd's deliveries anywhere.
	 * XXX: a file others may read is accepted even when it holds
	 * consumer secrets or Discord URLs; refusing such files would be
	 * safer but is a policy change the operator should see coming.
	 */
	if (st.st_mode & S_IWOTH) {
		ferr(cp, "mode %04o lets others write it; chmod o-w it",
		    (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_size > CONF_SIZE_MAX) {
		ferr(cp, "larger than %d bytes", CONF_SIZE_MAX);
		goto fail;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			ferr(cp, "cannot read: %s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;
 fail:
	free(buf);
	close(fd);
	return -1;
}

/*
 * A dead_letter_file set in the file must be writable when the first
 * delivery misses, not just at start-up: check its directory now, without
 * creating the file, so that ctrctl check, ctrd -n and a reload refuse
 * what the daemon could not use.  The built-in default is checked only
 * when ctrd opens it, so that configurations stay portable between a
 * build tree and an installed system.
 */
static void
check_dead_letter(struct cparse *cp, struct config *cfg,
    const struct node *root)
{
	const struct node *v = NULL;
	const char *f = cfg->dead_letter_file, *slash;
	char *dir;
	struct stat st;
	size_t i;

	for (i = 0; root != NULL && root->type == N_MAP &&
	    i + 1 < root->nkids; i += 2)
		if (strcmp(root->kids[i]->str, "dead_letter_file") == 0)
			v = root->kids[i + 1];
	if (v == NULL)
		return;
	slash = strrchr(f, '/');
	dir = slash == NULL ? xstrdup(".") : slash == f ? xstrdup("/") :
	    xstrndup(f, (size_t)(slash - f));
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    access(dir, W_OK | X_OK) == -1)
		nerr(cp, v, "directory %s is missing or not writable", dir);
	else if (stat(f, &st) == 0 && (!S_ISREG(st.st_mode) ||
	    access(f, W_OK) == -1))
		nerr(cp, v, "not a writable regular file");
	free(dir);
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
	struct cparse cp;
	struct config *cfg;
	struct node *root = NULL;
	const char *slash;
	char *buf = NULL;
	size_t len = 0;

	memset(&cp, 0, sizeof(cp));
	cp.file = path;
	cp.errs = errs;
	cp.first = errs->n;
	if ((slash = strrchr(path, '/')) != NULL)
		cp.dir = xstrndup(path, slash - path);
	cfg = xcalloc(1, sizeof(*cfg));
	cp.cfg = cfg;
	cfg->path = xstrdup(path);
	cfg->generation = ++generations;

	if (file_read(&cp, path, &buf, &len) == -1)
		goto fail;
	if (tree_build(&cp, buf, len, &root) == -1)
		goto fail;
	parse_top(&cp, cfg, root);
	if (errs->n == cp.first)
		check_dead_letter(&cp, cfg, root);
	if (errs->n > cp.first || cp.dropped > 0)
		goto fail;
	goto done;
 fail:
	errors_sort(&cp);
	config_free(cfg);
	cfg = NULL;
 done:
	node_free(root);
	if (buf != NULL) {
		/* consumer secrets are in the text */
		sodium_memzero(buf, len);
		free(buf);
	}
	free(cp.dir);
	free(cp.orig);
	return cfg;
}

/* Free a string that may be secret without leaving it in the heap. */
static void
zfree(char *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s, strlen(s));
	free(s);
}

static void
strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
config_free(struct config *cfg)
{
	struct consumer_conf *cc;
	size_t i, j;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nproducers; i++) {
		free(cfg->producers[i].name);
		strv_free(cfg->producers[i].sources,
		    cfg->producers[i].nsources);
		strv_free(cfg->producers[i].types, cfg->producers[i].ntypes);
		sodium_memzero(cfg->producers[i].key_hash,
		    sizeof(cfg->producers[i].key_hash));
	}
	free(cfg->producers);
	for (i = 0; i < cfg->nconsumers; i++) {
		cc = &cfg->consumers[i];
		free(cc->name);
		zfree(cc->url);		/* a discord URL holds its token */
		for (j = 0; j < cc->nheaders; j++) {
			free(cc->headers[j].name);
			zfree(cc->headers[j].value);
		}
		free(cc->headers);
		if (cc->secret != NULL) {
			sodium_memzero(cc->secret, cc->secret_len);
			free(cc->secret);
		}
		if (cc->pattern != NULL)
			pattern_free(cc->pattern);
		free(cc->username);
		free(cc->avatar_url);
		free(cc->thread_id);
		strv_free(cc->types, cc->ntypes);
	}
	free(cfg->consumers);
	for (i = 0; i < cfg->stream.ntokens; i++) {
		free(cfg->stream.tokens[i].name);
		sodium_memzero(cfg->stream.tokens[i].hash,
		    sizeof(cfg->stream.tokens[i].hash));
		strv_free(cfg->stream.tokens[i].producers,
		    cfg->stream.tokens[i].nproducers);
	}
	free(cfg->stream.tokens);
	strv_free(cfg->stream.cors_origins, cfg->stream.ncors_origins);
	free(cfg->path);
	free(cfg->listen_host);
	free(cfg->secret_file);
	free(cfg->dead_letter_file);
	sodium_memzero(cfg->server_secret, sizeof(cfg->server_secret));
	free(cfg);
}

void
config_errors_free(struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++) {
		free(errs->v[i].file);
		free(errs->v[i].msg);
	}
	free(errs->v);
	errs->v = NULL;
	errs->n = 0;
}

void
config_errors_log(const struct config_errors *errs)
{
	const struct config_error *e;
	size_t i;

	for (i = 0; i < errs->n; i++) {
		e = &errs->v[i];
		if (e->line > 0)
			log_warnx("%s:%d:%d: %s", e->file, e->line, e->col,
			    e->msg);
		else
			log_warnx("%s: %s", e->file, e->msg);
	}
}
