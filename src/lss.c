/* LiveSplit splits files read with libxml2 into a struct lss. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "lss.h"
#include "util.h"

#define TICKS_S		INT64_C(10000000)
/* Days below .NET's TimeSpan.MaxValue that keep every sum in int64_t. */
#define DAYS_MAX	INT64_C(10675198)

/* The file being read, for messages. */
struct reader {
	const char	*path;
	int		 errors;
};

static void
problem(struct reader *r, const xmlNode *n, const char *what,
    const char *text)
{
	fprintf(stderr, "ctrctl: %s:%ld: %s", r->path,
	    n != NULL ? xmlGetLineNo(n) : 0L, what);
	if (text != NULL)
		fprintf(stderr, ": \"%.60s\"", text);
	fputc('\n', stderr);
	r->errors++;
}

#if LIBXML_VERSION >= 21200
static void
on_xml_error(void *ctx, const xmlError *e)
#else
static void
on_xml_error(void *ctx, xmlErrorPtr e)
#endif
{
	struct reader *r = ctx;
	size_t n;

	/* Warnings (an unknown encoding name, say) do not stop the parse;
	 * only what makes the document unusable is shown. */
	if (e->level < XML_ERR_ERROR)
		return;
	n = e->message != NULL ? strcspn(e->message, "\n") : 0;
	fprintf(stderr, "ctrctl: %s:%d: %.*s\n", r->path, e->line, (int)n,
	    e->message != NULL ? e->message : "");
	r->errors++;
}

static int
is_element(const xmlNode *n, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE &&
	    strcmp((const char *)n->name, name) == 0;
}

/* The first child element called name, or NULL. */
static xmlNode *
child(const xmlNode *n, const char *name)
{
	xmlNode *c;

	if (n == NULL)
		return NULL;
	for (c = n->children; c != NULL; c = c->next)
		if (is_element(c, name))
			return c;
	return NULL;
}

/* The element's text with surrounding blanks removed, owned by the
 * caller; "" for an empty or missing element. */
static char *
text_of(const xmlNode *n)
{
	xmlChar *x;
	const char *s;
	char *out;
	size_t len;

	if (n == NULL)
		return xstrdup("");
	x = xmlNodeGetContent(n);
	s = x != NULL ? (const char *)x : "";
	s += strspn(s, " \t\r\n");
	len = strlen(s);
	while (len > 0 && strchr(" \t\r\n", s[len - 1]) != NULL)
		len--;
	out = xstrndup(s, len);
	xmlFree(x);
	return out;
}

/* A time child (RealTime, GameTime) of n: LSS_NONE when absent or
 * empty, an error when it is not TimeSpan text. */
static int64_t
time_of(struct reader *r, const xmlNode *n, const char *name)
{
	const xmlNode *c = child(n, name);
	int64_t t = LSS_NONE;
	char *s;

	if (c == NULL)
		return LSS_NONE;
	s = text_of(c);
	if (*s != '\0' && lss_parse_timespan(s, &t) == -1) {
		problem(r, c, "not a .NET TimeSpan", s);
		t = LSS_NONE;
	}
	free(s);
	return t;
}

/* The integer attribute id of n. */
static int
id_of(struct reader *r, const xmlNode *n, long *id)
{
	xmlChar *x = xmlGetProp(n, (const xmlChar *)"id");
	char *end;
	int ret = -1;

	if (x == NULL) {
		problem(r, n, "no id attribute", NULL);
		return -1;
	}
	errno = 0;
	*id = strtol((const char *)x, &end, 10);
	if (errno != 0 || end == (char *)x || *end != '\0')
		problem(r, n, "id is not an integer", (const char *)x);
	else
		ret = 0;
	xmlFree(x);
	return ret;
}

static void
read_attempts(struct reader *r, const xmlNode *hist, struct lss *l)
{
	const xmlNode *c;
	struct lss_attempt *a;

	for (c = hist != NULL ? hist->children : NULL; c != NULL;
	    c = c->next) {
		if (!is_element(c, "Attempt"))
			continue;
		l->attempts = xrealloc(l->attempts, (l->nattempts + 1) *
		    sizeof(*l->attempts));
		a = &l->attempts[l->nattempts];
		if (id_of(r, c, &a->id) == -1)
			continue;
		a->real = time_of(r, c, "RealTime");
		a->game = time_of(r, c, "GameTime");
		l->nattempts++;
	}
}

static void
read_history(struct reader *r, const xmlNode *hist, struct lss_segment *s)
{
	const xmlNode *c;
	struct lss_time *t;

	for (c = hist != NULL ? hist->children : NULL; c != NULL;
	    c = c->next) {
		if (!is_element(c, "Time"))
			continue;
		s->history = xrealloc(s->history, (s->nhistory + 1) *
		    sizeof(*s->history));
		t = &s->history[s->nhistory];
		if (id_of(r, c, &t->id) == -1)
			continue;
		t->real = time_of(r, c, "RealTime");
		t->game = time_of(r, c, "GameTime");
		s->nhistory++;
	}
}

/* The "Personal Best" comparison among a segment's SplitTimes. */
static const xmlNode *
personal_best(const xmlNode *seg)
{
	const xmlNode *c, *times = child(seg, "SplitTimes");
	xmlChar *name;
	int found;

	for (c = times != NULL ? times->children : NULL; c != NULL;
	    c = c->next) {
		if (!is_element(c, "SplitTime"))
			continue;
		name = xmlGetProp(c, (const xmlChar *)"name");
		found = name != NULL &&
		    strcmp((const char *)name, "Personal Best") == 0;
		xmlFree(name);
		if (found)
			return c;
	}
	return NULL;
}

static void
read_segments(struct reader *r, const xmlNode *segs, struct lss *l)
{
	const xmlNode *c, *pb, *best;
	struct lss_segment *s;

	for (c = segs != NULL ? segs->children : NULL; c != NULL;
	    c = c->next) {
		if (!is_element(c, "Segment"))
			continue;
		l->segments = xrealloc(l->segments, (l->nsegments + 1) *
		    sizeof(*l->segments));
		s = &l->segments[l->nsegments++];
		memset(s, 0, sizeof(*s));
		s->name = text_of(child(c, "Name"));
		pb = personal_best(c);
		s->pb_real = time_of(r, pb, "RealTime");
		s->pb_game = time_of(r, pb, "GameTime");
		best = child(c, "BestSegmentTime");
		s->best_real = time_of(r, best, "RealTime");
		s->best_game = time_of(r, best, "GameTime");
		read_history(r, child(c, "SegmentHistory"), s);
	}
}

static void
read_run(struct reader *r, const xmlNode *run, struct lss *l)
{
	xmlChar *v;
	char *s, *end;
	int64_t t;

	v = xmlGetProp(run, (const xmlChar *)"version");
	l->version = xstrdup(v != NULL ? (const char *)v : "");
	xmlFree(v);
	l->game = text_of(child(run, "GameName"));
	l->category = text_of(child(run, "CategoryName"));
	t = time_of(r, run, "Offset");
	l->offset = t == LSS_NONE ? 0 : t;
	s = text_of(child(run, "AttemptCount"));
	l->attempt_count = strtol(s, &end, 10);
	if (*s != '\0' && (*end != '\0' || l->attempt_count < 0))
		problem(r, child(run, "AttemptCount"),
		    "not a count of attempts", s);
	free(s);
	read_attempts(r, child(run, "AttemptHistory"), l);
	read_segments(r, child(run, "Segments"), l);
	if (l->nsegments == 0)
		problem(r, run, "no <Segment> under <Segments>", NULL);
}

struct lss *
lss_load(const char *path)
{
	struct reader r = { path, 0 };
	struct lss *l = NULL;
	xmlDoc *doc;
	xmlNode *root;
	int fd;

	/* No network and no entity expansion: a splits file is data from
	 * whoever shared it. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "ctrctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	xmlSetStructuredErrorFunc(&r, on_xml_error);
	doc = xmlReadFd(fd, path, NULL, XML_PARSE_NONET);
	xmlSetStructuredErrorFunc(NULL, NULL);
	close(fd);
	if (doc == NULL) {
		if (r.errors == 0)
			fprintf(stderr, "ctrctl: %s: not XML\n", path);
		return NULL;
	}
	root = xmlDocGetRootElement(doc);
	if (!is_element(root, "Run")) {
		problem(&r, root, "not a LiveSplit splits file (the root "
		    "element is not <Run>)", NULL);
		goto fail;
	}
	l = xcalloc(1, sizeof(*l));
	read_run(&r, root, l);
	if (r.errors > 0)
		goto fail;
	xmlFreeDoc(doc);
	return l;

fail:
	lss_free(l);
	xmlFreeDoc(doc);
	return NULL;
}

void
lss_free(struct lss *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->nsegments; i++) {
		free(l->segments[i].name);
		free(l->segments[i].history);
	}
	free(l->segments);
	free(l->attempts);
	free(l->version);
	free(l->game);
	free(l->category);
	free(l);
}

const struct lss_time *
lss_history(const struct lss_segment *seg, long id)
{
	size_t i;

	for (i = 0; i < seg->nhistory; i++)
		if (seg->history[i].id == id)
			return &seg->history[i];
	return NULL;
}

const struct lss_attempt *
lss_attempt(const struct lss *l, long id)
{
	size_t i;

	for (i = 0; i < l->nattempts; i++)
		if (l->attempts[i].id == id)
			return &l->attempts[i];
	return NULL;
}

/* Up to max digits as a number; -1 if there are none or too many. */
static int
digits(const char **p, int max, int64_t *v)
{
	int n = 0;

	*v = 0;
	while (**p >= '0' && **p <= '9' && n < max) {
		*v = *v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	return n == 0 || (**p >= '0' && **p <= '9') ? -1 : n;
}

int
lss_parse_timespan(const char *s, int64_t *ticks)
{
	const char *p = s;
	int64_t a, days = 0, h, m, sec, frac = 0;
	int neg = 0, n;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (digits(&p, 8, &a) == -1)
		return -1;
	if (*p == '.') {
		p++;
		days = a;
		if (days > DAYS_MAX || digits(&p, 2, &h) == -1 || h > 23)
			return -1;
	} else if ((h = a) > 24 * DAYS_MAX)
		return -1;
	if (*p++ != ':' || digits(&p, 2, &m) != 2 || m > 59 ||
	    *p++ != ':' || digits(&p, 2, &sec) != 2 || sec > 59)
		return -1;
	if (*p == '.') {
		p++;
		if ((n = digits(&p, 7, &frac)) == -1)
			return -1;
		for (; n < 7; n++)
			frac *= 10;
	}
	if (*p != '\0')
		return -1;
	*ticks = (((days * 24 + h) * 60 + m) * 60 + sec) * TICKS_S + frac;
	if (neg)
		*ticks = -*ticks;
	return 0;
}

void
lss_fmt_timespan(char *buf, size_t len, int64_t ticks)
{
	uint64_t u = ticks < 0 ? -(uint64_t)ticks : (uint64_t)ticks;
	uint64_t secs = u / TICKS_S, frac = u % TICKS_S;
	char days[24] = "", fraction[16] = "";

	if (secs / 86400 > 0)
		snprintf(days, sizeof(days), "%" PRIu64 ".", secs / 86400);
	if (frac > 0)
		snprintf(fraction, sizeof(fraction), ".%07" PRIu64, frac);
	snprintf(buf, len, "%s%s%02u:%02u:%02u%s", ticks < 0 ? "-" : "",
	    days, (unsigned)(secs / 3600 % 24), (unsigned)(secs / 60 % 60),
	    (unsigned)(secs % 60), fraction);
}

int64_t
lss_ticks_ms(int64_t ticks)
{
	/* C division truncates toward zero, as ctrd does. */
	return ticks / LSS_TICKS_MS;
}
