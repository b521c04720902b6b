/* Discord consumers: execute-webhook bodies built from envelopes, the URL
 * to post them to and its redaction, and Discord's rate-limit signals. */
#include "autoconf.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "discord.h"
#include "json.h"
#include "log.h"
#include "util.h"

/*
 * How an event reads in Discord, and the choices made here:
 *
 * Each event is one embed.  The author line is the producer (the runner);
 * the title says what happened ("Split: Bob-omb Battlefield", "Run
 * reset", "New personal best!"); the description gives the numbers, pace
 * first ("**-0:05.000** ahead", with U+2212 as the minus sign), then the
 * producer's message quoted; inline fields give game, category, split
 * number and attempt; the footer says "Catch The Run" and the timestamp
 * is the envelope's time.  Durations read as a stopwatch does:
 * "m:ss.mmm" under an hour, "h:mm:ss.mmm" above, always milliseconds.
 * Pace carries its sign ('+' behind, U+2212 ahead, U+00B1 even) and
 * decides the colour of splits and finishes; gold segments and personal
 * bests are gold, resets, skips and undos grey.  A type ctrd does not
 * know gets its type as the title and game, category and message if any.
 *
 * Producer text (every detail field and the producer's name) is untrusted
 * and goes through put_text on its way in:
 * - Mentions cannot ping: allowed_mentions is {"parse": []}, and so that
 *   they do not even look like one, a zero-width space follows '@' in
 *   "@everyone" and "@here", and follows every '<', which takes the
 *   meaning out of <@id>, <@&id>, <#id>, </command:id> and <t:...> alike
 *   while showing the same characters.
 * - Where Discord renders markdown (title, description, field values) the
 *   characters that format or hide text anywhere, \ * _ ~ ` | [ ], get a
 *   backslash, and so do # > - + at the start of a line (headers, quotes,
 *   lists, "-#" subtext): producer text cannot make masked links, bold
 *   claims, spoilers, headers or fake quotes.  The author name and the
 *   username are plain text in Discord and are left unescaped.
 * - Control characters go (tabs and, outside the message, newlines become
 *   spaces), as do the bidi embedding, override and isolate controls that
 *   could make text read backwards; bytes that are not UTF-8 become U+FFFD.
 *
 * Lengths are counted as Discord counts them, in UTF-16 code units (two
 * for a character above U+FFFF).  Each text is first cut to its own limit;
 * if the message is then over the 6000 total, one cap is found such that
 * cutting every text to it fits, so the longest texts (descriptions, in
 * practice) shrink first and all embeds keep their share.  No embed is
 * ever dropped: the total of what cannot shrink is far below 6000.  Cuts
 * fall between characters, drop white space and a dangling escape
 * backslash before the ellipsis (U+2026).  No content is sent.
 */

#define TITLE_MAX		256
#define DESC_MAX		4096
#define FIELD_NAME_MAX		256
#define FIELD_VALUE_MAX		1024
#define FOOTER_MAX		2048
#define AUTHOR_MAX		256
#define TOTAL_MAX		6000
#define USERNAME_MAX		80
#define FIELDS_PER_EMBED	4	/* game, category, split, attempt */
#define TEXTS_PER_EMBED		(4 + 2 * FIELDS_PER_EMBED)
#define STAMP_MAX		40

#define COLOR_AHEAD		0x2ECC71
#define COLOR_BEHIND		0xE74C3C
#define COLOR_GOLD		0xF1C40F
#define COLOR_GREY		0x95A5A6
#define COLOR_NEUTRAL		0x3498DB
#define COLOR_OTHER		0x5865F2

/* Waits when Discord says to wait but not for how long, and the longest
 * wait believed: a later reply can always say more. */
#define PAUSE_DEFAULT_MS	1000
#define PAUSE_MAX_MS		(3600 * 1000)


#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#define ELLIPSIS	"\xe2\x80\xa6"
#define ZWSP		"\xe2\x80\x8b"
#define MINUS		"\xe2\x88\x92"
#define PLUSMINUS	"\xc2\xb1"

/* put_text flags */
#define TXT_MD		0x1	/* Discord renders markdown here */
#define TXT_LINES	0x2	/* keep newlines */
#define TXT_BOL		0x4	/* the text starts a line */

struct buf {
	char	*s;
	size_t	 len;
	size_t	 cap;
};

/* One text of an embed, with its length as Discord counts it. */
struct text {
	char	*s;		/* NULL: absent */
	size_t	 units;
	int	 md;		/* holds markdown escapes */
};

struct embed {
	struct text	 author;
	struct text	 title;
	struct text	 desc;
	struct text	 fname[FIELDS_PER_EMBED];
	struct text	 fvalue[FIELDS_PER_EMBED];
	size_t		 nfields;
	struct text	 footer;
	long		 color;
	char		 stamp[STAMP_MAX];
};

enum kind {
	K_START, K_SPLIT, K_GOLD, K_SKIP, K_UNDO, K_RESET, K_FINISH, K_PB,
	K_OTHER
};

static const struct kind_info {
	const char	*type;
	const char	*title;		/* when no split is named */
	const char	*title_split;	/* put before the split's name */
	long		 color;		/* unless pace decides */
} kinds[] = {
	[K_START] = { "speedrun.start", "Run started", NULL, COLOR_NEUTRAL },
	[K_SPLIT] = { "speedrun.split", "Split", "Split: ", COLOR_NEUTRAL },
	[K_GOLD] = { "speedrun.gold", "Gold segment", "Gold segment: ",
	    COLOR_GOLD },
	[K_SKIP] = { "speedrun.skip", "Split skipped", "Skipped: ",
	    COLOR_GREY },
	[K_UNDO] = { "speedrun.undo", "Split undone", "Undone: ",
	    COLOR_GREY },
	[K_RESET] = { "speedrun.reset", "Run reset", "Reset at ",
	    COLOR_GREY },
	[K_FINISH] = { "speedrun.finish", "Run finished", NULL,
	    COLOR_NEUTRAL },
	[K_PB] = { "speedrun.pb", "New personal best!", NULL, COLOR_GOLD },
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->cap - b->len < n + 1) {
		b->cap = b->cap * 2 + n + 64;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Start a new line unless b is empty. */
static void
buf_line(struct buf *b)
{
	if (b->len > 0)
		buf_add(b, "\n", 1);
}

/*
 * Decode the character at s[0..n), n > 0.  Returns how many bytes it
 * takes; a byte that does not start well-formed UTF-8 (overlong,
 * surrogate, above U+10FFFF, cut short) is taken alone as U+FFFD.
 */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp, int *bad)
{
	unsigned c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	*bad = 0;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		*cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		*cp = c & 0x0f;
		lo = c == 0xe0 ? 0xa0 : 0x80;
		hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		*cp = c & 0x07;
		lo = c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xf4 ? 0x8f : 0xbf;
	} else
		goto bad;
	if (n <= need || s[1] < lo || s[1] > hi)
		goto bad;
	for (i = 1; i <= need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			goto bad;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	return need + 1;

bad:
	*bad = 1;
	*cp = 0xfffd;
	return 1;
}

static size_t
cp_units(uint32_t cp)
{
	return cp >= 0x10000 ? 2 : 1;
}

static size_t
units_of(const char *s)
{
	size_t n = strlen(s), k, u = 0;
	uint32_t cp;
	int bad;

	for (; n > 0; s += k, n -= k) {
		k = utf8_next((const unsigned char *)s, n, &cp, &bad);
		u += cp_units(cp);
	}
	return u;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Whether s starts with word (lower case), ignoring ASCII case. */
static int
starts_ci(const char *s, const char *word)
{
	for (; *word != '\0'; s++, word++) {
		if (*s == '\0' || lower(*s) != *word)
			return 0;
	}
	return 1;
}

static int
is_bidi_control(uint32_t cp)
{
	return (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * Append untrusted text s to b, made safe as the comment at the top of
 * this file says.  flags: TXT_MD, TXT_LINES, TXT_BOL.
 * XXX: a bare URL in producer text keeps working as a link, but one with
 * _ ~ * or | in it gets backslashes that Discord may keep in the link;
 * leaving URLs alone would take a URL recognizer here.
 */
static void
put_text(struct buf *b, const char *s, int flags)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), k;
	int bol = (flags & TXT_BOL) != 0, bad;
	uint32_t cp;
	char c;

	for (; n > 0; p += k, n -= k) {
		k = utf8_next(p, n, &cp, &bad);
		c = cp < 0x80 ? (char)cp : 0;
		if (c == '\n' && (flags & TXT_LINES)) {
			buf_add(b, "\n", 1);
			bol = 1;
			continue;
		}
		if (c == '\n' || c == '\t' ||
		    (c == '\r' && !(flags & TXT_LINES)))
			c = ' ';
		else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) ||
		    is_bidi_control(cp))
			continue;
		if (c == ' ') {
			buf_add(b, " ", 1);
			continue;
		}
		if ((flags & TXT_MD) && c != 0 &&
		    (strchr("\\*_~`|[]", c) != NULL ||
		    (bol && strchr("#>-+", c) != NULL)))
			buf_add(b, "\\", 1);
		bol = 0;
		if (bad)
			buf_str(b, "\xef\xbf\xbd");
		else
			buf_add(b, (const char *)p, k);
		if (c == '<' || (c == '@' && (starts_ci((const char *)p + 1,
		    "everyone") || starts_ci((const char *)p + 1, "here"))))
			buf_str(b, ZWSP);
	}
}

static int
blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s != ' ' && *s != '\n')
			return 0;
	return 1;
}

/* Take b's string as t, cut to max units. */
static void text_fit(struct text *, size_t);

static void
text_set(struct text *t, struct buf *b, int md, size_t max)
{
	t->s = b->s != NULL ? b->s : xstrdup("");
	t->units = units_of(t->s);
	t->md = md;
	memset(b, 0, sizeof(*b));
	text_fit(t, max);
}

/*
 * Cut t to at most max units: the longest run of whole characters that
 * leaves room for the ellipsis, without white space or an escaping
 * backslash at its end.
 */
static void
text_fit(struct text *t, size_t max)
{
	size_t i = 0, u = 0, k, n, slashes, w;
	uint32_t cp;
	int bad;

	if (t->s == NULL || t->units <= max)
		return;
	if (max == 0) {
		t->s[0] = '\0';
		t->units = 0;
		return;
	}
	n = strlen(t->s);
	while (i < n) {
		k = utf8_next((unsigned char *)t->s + i, n - i, &cp, &bad);
		if (u + (w = cp_units(cp)) > max - 1)
			break;
		u += w;
		i += k;
	}
	/* Every character dropped below is one byte and one unit. */
	for (;;) {
		while (i > 0 && (t->s[i - 1] == ' ' || t->s[i - 1] == '\n')) {
			i--;
			u--;
		}
		for (slashes = 0; slashes < i && t->s[i - 1 - slashes] ==
		    '\\'; slashes++)
			;
		if (!t->md || slashes % 2 == 0)
			break;
		i--;
		u--;
	}
	t->s = xrealloc(t->s, i + sizeof(ELLIPSIS));
	memcpy(t->s + i, ELLIPSIS, sizeof(ELLIPSIS));
	t->units = u + 1;
}

static void
text_free(struct text *t)
{
	free(t->s);
	t->s = NULL;
}

static const char *
get_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A non-blank string member, or NULL. */
static const char *
get_text(const cJSON *obj, const char *key)
{
	const char *s = get_str(obj, key);
	const char *p;

	if (s == NULL)
		return NULL;
	for (p = s; *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'; p++)
		;
	return *p != '\0' ? s : NULL;
}

/* An integer member (as ctrd writes durations and counts), or -1. */
static int
get_int(const cJSON *obj, const char *key, int64_t *out)
{
	return json_int(cJSON_GetObjectItemCaseSensitive(obj, key), out);
}

/*
 * A duration as a stopwatch shows it; sign: 0 for '-' only when negative,
 * 1 for pace, which always has one.
 */
static void
fmt_time(char *buf, size_t len, int64_t ms, int sign)
{
	uint64_t u = ms < 0 ? -(uint64_t)ms : (uint64_t)ms;
	const char *s = "";
	uint64_t h = u / 3600000;

	if (ms < 0)
		s = MINUS;
	else if (sign)
		s = ms > 0 ? "+" : PLUSMINUS;
	if (h > 0)
		snprintf(buf, len, "%s%" PRIu64 ":%02u:%02u.%03u", s, h,
		    (unsigned)(u / 60000 % 60), (unsigned)(u / 1000 % 60),
		    (unsigned)(u % 1000));
	else
		snprintf(buf, len, "%s%u:%02u.%03u", s,
		    (unsigned)(u / 60000), (unsigned)(u / 1000 % 60),
		    (unsigned)(u % 1000));
}

/* "label **time**" (bold) or "label time" as a new line of d. */
static int
time_line(struct buf *d, const cJSON *detail, const char *key,
    const char *label, int bold)
{
	char t[40];
	int64_t ms;

	if (get_int(detail, key, &ms) == -1)
		return -1;
	fmt_time(t, sizeof(t), ms, 0);
	buf_line(d);
	buf_str(d, label);
	buf_str(d, bold ? " **" : " ");
	buf_str(d, t);
	if (bold)
		buf_str(d, "**");
	return 0;
}

/* "**-0:05.000** ahead" as a new line of d; sets *color. */
static void
pace_line(struct buf *d, const cJSON *detail, long *color)
{
	char t[40];
	int64_t ms;

	if (get_int(detail, "pace_ms", &ms) == -1)
		return;
	fmt_time(t, sizeof(t), ms, 1);
	buf_line(d);
	buf_str(d, "**");
	buf_str(d, t);
	buf_str(d, ms < 0 ? "** ahead" : ms > 0 ? "** behind" : "** even");
	if (color != NULL)
		*color = ms < 0 ? COLOR_AHEAD : ms > 0 ? COLOR_BEHIND :
		    COLOR_NEUTRAL;
}

/* Gold: the new best segment, the one it beat and the time saved. */
static void
gold_lines(struct buf *d, const cJSON *detail)
{
	char t[40];
	int64_t seg = 0, best, saved;
	int has_seg, has_best, has_saved;

	has_seg = time_line(d, detail, "segment_time_ms", "New best segment",
	    1) == 0 && get_int(detail, "segment_time_ms", &seg) == 0;
	has_best = get_int(detail, "best_segment_time_ms", &best) == 0 &&
	    !(has_seg && best == seg);
	has_saved = get_int(detail, "improvement_ms", &saved) == 0;
	if (!has_best && !has_saved)
		return;
	buf_line(d);
	if (has_best) {
		fmt_time(t, sizeof(t), best, 0);
		buf_str(d, "Previous best ");
		buf_str(d, t);
	}
	if (has_saved) {
		/* Sent as new minus old (negative) or as the time saved:
		 * either way its size is what was saved. */
		fmt_time(t, sizeof(t), saved < 0 ? -saved : saved, 0);
		buf_str(d, has_best ? ", saved " : "Saved ");
		buf_str(d, t);
	}
}

/* The lines before the message, by kind; may change *color. */
static void
describe(struct buf *d, enum kind k, const cJSON *detail, long *color)
{
	const cJSON *pb = cJSON_GetObjectItemCaseSensitive(detail,
	    "pb_pace");
	int64_t ms;
	char t[40];

	switch (k) {
	case K_SPLIT:
		pace_line(d, detail, color);
		time_line(d, detail, "segment_time_ms", "Segment", 0);
		if (cJSON_IsTrue(pb)) {
			buf_line(d);
			buf_str(d, "On personal-best pace");
			if (get_int(detail, "pace_ms", &ms) == -1)
				*color = COLOR_AHEAD;
		}
		break;
	case K_GOLD:
		gold_lines(d, detail);
		pace_line(d, detail, NULL);
		break;
	case K_SKIP:
	case K_UNDO:
		pace_line(d, detail, NULL);
		break;
	case K_RESET:
		time_line(d, detail, "run_time_ms", "Reset after", 1);
		pace_line(d, detail, NULL);
		break;
	case K_FINISH:
		time_line(d, detail, "run_time_ms", "Final time", 1);
		pace_line(d, detail, color);
		break;
	case K_PB:
		time_line(d, detail, "run_time_ms", "Final time", 1);
		if (get_int(detail, "improvement_ms", &ms) == 0) {
			fmt_time(t, sizeof(t), ms < 0 ? -ms : ms, 0);
			buf_line(d);
			buf_str(d, "Improved by **");
			buf_str(d, t);
			buf_str(d, "**");
		}
		break;
	case K_START:
	case K_OTHER:
		break;
	}
}

/* The producer's message, quoted, after a blank line. */
static void
message_lines(struct buf *d, const char *msg)
{
	struct buf q = { 0 };
	size_t i, n;

	put_text(&q, msg, TXT_MD | TXT_LINES | TXT_BOL);
	if (q.s == NULL || blank(q.s))
		goto done;
	for (n = q.len; q.s[n - 1] == ' ' || q.s[n - 1] == '\n'; n--)
		;
	for (i = 0; q.s[i] == ' ' || q.s[i] == '\n'; i++)
		;
	if (d->len > 0)
		buf_str(d, "\n\n");
	buf_str(d, "> ");
	for (; i < n; i++) {
		buf_add(d, q.s + i, 1);
		if (q.s[i] == '\n')
			buf_str(d, "> ");
	}

done:
	free(q.s);
}

static void
add_field(struct embed *e, const char *name, struct buf *value)
{
	struct text *t;

	if (value->s == NULL || blank(value->s)) {
		free(value->s);
		memset(value, 0, sizeof(*value));
		return;
	}
	t = &e->fname[e->nfields];
	t->s = xstrdup(name);
	t->units = units_of(name);
	t->md = 0;
	text_set(&e->fvalue[e->nfields++], value, 1, FIELD_VALUE_MAX);
}

static void
add_fields(struct embed *e, const cJSON *detail)
{
	struct buf v = { 0 };
	const char *s;
	int64_t x;
	char num[32];

	if ((s = get_text(detail, "game")) != NULL) {
		put_text(&v, s, TXT_MD | TXT_BOL);
		add_field(e, "Game", &v);
	}
	if ((s = get_text(detail, "category")) != NULL) {
		put_text(&v, s, TXT_MD | TXT_BOL);
		add_field(e, "Category", &v);
	}
	/* XXX: split_index is taken as counting from 0, as LiveSplit's
	 * CurrentSplitIndex does; the envelope does not say. */
	if (get_int(detail, "split_index", &x) == 0 && x >= 0) {
		snprintf(num, sizeof(num), "%" PRId64, x + 1);
		buf_str(&v, num);
		add_field(e, "Split", &v);
	}
	if (get_int(detail, "attempt", &x) == 0 && x >= 0) {
		snprintf(num, sizeof(num), "#%" PRId64, x);
		buf_str(&v, num);
		add_field(e, "Attempt", &v);
	}
}

/* RFC 3339 as ctrd writes it; anything else would make Discord refuse
 * the whole message, so it is left out. */
static void
set_stamp(struct embed *e, const char *time)
{
	size_t n;

	e->stamp[0] = '\0';
	if (time == NULL || (n = strlen(time)) < 20 || n >= STAMP_MAX ||
	    strspn(time, "0123456789-:.TZ+") != n || time[4] != '-' ||
	    time[10] != 'T')
		return;
	memcpy(e->stamp, time, n + 1);
}

static enum kind
kind_of(const char *type)
{
	size_t i;

	for (i = 0; type != NULL && i < NELEM(kinds); i++)
		if (strcmp(kinds[i].type, type) == 0)
			return (enum kind)i;
	return K_OTHER;
}

static void
embed_build(struct embed *e, const cJSON *env)
{
	const cJSON *detail = cJSON_GetObjectItemCaseSensitive(env, "detail");
	const char *type = get_str(env, "type"), *s;
	struct buf b = { 0 };
	enum kind k = kind_of(type);

	memset(e, 0, sizeof(*e));
	if (!cJSON_IsObject(detail))
		detail = NULL;
	if ((s = get_text(env, "producer")) != NULL) {
		put_text(&b, s, 0);
		text_set(&e->author, &b, 0, AUTHOR_MAX);
	}

	s = get_text(detail, "split");
	if (k == K_OTHER)
		put_text(&b, get_text(env, "type") != NULL ? type : "event",
		    TXT_MD | TXT_BOL);
	else if (kinds[k].title_split != NULL && s != NULL) {
		buf_str(&b, kinds[k].title_split);
		put_text(&b, s, TXT_MD);
	} else
		buf_str(&b, kinds[k].title);
	text_set(&e->title, &b, 1, TITLE_MAX);

	e->color = k == K_OTHER ? COLOR_OTHER : kinds[k].color;
	describe(&b, k, detail, &e->color);
	if ((s = get_text(detail, "message")) != NULL)
		message_lines(&b, s);
	if (b.len > 0)
		text_set(&e->desc, &b, 1, DESC_MAX);

	add_fields(e, detail);
	buf_str(&b, "Catch The Run");
	text_set(&e->footer, &b, 0, FOOTER_MAX);
	set_stamp(e, get_str(env, "time"));
}

/* Every text of e that counts toward the total; returns how many. */
static size_t
embed_texts(struct embed *e, struct text **v)
{
	size_t n = 0, i;

	v[n++] = &e->author;
	v[n++] = &e->title;
	v[n++] = &e->desc;
	v[n++] = &e->footer;
	for (i = 0; i < e->nfields; i++) {
		v[n++] = &e->fname[i];
		v[n++] = &e->fvalue[i];
	}
	return n;
}

static size_t
capped_sum(struct text *const *v, size_t n, size_t cap)
{
	size_t i, sum = 0;

	for (i = 0; i < n; i++)
		if (v[i]->s != NULL)
			sum += v[i]->units < cap ? v[i]->units : cap;
	return sum;
}

/*
 * Bring the message within Discord's total: the largest cap such that
 * every text cut to it fits (text_fit never leaves more than the cap).
 */
static void
fit_total(struct embed *e, size_t n)
{
	struct text *v[DISCORD_EMBEDS_MAX * TEXTS_PER_EMBED];
	size_t nv = 0, i, lo = 0, hi = DESC_MAX, mid;

	for (i = 0; i < n; i++)
		nv += embed_texts(&e[i], v + nv);
	if (capped_sum(v, nv, hi) <= TOTAL_MAX)
		return;
	while (lo < hi) {
		mid = (lo + hi + 1) / 2;
		if (capped_sum(v, nv, mid) <= TOTAL_MAX)
			lo = mid;
		else
			hi = mid - 1;
	}
	for (i = 0; i < nv; i++)
		text_fit(v[i], lo);
}

static cJSON *
embed_json(const struct embed *e)
{
	cJSON *o = cJSON_CreateObject(), *a, *fields, *f;
	size_t i;

	if (e->author.s != NULL && *e->author.s != '\0') {
		a = cJSON_AddObjectToObject(o, "author");
		cJSON_AddStringToObject(a, "name", e->author.s);
	}
	cJSON_AddStringToObject(o, "title", e->title.s);
	if (e->desc.s != NULL && *e->desc.s != '\0')
		cJSON_AddStringToObject(o, "description", e->desc.s);
	cJSON_AddNumberToObject(o, "color", (double)e->color);
	if (e->nfields > 0) {
		fields = cJSON_AddArrayToObject(o, "fields");
		for (i = 0; i < e->nfields; i++) {
			f = cJSON_CreateObject();
			cJSON_AddStringToObject(f, "name", e->fname[i].s);
			cJSON_AddStringToObject(f, "value", e->fvalue[i].s);
			cJSON_AddTrueToObject(f, "inline");
			cJSON_AddItemToArray(fields, f);
		}
	}
	a = cJSON_AddObjectToObject(o, "footer");
	cJSON_AddStringToObject(a, "text", e->footer.s);
	if (e->stamp[0] != '\0')
		cJSON_AddStringToObject(o, "timestamp", e->stamp);
	return o;
}

static void
embed_free(struct embed *e)
{
	size_t i;

	text_free(&e->author);
	text_free(&e->title);
	text_free(&e->desc);
	text_free(&e->footer);
	for (i = 0; i < e->nfields; i++) {
		text_free(&e->fname[i]);
		text_free(&e->fvalue[i]);
	}
}

char *
discord_message(const cJSON *const *envelopes, size_t n,
    const struct consumer_conf *cf, size_t *len)
{
	struct embed e[DISCORD_EMBEDS_MAX];
	struct buf b = { 0 };
	struct text name;
	cJSON *root, *arr, *am;
	char *out;
	size_t i;

	if (n == 0 || n > DISCORD_EMBEDS_MAX)
		fatalx("discord_message: %zu events in one message", n);
	for (i = 0; i < n; i++)
		embed_build(&e[i], envelopes[i]);
	fit_total(e, n);

	root = cJSON_CreateObject();
	if (cf->username != NULL && *cf->username != '\0') {
		put_text(&b, cf->username, 0);
		text_set(&name, &b, 0, USERNAME_MAX);
		if (*name.s != '\0')
			cJSON_AddStringToObject(root, "username", name.s);
		text_free(&name);
	}
	if (cf->avatar_url != NULL && *cf->avatar_url != '\0')
		cJSON_AddStringToObject(root, "avatar_url", cf->avatar_url);
	arr = cJSON_AddArrayToObject(root, "embeds");
	for (i = 0; i < n; i++) {
		cJSON_AddItemToArray(arr, embed_json(&e[i]));
		embed_free(&e[i]);
	}
	am = cJSON_AddObjectToObject(root, "allowed_mentions");
	cJSON_AddArrayToObject(am, "parse");

	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	*len = strlen(out);
	return out;
}

/* Whether the query parameter p[0..end) is named name. */
static int
param_is(const char *p, const char *end, const char *name)
{
	size_t n = strlen(name);

	return (size_t)(end - p) >= n && memcmp(p, name, n) == 0 &&
	    (p + n == end || p[n] == '=');
}

char *
discord_url(const struct consumer_conf *cf)
{
	const char *url = cf->url, *end, *q, *p, *amp, *t;
	struct buf b = { 0 };
	char sep = '?', hex[4];

	/* A fragment is never sent; one in the way of the query goes. */
	end = url + strcspn(url, "#");
	q = memchr(url, '?', end - url);
	buf_add(&b, url, (q != NULL ? q : end) - url);
	/* The operator's own parameters stay, but wait and thread_id are
	 * ours: a second copy would leave Discord to pick one. */
	for (p = q != NULL ? q + 1 : end; p < end; p = amp + 1) {
		if ((amp = memchr(p, '&', end - p)) == NULL)
			amp = end;
		if (amp > p && !param_is(p, amp, "wait") &&
		    (cf->thread_id == NULL ||
		    !param_is(p, amp, "thread_id"))) {
			buf_add(&b, &sep, 1);
			buf_add(&b, p, amp - p);
			sep = '&';
		}
	}
	buf_add(&b, &sep, 1);
	buf_str(&b, "wait=true");
	if (cf->thread_id != NULL) {
		buf_str(&b, "&thread_id=");
		for (t = cf->thread_id; *t != '\0'; t++) {
			if ((*t >= '0' && *t <= '9') || (*t >= 'a' &&
			    *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
			    strchr("-._~", *t) != NULL)
				buf_add(&b, t, 1);
			else {
				snprintf(hex, sizeof(hex), "%%%02X",
				    (unsigned char)*t);
				buf_str(&b, hex);
			}
		}
	}
	return b.s;
}

/* The first "/webhooks/" in s[0..n), ignoring ASCII case, or NULL. */
static const char *
find_webhooks(const char *s, size_t n)
{
	static const char word[] = "/webhooks/";
	size_t i, j;

	for (i = 0; i + sizeof(word) - 1 <= n; i++) {
		for (j = 0; word[j] != '\0' && lower(s[i + j]) == word[j];
		    j++)
			;
		if (word[j] == '\0')
			return s + i;
	}
	return NULL;
}

void
discord_redact(const char *url, char *buf, size_t len)
{
	const char *scheme, *host, *auth_end, *at, *path, *path_end, *hook;
	const char *keep;

	if (len == 0)
		return;
	if ((scheme = strstr(url, "://")) == NULL) {
		snprintf(buf, len, "***");
		return;
	}
	host = scheme + 3;
	auth_end = host + strcspn(host, "/?#");
	/* user:password@ is a secret too. */
	for (at = auth_end; at > host && at[-1] != '@'; at--)
		;
	if (at > host)
		host = at;
	path = auth_end;
	path_end = path + strcspn(path, "?#");
	/* Up to the webhook id; what follows it is the token (and any
	 * further path, and the query, are left out with it). */
	if ((hook = find_webhooks(path, path_end - path)) != NULL) {
		keep = hook + strlen("/webhooks/");
		keep += strcspn(keep, "/?#");
	} else
		keep = path;
	snprintf(buf, len, "%.*s%.*s%.*s/***", (int)(scheme + 3 - url), url,
	    (int)(auth_end - host), host, (int)(keep - path), path);
}

void
discord_limit_init(struct discord_limit *l)
{
	l->has_remaining = 0;
	l->remaining = 0;
	l->reset_after_ms = -1;
	l->retry_after_ms = -1;
	l->global = 0;
}

/*
 * Seconds as decimal text ("1", "0.640") to milliseconds, rounded up, so
 * that a wait never ends early.  Returns -1 unless s is exactly that.
 */
static int64_t
parse_seconds(const char *s)
{
	int64_t ms = 0;
	size_t n = 0;
	int i, rest = 0;

	for (; *s >= '0' && *s <= '9'; s++, n++)
		if (n < 12)
			ms = ms * 10 + (*s - '0');
	if (n == 0 || n > 12)
		return -1;
	ms *= 1000;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -1;
		for (i = 100; *s >= '0' && *s <= '9'; s++, i /= 10) {
			if (i > 0)
				ms += (*s - '0') * i;
			else if (*s != '0')
				rest = 1;
		}
	}
	return *s == '\0' ? ms + rest : -1;
}

/* Whether the header name s[0..end) is name (lower case). */
static int
name_is(const char *s, const char *end, const char *name)
{
	return (size_t)(end - s) == strlen(name) && starts_ci(s, name);
}

void
discord_limit_header(struct discord_limit *l, const char *line, size_t len)
{
	const char *colon, *v, *end = line + len, *name_end;
	char val[32];
	int64_t x;

	/* Each response starts over, so an interim one (100 Continue) or a
	 * redirect says nothing about the final reply. */
	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		discord_limit_init(l);
		return;
	}
	if ((colon = memchr(line, ':', len)) == NULL)
		return;
	for (name_end = colon; name_end > line && (name_end[-1] == ' ' ||
	    name_end[-1] == '\t'); name_end--)
		;
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r' || end[-1] == '\n'))
		end--;
	if ((size_t)(end - v) >= sizeof(val))
		return;
	memcpy(val, v, end - v);
	val[end - v] = '\0';

	if (name_is(line, name_end, "x-ratelimit-remaining")) {
		if (val[0] != '\0' && strspn(val, "0123456789") ==
		    strlen(val) && strlen(val) <= 12) {
			l->has_remaining = 1;
			l->remaining = strtol(val, NULL, 10);
		}
	} else if (name_is(line, name_end, "x-ratelimit-reset-after")) {
		if ((x = parse_seconds(val)) != -1)
			l->reset_after_ms = x;
	} else if (name_is(line, name_end, "x-ratelimit-global")) {
		l->global = strcasecmp(val, "true") == 0;
	} else if (name_is(line, name_end, "x-ratelimit-scope")) {
		if (strcasecmp(val, "global") == 0)
			l->global = 1;
	} else if (name_is(line, name_end, "retry-after")) {
		/* Discord sends seconds; an HTTP-date is read all the
		 * same, one already past as no wait. */
		if ((x = parse_seconds(val)) != -1)
			l->retry_after_ms = x;
		else if ((x = http_date_ms(val)) != -1)
			l->retry_after_ms = x > now_ms() ? x - now_ms() : 0;
	}
}

/* retry_after from a 429 body, in ms rounded up, or -1. */
static int64_t
body_retry_after(const char *body, size_t len)
{
	cJSON *doc;
	const cJSON *v;
	int64_t ms = -1, us;

	if (body == NULL || len == 0 ||
	    (doc = cJSON_ParseWithLength(body, len)) == NULL)
		return -1;
	v = cJSON_GetObjectItemCaseSensitive(doc, "retry_after");
	if (cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
	    v->valuedouble >= 0) {
		if (v->valuedouble >= PAUSE_MAX_MS / 1000)
			ms = PAUSE_MAX_MS;
		else {
			/* To whole microseconds first, so that 0.64 s,
			 * which is 640.0000000000001 ms as a double, is
			 * 640 ms and not 641. */
			us = (int64_t)(v->valuedouble * 1e6 + 0.5);
			ms = (us + 999) / 1000;
		}
	}
	cJSON_Delete(doc);
	return ms;
}

int
discord_limit_global(const struct discord_limit *l, long status,
    const char *body, size_t len)
{
	cJSON *doc;
	int global;

	if (status != 429)
		return 0;
	if (l->global)
		return 1;
	if (body == NULL || len == 0 ||
	    (doc = cJSON_ParseWithLength(body, len)) == NULL)
		return 0;
	global = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc,
	    "global"));
	cJSON_Delete(doc);
	return global;
}

int64_t
discord_pause_ms(const struct discord_limit *l, long status,
    const char *body, size_t len)
{
	int64_t ms;

	if (status == 429) {
		if ((ms = body_retry_after(body, len)) == -1)
			ms = l->retry_after_ms;
		if (ms == -1)
			ms = l->reset_after_ms;
	} else if (l->has_remaining && l->remaining == 0) {
		if ((ms = l->reset_after_ms) == -1)
			ms = l->retry_after_ms;
	} else
		return 0;
	if (ms == -1)
		ms = PAUSE_DEFAULT_MS;
	return ms > PAUSE_MAX_MS ? PAUSE_MAX_MS : ms;
}
