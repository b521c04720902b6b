/* Unit tests for src/discord.c: messages, limits, URLs, rate limits. */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "discord.h"
#include "tap.h"
#include "util.h"

#define STAMP	"2026-12-03T21:48:17.123Z"
#define ZW	"\xe2\x80\x8b"		/* zero-width space */
#define ELL	"\xe2\x80\xa6"		/* ellipsis */
#define MINUS	"\xe2\x88\x92"
#define PM	"\xc2\xb1"
#define EACUTE	"\xc3\xa9"
#define GRIN	"\xf0\x9f\x98\x80"	/* U+1F600, two UTF-16 units */

#define GREEN	0x2ECC71
#define RED	0xE74C3C
#define GOLD	0xF1C40F
#define GREY	0x95A5A6
#define BLUE	0x3498DB
#define OTHER	0x5865F2

static struct consumer_conf plain_cf;

static char *
repeat(const char *s, size_t n)
{
	size_t len = strlen(s), i;
	char *d = xmalloc(len * n + 1);

	for (i = 0; i < n; i++)
		memcpy(d + i * len, s, len);
	d[len * n] = '\0';
	return d;
}

/* An envelope from cyghfer, as ctrd makes them, with detail from text. */
static cJSON *
mkenv(const char *type, const char *detail)
{
	cJSON *env = cJSON_CreateObject();
	char *d = dq(detail);

	cJSON_AddStringToObject(env, "id", "01JEXAMPLE0000000000000000");
	cJSON_AddNumberToObject(env, "seq", 1);
	cJSON_AddStringToObject(env, "type", type);
	cJSON_AddStringToObject(env, "source", "livesplit");
	cJSON_AddStringToObject(env, "producer", "cyghfer");
	cJSON_AddStringToObject(env, "time", STAMP);
	cJSON_AddItemToObject(env, "detail", cJSON_Parse(d));
	free(d);
	return env;
}

static cJSON *
det(cJSON *env)
{
	return cJSON_GetObjectItem(env, "detail");
}

/* UTF-16 code units, counted here independently of discord.c. */
static size_t
u16(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	for (; *p != '\0'; p++) {
		if ((*p & 0xc0) != 0x80)
			n++;
		if (*p >= 0xf0)
			n++;
	}
	return n;
}

static const char *
sget(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *
sget2(const cJSON *o, const char *k1, const char *k2)
{
	return sget(cJSON_GetObjectItemCaseSensitive(o, k1), k2);
}

/*
 * Check a message body against every Discord limit, re-parsed from the
 * text.  Returns NULL, or what is wrong.
 */
static const char *
over_limits(const char *out, size_t len)
{
	static char why[200];
	const cJSON *embeds, *e, *f, *am, *parse;
	const char *s;
	size_t total = 0, ne = 0, nf;
	cJSON *root;

	if (out == NULL || strlen(out) != len)
		return "length does not match the text";
	if (!utf8_valid(out, len))
		return "not UTF-8";
	if ((root = cJSON_Parse(out)) == NULL)
		return "not JSON";
	why[0] = '\0';
	if ((s = sget(root, "content")) != NULL && u16(s) > 2000)
		snprintf(why, sizeof(why), "content %zu", u16(s));
	if ((s = sget(root, "username")) != NULL && (u16(s) > 80 ||
	    *s == '\0'))
		snprintf(why, sizeof(why), "username %zu", u16(s));
	am = cJSON_GetObjectItemCaseSensitive(root, "allowed_mentions");
	parse = cJSON_GetObjectItemCaseSensitive(am, "parse");
	if (!cJSON_IsArray(parse) || cJSON_GetArraySize(parse) != 0 ||
	    cJSON_GetArraySize(am) != 1)
		snprintf(why, sizeof(why), "allowed_mentions not {parse: []}");
	embeds = cJSON_GetObjectItemCaseSensitive(root, "embeds");
	if (!cJSON_IsArray(embeds) || cJSON_GetArraySize(embeds) < 1 ||
	    cJSON_GetArraySize(embeds) > 10)
		snprintf(why, sizeof(why), "embeds missing or over 10");
	cJSON_ArrayForEach(e, embeds) {
		ne++;
		if ((s = sget(e, "title")) == NULL || *s == '\0' ||
		    u16(s) > 256)
			snprintf(why, sizeof(why), "embed %zu title", ne);
		total += s != NULL ? u16(s) : 0;
		if ((s = sget(e, "description")) != NULL) {
			if (u16(s) > 4096 || *s == '\0')
				snprintf(why, sizeof(why), "embed %zu "
				    "description %zu", ne, u16(s));
			total += u16(s);
		}
		if ((s = sget2(e, "author", "name")) != NULL) {
			if (u16(s) > 256)
				snprintf(why, sizeof(why), "author %zu",
				    u16(s));
			total += u16(s);
		}
		if ((s = sget2(e, "footer", "text")) != NULL) {
			if (u16(s) > 2048)
				snprintf(why, sizeof(why), "footer");
			total += u16(s);
		}
		nf = 0;
		cJSON_ArrayForEach(f, cJSON_GetObjectItem(e, "fields")) {
			nf++;
			s = sget(f, "name");
			if (s == NULL || *s == '\0' || u16(s) > 256)
				snprintf(why, sizeof(why), "field name");
			total += s != NULL ? u16(s) : 0;
			s = sget(f, "value");
			if (s == NULL || *s == '\0' || u16(s) > 1024)
				snprintf(why, sizeof(why), "field value %zu",
				    s != NULL ? u16(s) : 0);
			total += s != NULL ? u16(s) : 0;
		}
		if (nf > 25)
			snprintf(why, sizeof(why), "%zu fields", nf);
	}
	if (total > 6000)
		snprintf(why, sizeof(why), "total %zu", total);
	cJSON_Delete(root);
	return why[0] != '\0' ? why : NULL;
}

/* Every character of every embed that Discord counts toward 6000. */
static size_t
total_units(const cJSON *root)
{
	const cJSON *e, *f;
	const char *s;
	size_t total = 0;

	cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "embeds")) {
		if ((s = sget(e, "title")) != NULL)
			total += u16(s);
		if ((s = sget(e, "description")) != NULL)
			total += u16(s);
		if ((s = sget2(e, "author", "name")) != NULL)
			total += u16(s);
		if ((s = sget2(e, "footer", "text")) != NULL)
			total += u16(s);
		cJSON_ArrayForEach(f, cJSON_GetObjectItem(e, "fields"))
			total += u16(sget(f, "name")) + u16(sget(f, "value"));
	}
	return total;
}

/* The message for envs[0..n), checked against the limits, parsed. */
static cJSON *
build(cJSON **envs, size_t n, const struct consumer_conf *cf,
    const char *what)
{
	const char *why;
	size_t len;
	cJSON *root;
	char *out;

	out = discord_message((const cJSON *const *)envs, n, cf, &len);
	why = over_limits(out, len);
	ok(why == NULL, "%s: within every Discord limit%s%s", what,
	    why ? ": " : "", why ? why : "");
	root = cJSON_Parse(out);
	free(out);
	return root;
}

/* One event's embed; the message is kept in *root for the caller. */
static const cJSON *
one(cJSON *env, cJSON **root, const char *what)
{
	*root = build(&env, 1, &plain_cf, what);
	cJSON_Delete(env);
	return cJSON_GetArrayItem(cJSON_GetObjectItem(*root, "embeds"), 0);
}

static long
color(const cJSON *e)
{
	const cJSON *c = cJSON_GetObjectItem(e, "color");

	return cJSON_IsNumber(c) ? (long)c->valuedouble : -1;
}

/* "name=value;..." of the embed's fields, all inline. */
static const char *
fields(const cJSON *e)
{
	static char buf[512];
	const cJSON *f;
	size_t n = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(f, cJSON_GetObjectItem(e, "fields")) {
		n += snprintf(buf + n, sizeof(buf) - n, "%s%s=%s%s",
		    n ? ";" : "", sget(f, "name"), sget(f, "value"),
		    cJSON_IsTrue(cJSON_GetObjectItem(f, "inline")) ? "" :
		    "(not inline)");
		if (n >= sizeof(buf))
			break;
	}
	return buf;
}

/* Check title, description (NULL: none) and colour of one event. */
static void
expect(cJSON *env, const char *title, const char *desc, long col,
    const char *what)
{
	const cJSON *e;
	cJSON *root;

	e = one(env, &root, what);
	is_str(sget(e, "title"), title, "%s: title", what);
	is_str(sget(e, "description"), desc, "%s: description", what);
	ok(color(e) == col, "%s: colour %06lX (got %06lX)", what, col,
	    color(e));
	cJSON_Delete(root);
}

static void
test_types(void)
{
	const cJSON *e;
	cJSON *root, *env;

	e = one(mkenv("speedrun.start", "{'game':'Super Mario 64',"
	    "'category':'16 Star','attempt':412}"), &root, "start");
	is_str(sget(e, "title"), "Run started", "start: title");
	ok(cJSON_GetObjectItem(e, "description") == NULL,
	    "start: no description when there is nothing to say");
	ok(color(e) == BLUE, "start: blue");
	is_str(fields(e), "Game=Super Mario 64;Category=16 Star;"
	    "Attempt=#412", "start: game, category, attempt as inline fields");
	is_str(sget2(e, "author", "name"), "cyghfer",
	    "author line is the producer");
	is_str(sget2(e, "footer", "text"), "Catch The Run",
	    "footer says Catch The Run");
	is_str(sget(e, "timestamp"), STAMP, "timestamp is the envelope time");
	cJSON_Delete(root);

	e = one(mkenv("speedrun.split", "{'game':'Super Mario 64',"
	    "'category':'16 Star','split':'Bob-omb Battlefield',"
	    "'split_index':0,'pace':'-0:00:05.000','pace_ms':-5000,"
	    "'segment_time':'0:01:23.456','segment_time_ms':83456}"), &root,
	    "split ahead");
	is_str(sget(e, "title"), "Split: Bob-omb Battlefield",
	    "split ahead: title names the split");
	is_str(sget(e, "description"), "**" MINUS "0:05.000** ahead\n"
	    "Segment 1:23.456", "split ahead: signed pace, then segment");
	ok(color(e) == GREEN, "split ahead: green");
	is_str(fields(e), "Game=Super Mario 64;Category=16 Star;Split=1",
	    "split: split number counts from 1");
	cJSON_Delete(root);

	expect(mkenv("speedrun.split", "{'game':'SM64','split':'Whomp',"
	    "'pace_ms':480}"), "Split: Whomp", "**+0:00.480** behind", RED,
	    "split behind");
	expect(mkenv("speedrun.split", "{'game':'SM64','split':'Whomp',"
	    "'pace_ms':0}"), "Split: Whomp", "**" PM "0:00.000** even", BLUE,
	    "split even");
	expect(mkenv("speedrun.split", "{'game':'SM64','split':'Bowser',"
	    "'pace_ms':3723004}"), "Split: Bowser", "**+1:02:03.004** behind",
	    RED, "split over an hour behind shows hours");
	expect(mkenv("speedrun.split", "{'game':'SM64','split':'Bowser',"
	    "'pace_ms':-60000}"), "Split: Bowser", "**" MINUS "1:00.000** "
	    "ahead", GREEN, "split a minute ahead");
	expect(mkenv("speedrun.split", "{'game':'SM64','split':'Lobby'}"),
	    "Split: Lobby", NULL, BLUE, "split without pace is neutral");
	expect(mkenv("speedrun.split", "{'game':'A Hat in Time',"
	    "'split':'Mafia Town','pb_pace':true,"
	    "'legacy_type':'speedrun.pb'}"), "Split: Mafia Town",
	    "On personal-best pace", GREEN,
	    "legacy on-PB-pace split without pace");
	expect(mkenv("speedrun.split", "{'game':'A Hat in Time',"
	    "'split':'Mafia Town','pace_ms':250,'pb_pace':true}"),
	    "Split: Mafia Town", "**+0:00.250** behind\nOn personal-best pace",
	    RED, "on-PB-pace split keeps the pace colour");

	expect(mkenv("speedrun.gold", "{'game':'Celeste','category':'Any%',"
	    "'split':'Forsaken City','segment_time_ms':112340,"
	    "'best_segment_time_ms':113100,'improvement_ms':-760}"),
	    "Gold segment: Forsaken City", "New best segment **1:52.340**\n"
	    "Previous best 1:53.100, saved 0:00.760", GOLD,
	    "gold with segment, previous best and saving");
	expect(mkenv("speedrun.gold", "{'game':'Celeste','split':'Old Site',"
	    "'segment_time_ms':200000,'improvement_ms':-1500,"
	    "'pace_ms':-2000}"), "Gold segment: Old Site",
	    "New best segment **3:20.000**\nSaved 0:01.500\n"
	    "**" MINUS "0:02.000** ahead", GOLD,
	    "gold with pace stays gold");
	expect(mkenv("speedrun.gold", "{'game':'Celeste','split':'X',"
	    "'segment_time_ms':1000,'best_segment_time_ms':1000}"),
	    "Gold segment: X", "New best segment **0:01.000**", GOLD,
	    "gold whose best is itself says no previous best");
	expect(mkenv("speedrun.skip", "{'game':'SM64','split':'Whomp'}"),
	    "Skipped: Whomp", NULL, GREY, "skip");
	expect(mkenv("speedrun.undo", "{'game':'SM64','split':'Whomp',"
	    "'pace_ms':-100}"), "Undone: Whomp", "**" MINUS "0:00.100** ahead",
	    GREY, "undo keeps grey with pace");
	expect(mkenv("speedrun.reset", "{'game':'SM64','split':'Dire, Dire "
	    "Docks','run_time_ms':754321}"), "Reset at Dire, Dire Docks",
	    "Reset after **12:34.321**", GREY, "reset at a split");
	expect(mkenv("speedrun.reset", "{'game':'SM64'}"), "Run reset",
	    NULL, GREY, "reset without a split");
	expect(mkenv("speedrun.finish", "{'game':'SM64','run_time_ms':938210,"
	    "'pace_ms':-1500}"), "Run finished", "Final time **15:38.210**\n"
	    "**" MINUS "0:01.500** ahead", GREEN, "finish ahead");
	expect(mkenv("speedrun.finish", "{'game':'SM64','run_time_ms':"
	    "5000000,'pace_ms':90000}"), "Run finished",
	    "Final time **1:23:20.000**\n**+1:30.000** behind", RED,
	    "finish behind");
	expect(mkenv("speedrun.finish", "{'game':'SM64','run_time_ms':1}"),
	    "Run finished", "Final time **0:00.001**", BLUE,
	    "finish without pace");
	expect(mkenv("speedrun.pb", "{'game':'SM64','run_time_ms':5921310,"
	    "'improvement_ms':-12345}"), "New personal best!",
	    "Final time **1:38:41.310**\nImproved by **0:12.345**", GOLD,
	    "personal best with new time and improvement");
	expect(mkenv("speedrun.pb", "{'game':'SM64','run_time_ms':5921310,"
	    "'improvement_ms':12345}"), "New personal best!",
	    "Final time **1:38:41.310**\nImproved by **0:12.345**", GOLD,
	    "improvement sent as a positive saving reads the same");
	expect(mkenv("speedrun.split", "{'game':'SM64','split':'BoB',"
	    "'pace_ms':-5000,'message':'gg\\nnext: WF'}"), "Split: BoB",
	    "**" MINUS "0:05.000** ahead\n\n> gg\n> next: WF", GREEN,
	    "producer's message quoted after the numbers");
	expect(mkenv("speedrun.start", "{'game':'SM64','message':"
	    "'\\n\\n  going for sub-15  \\n'}"), "Run started",
	    "> going for sub-15", BLUE, "message trimmed of blank lines");
	expect(mkenv("speedrun.start", "{'game':'SM64','message':' \\n '}"),
	    "Run started", NULL, BLUE, "blank message left out");
	expect(mkenv("speedrun.split", "{'game':'SM64','split':'BoB',"
	    "'pace_ms':'fast'}"), "Split: BoB", NULL, BLUE,
	    "pace that is not a number is left out");

	e = one(mkenv("stream.online", "{'game':'Celeste','category':'Any%',"
	    "'message':'Going live'}"), &root, "generic");
	is_str(sget(e, "title"), "stream.online", "generic: type as title");
	is_str(sget(e, "description"), "> Going live",
	    "generic: message as description");
	ok(color(e) == OTHER, "generic: its own colour");
	is_str(fields(e), "Game=Celeste;Category=Any%",
	    "generic: game and category fields");
	cJSON_Delete(root);
	expect(mkenv("speedrun.new_thing", "{'game':'SM64'}"),
	    "speedrun.new\\_thing", NULL, OTHER,
	    "unknown speedrun type is generic, escaped");

	env = mkenv("stream.note", "{}");
	cJSON_DeleteItemFromObject(env, "detail");
	cJSON_DeleteItemFromObject(env, "producer");
	cJSON_ReplaceItemInObject(env, "time", cJSON_CreateString("soon"));
	e = one(env, &root, "bare envelope");
	is_str(sget(e, "title"), "stream.note", "bare envelope: title");
	ok(cJSON_GetObjectItem(e, "author") == NULL,
	    "no producer: no author line");
	ok(cJSON_GetObjectItem(e, "fields") == NULL, "no detail: no fields");
	ok(cJSON_GetObjectItem(e, "timestamp") == NULL,
	    "time that is not RFC 3339 is left out");
	cJSON_Delete(root);

	env = mkenv("speedrun.split", "{'game':'','category':'  ',"
	    "'split':'BoB'}");
	e = one(env, &root, "empty fields");
	ok(cJSON_GetObjectItem(e, "fields") == NULL,
	    "empty and blank game/category make no field");
	cJSON_Delete(root);

	env = mkenv("x.y", "{}");
	cJSON_ReplaceItemInObject(env, "type", cJSON_CreateString(""));
	e = one(env, &root, "empty type");
	is_str(sget(e, "title"), "event", "empty type: generic title");
	cJSON_Delete(root);
}

static void
test_sender(void)
{
	struct consumer_conf cf;
	cJSON *root, *env;
	char *name;

	memset(&cf, 0, sizeof(cf));
	cf.username = "Catch The Run";
	cf.avatar_url = "https://example.com/a.png";
	env = mkenv("speedrun.start", "{'game':'SM64'}");
	root = build(&env, 1, &cf, "username");
	is_str(sget(root, "username"), "Catch The Run", "username from cf");
	is_str(sget(root, "avatar_url"), "https://example.com/a.png",
	    "avatar_url from cf");
	ok(cJSON_GetObjectItem(root, "content") == NULL, "no content");
	cJSON_Delete(root);

	root = build(&env, 1, &plain_cf, "no username");
	ok(cJSON_GetObjectItem(root, "username") == NULL &&
	    cJSON_GetObjectItem(root, "avatar_url") == NULL,
	    "no username or avatar_url when not configured");
	cJSON_Delete(root);

	name = repeat("n", 100);
	cf.username = name;
	root = build(&env, 1, &cf, "long username");
	ok(sget(root, "username") != NULL && u16(sget(root, "username")) ==
	    80, "username cut to 80");
	cJSON_Delete(root);
	free(name);
	cJSON_Delete(env);
}

static void
test_coalesce(void)
{
	cJSON *envs[DISCORD_EMBEDS_MAX], *root;
	const cJSON *embeds;
	char d[80], want[32];
	size_t i, n;
	int inorder = 1;

	for (i = 0; i < DISCORD_EMBEDS_MAX; i++) {
		snprintf(d, sizeof(d), "{'game':'SM64','split':'S%zu',"
		    "'split_index':%zu,'pace_ms':%d}", i + 1, i,
		    i % 2 ? 100 : -100);
		envs[i] = mkenv("speedrun.split", d);
	}
	root = build(envs, DISCORD_EMBEDS_MAX, &plain_cf, "ten splits");
	embeds = cJSON_GetObjectItem(root, "embeds");
	ok(cJSON_GetArraySize(embeds) == 10, "ten events, ten embeds");
	for (i = 0; i < DISCORD_EMBEDS_MAX; i++) {
		snprintf(want, sizeof(want), "Split: S%zu", i + 1);
		if (strcmp(sget(cJSON_GetArrayItem(embeds, (int)i), "title"),
		    want) != 0)
			inorder = 0;
	}
	ok(inorder, "embeds in the order of the events, oldest first");
	ok(color(cJSON_GetArrayItem(embeds, 0)) == GREEN &&
	    color(cJSON_GetArrayItem(embeds, 1)) == RED,
	    "each embed its own colour");
	cJSON_Delete(root);
	for (n = 2; n < DISCORD_EMBEDS_MAX; n += 3) {
		root = build(envs, n, &plain_cf, "a few splits");
		ok(cJSON_GetArraySize(cJSON_GetObjectItem(root, "embeds")) ==
		    (int)n, "%zu events, %zu embeds", n, n);
		cJSON_Delete(root);
	}
	for (i = 0; i < DISCORD_EMBEDS_MAX; i++)
		cJSON_Delete(envs[i]);
}

/* Whether s ends with the ellipsis, not after white space or a lone
 * escaping backslash. */
static int
clean_cut(const char *s)
{
	size_t n = strlen(s), k, slashes = 0;

	if (n < 3 || strcmp(s + n - 3, ELL) != 0)
		return 0;
	k = n - 3;
	if (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\n'))
		return 0;
	while (slashes < k && s[k - 1 - slashes] == '\\')
		slashes++;
	return slashes % 2 == 0;
}

static void
test_truncation(void)
{
	cJSON *root, *env, *envs[DISCORD_EMBEDS_MAX];
	const cJSON *e, *embeds;
	const char *s;
	char *t, *t2;
	size_t i, total;
	int all;

	t = repeat(EACUTE, 300);
	env = mkenv("speedrun.split", "{'game':'SM64'}");
	cJSON_AddStringToObject(det(env), "split", t);
	e = one(env, &root, "title of 300 e-acute");
	s = sget(e, "title");
	ok(s != NULL && u16(s) == 256, "title of 300 e-acute cut to 256 "
	    "(%zu)", s ? u16(s) : 0);
	ok(s != NULL && clean_cut(s), "title ends with an ellipsis");
	ok(s != NULL && strncmp(s, "Split: " EACUTE, 9) == 0 &&
	    strlen(s) == 7 + 248 * 2 + 3, "title keeps 248 whole e-acutes");
	cJSON_Delete(root);
	free(t);

	t = repeat(GRIN, 300);
	env = mkenv("speedrun.split", "{'game':'SM64'}");
	cJSON_AddStringToObject(det(env), "split", t);
	e = one(env, &root, "title of 300 emoji");
	s = sget(e, "title");
	ok(s != NULL && u16(s) == 256, "emoji count two units: 7 + 124 * 2 "
	    "+ 1 (%zu)", s ? u16(s) : 0);
	ok(s != NULL && strlen(s) == 7 + 124 * 4 + 3 && clean_cut(s),
	    "title keeps 124 whole emoji");
	cJSON_Delete(root);
	free(t);

	t2 = repeat(GRIN, 300);
	t = xmalloc(strlen(t2) + 2);
	t[0] = 'a';
	strcpy(t + 1, t2);
	env = mkenv("speedrun.split", "{'game':'SM64'}");
	cJSON_AddStringToObject(det(env), "split", t);
	e = one(env, &root, "emoji at an odd offset");
	s = sget(e, "title");
	ok(s != NULL && u16(s) == 255 && strlen(s) == 8 + 123 * 4 + 3,
	    "emoji that would straddle the limit is left out (%zu)",
	    s ? u16(s) : 0);
	cJSON_Delete(root);
	free(t);
	free(t2);

	t = repeat("x", 5000);
	env = mkenv("stream.note", "{}");
	cJSON_AddStringToObject(det(env), "message", t);
	e = one(env, &root, "description of 5000 characters");
	s = sget(e, "description");
	ok(s != NULL && u16(s) == 4096 && clean_cut(s),
	    "description cut to 4096 with an ellipsis (%zu)", s ? u16(s) : 0);
	cJSON_Delete(root);
	free(t);

	t = repeat(GRIN, 3000);
	env = mkenv("stream.note", "{}");
	cJSON_AddStringToObject(det(env), "message", t);
	e = one(env, &root, "description of 3000 emoji");
	s = sget(e, "description");
	ok(s != NULL && u16(s) <= 4096 && u16(s) >= 4095 && clean_cut(s),
	    "emoji description within 4096 units (%zu)", s ? u16(s) : 0);
	cJSON_Delete(root);
	free(t);

	t = repeat("*", 3000);
	env = mkenv("stream.note", "{}");
	cJSON_AddStringToObject(det(env), "message", t);
	e = one(env, &root, "description of escapes");
	s = sget(e, "description");
	ok(s != NULL && u16(s) <= 4096 && clean_cut(s),
	    "cut never leaves a backslash without what it escaped");
	cJSON_Delete(root);
	free(t);

	t = repeat("ab ", 700);
	env = mkenv("stream.note", "{}");
	cJSON_AddStringToObject(det(env), "game", t);
	e = one(env, &root, "long field value");
	s = sget(cJSON_GetArrayItem(cJSON_GetObjectItem(e, "fields"), 0),
	    "value");
	ok(s != NULL && u16(s) <= 1024 && clean_cut(s),
	    "field value cut to 1024 without white space before the "
	    "ellipsis");
	cJSON_Delete(root);
	free(t);

	t = repeat(EACUTE, 300);
	env = mkenv("speedrun.start", "{'game':'SM64'}");
	cJSON_ReplaceItemInObject(env, "producer", cJSON_CreateString(t));
	e = one(env, &root, "long producer");
	s = sget2(e, "author", "name");
	ok(s != NULL && u16(s) == 256 && clean_cut(s), "author cut to 256");
	cJSON_Delete(root);
	free(t);

	/* Ten embeds, each far over the total alone. */
	t = repeat(GRIN, 3000);
	t2 = repeat(EACUTE, 300);
	for (i = 0; i < DISCORD_EMBEDS_MAX; i++) {
		envs[i] = mkenv("speedrun.split", "{'category':'Any%',"
		    "'pace_ms':-5000,'split_index':3}");
		cJSON_AddStringToObject(det(envs[i]), "split", t2);
		cJSON_AddStringToObject(det(envs[i]), "game", t2);
		cJSON_AddStringToObject(det(envs[i]), "message", t);
	}
	root = build(envs, DISCORD_EMBEDS_MAX, &plain_cf, "ten large embeds");
	embeds = cJSON_GetObjectItem(root, "embeds");
	ok(cJSON_GetArraySize(embeds) == 10, "ten large embeds all kept");
	all = 1;
	cJSON_ArrayForEach(e, embeds) {
		s = sget(e, "description");
		if (s == NULL || !clean_cut(s) ||
		    strncmp(s, "**" MINUS "0:05.000** ahead", 21) != 0)
			all = 0;
		if (strncmp(sget(e, "title"), "Split: " EACUTE, 9) != 0)
			all = 0;
	}
	ok(all, "every large embed keeps its title start and pace line");
	total = total_units(root);
	ok(total > 5900 && total <= 6000,
	    "the budget is used, not wasted (%zu)", total);
	cJSON_Delete(root);
	for (i = 0; i < DISCORD_EMBEDS_MAX; i++)
		cJSON_Delete(envs[i]);
	free(t);
	free(t2);
}

/* The description made of the message msg, or NULL. */
static char *
msg_desc(const char *msg)
{
	cJSON *env = mkenv("stream.note", "{}"), *root;
	const cJSON *e;
	char *d;

	cJSON_AddStringToObject(det(env), "message", msg);
	e = one(env, &root, "message text");
	d = sget(e, "description") ? xstrdup(sget(e, "description")) : NULL;
	cJSON_Delete(root);
	return d;
}

static void
test_untrusted(void)
{
	cJSON *env, *root;
	const cJSON *e;
	size_t len;
	char *d, *out;

	d = msg_desc("@everyone @here look <@123> <@&456> <#789> <@!42>");
	is_str(d, "> @" ZW "everyone @" ZW "here look <" ZW "@123> <" ZW
	    "@&456> <" ZW "#789> <" ZW "@!42>",
	    "mentions broken by a zero-width space");
	free(d);
	d = msg_desc("@EVERYONE @Here </ban:1> <t:1:R>");
	is_str(d, "> @" ZW "EVERYONE @" ZW "Here <" ZW "/ban:1> <" ZW
	    "t:1:R>", "mentions in any case, commands and stamps too");
	free(d);
	d = msg_desc("mail me: a@example.com, @heretic");
	is_str(d, "> mail me: a@example.com, @" ZW "heretic",
	    "other @ left alone, @here as a prefix still broken");
	free(d);

	env = mkenv("speedrun.split", "{'game':'<@&1> @everyone'}");
	cJSON_AddStringToObject(det(env), "split", "@everyone");
	cJSON_ReplaceItemInObject(env, "producer",
	    cJSON_CreateString("@here<@1>"));
	out = discord_message((const cJSON *const *)&env, 1, &plain_cf,
	    &len);
	ok(strstr(out, "@everyone") == NULL && strstr(out, "@here") ==
	    NULL && strstr(out, "<@") == NULL && strstr(out, "<#") == NULL,
	    "no mention survives anywhere in the message");
	ok(strstr(out, "\"allowed_mentions\":{\"parse\":[]}") != NULL,
	    "allowed_mentions parses nothing");
	free(out);
	e = one(env, &root, "mentions everywhere");
	is_str(sget(e, "title"), "Split: @" ZW "everyone", "title mention");
	is_str(sget2(e, "author", "name"), "@" ZW "here<" ZW "@1>",
	    "author mention");
	is_str(fields(e), "Game=<" ZW "@&1> @" ZW "everyone",
	    "field mention");
	cJSON_Delete(root);

	d = msg_desc("[free nitro](https://evil.example) **WR** __u__ "
	    "~~s~~ ||spoiler|| `code` a\\b");
	is_str(d, "> \\[free nitro\\](https://evil.example) \\*\\*WR\\*\\* "
	    "\\_\\_u\\_\\_ \\~\\~s\\~\\~ \\|\\|spoiler\\|\\| "
	    "\\`code\\` a\\\\b",
	    "masked links, emphasis, spoilers, code escaped");
	free(d);
	d = msg_desc("# Big\n## Header\n-# small\n> quote\n  - item\n+ x\n"
	    "a # b - c > d");
	is_str(d, "> \\# Big\n> \\## Header\n> \\-# small\n> \\> quote\n"
	    ">   \\- item\n> \\+ x\n> a # b - c > d",
	    "headers, subtext, quotes, lists escaped only at line start");
	free(d);
	d = msg_desc("one\r\ntwo\tthree\x01\x7f");
	is_str(d, "> one\n> two three", "CR, tab and controls cleaned");
	free(d);
	d = msg_desc("ok\xff\xc3 \xed\xa0\x80!");
	is_str(d, "> ok\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd"
	    "\xef\xbf\xbd!", "bytes that are not UTF-8 become U+FFFD");
	free(d);

	env = mkenv("speedrun.split", "{'game':'**Fake** Game'}");
	cJSON_AddStringToObject(det(env), "split",
	    "Line1\nLine2\tabc\xe2\x80\xae" "def[x](y)");
	cJSON_ReplaceItemInObject(env, "producer",
	    cJSON_CreateString("cyg_hfer**"));
	e = one(env, &root, "title text");
	is_str(sget(e, "title"), "Split: Line1 Line2 abcdef\\[x\\](y)",
	    "title on one line, bidi override dropped, link escaped");
	is_str(fields(e), "Game=\\*\\*Fake\\*\\* Game",
	    "field value escaped");
	is_str(sget2(e, "author", "name"), "cyg_hfer**",
	    "author name is plain text, not escaped");
	cJSON_Delete(root);
}

static void
url_is(const char *url, const char *thread, const char *want,
    const char *what)
{
	struct consumer_conf cf;
	char *got;

	memset(&cf, 0, sizeof(cf));
	cf.url = (char *)url;
	cf.thread_id = (char *)thread;
	got = discord_url(&cf);
	is_str(got, want, "url: %s", what);
	free(got);
}

static void
test_url(void)
{
	url_is("https://discord.com/api/webhooks/123/tok", NULL,
	    "https://discord.com/api/webhooks/123/tok?wait=true",
	    "wait=true added");
	url_is("https://discord.com/api/webhooks/123/tok", "999",
	    "https://discord.com/api/webhooks/123/tok?wait=true&thread_id=999",
	    "thread_id added");
	url_is("https://x/api/webhooks/1/t?foo=bar", NULL,
	    "https://x/api/webhooks/1/t?foo=bar&wait=true",
	    "existing query kept");
	url_is("https://x/api/webhooks/1/t?wait=false&foo=1&waiting=2", NULL,
	    "https://x/api/webhooks/1/t?foo=1&waiting=2&wait=true",
	    "the operator's wait replaced");
	url_is("https://x/api/webhooks/1/t?thread_id=1", "2",
	    "https://x/api/webhooks/1/t?wait=true&thread_id=2",
	    "thread_id in the URL replaced by the configured one");
	url_is("https://x/api/webhooks/1/t?thread_id=1", NULL,
	    "https://x/api/webhooks/1/t?thread_id=1&wait=true",
	    "thread_id in the URL kept when none is configured");
	url_is("https://x/api/webhooks/1/t#frag", NULL,
	    "https://x/api/webhooks/1/t?wait=true", "fragment dropped");
	url_is("https://x/api/webhooks/1/t?&", "a b&c",
	    "https://x/api/webhooks/1/t?wait=true&thread_id=a%20b%26c",
	    "empty parameters dropped, thread_id percent-encoded");
}

static void
redact_is(const char *url, const char *want, const char *what)
{
	char buf[256];

	memset(buf, 'Z', sizeof(buf));
	discord_redact(url, buf, sizeof(buf));
	is_str(buf, want, "redact: %s", what);
}

static void
test_redact(void)
{
	char small[16];

	redact_is("https://discord.com/api/webhooks/123/TOKEN",
	    "https://discord.com/api/webhooks/123/***", "discord.com");
	redact_is("http://127.0.0.1:8080/api/webhooks/123/tok-secret"
	    "?wait=true&thread_id=5",
	    "http://127.0.0.1:8080/api/webhooks/123/***",
	    "any host, query left off");
	redact_is("https://canary.discord.com/api/v10/webhooks/1/abc/slack",
	    "https://canary.discord.com/api/v10/webhooks/1/***",
	    "path after the token left off");
	redact_is("https://user:pw@host/api/webhooks/1/tok",
	    "https://host/api/webhooks/1/***", "userinfo left off");
	redact_is("https://host/API/Webhooks/1/tok",
	    "https://host/API/Webhooks/1/***", "path in any case");
	redact_is("https://host/hooks/secret", "https://host/***",
	    "not a webhook path: whole path hidden");
	redact_is("https://host/api/webhooks/1", "https://host/api/webhooks/1"
	    "/***", "no token segment");
	redact_is("not a url TOKEN", "***", "not a URL at all");

	discord_redact("https://discord.com/api/webhooks/123/TOKEN", small,
	    sizeof(small));
	ok(strlen(small) == sizeof(small) - 1 && strstr(small, "TOK") ==
	    NULL, "short buffer: cut and terminated, no token");
	small[0] = 'q';
	discord_redact("https://x/y", small, 0);
	ok(small[0] == 'q', "zero-length buffer left alone");
}

static void
hdr(struct discord_limit *l, const char *line)
{
	discord_limit_header(l, line, strlen(line));
}

static void
test_limits(void)
{
	struct discord_limit l;
	const char *body;
	char date[64];
	struct tm tm;
	time_t ahead;

	discord_limit_init(&l);
	ok(!l.has_remaining && l.reset_after_ms == -1 &&
	    l.retry_after_ms == -1, "init: nothing known");
	ok(discord_pause_ms(&l, 200, NULL, 0) == 0, "nothing known: no wait");

	hdr(&l, "X-RateLimit-Remaining: 4\r\n");
	ok(l.has_remaining && l.remaining == 4, "remaining read");
	hdr(&l, "x-ratelimit-remaining:0");
	ok(l.has_remaining && l.remaining == 0,
	    "remaining in lower case, no space");
	hdr(&l, "X-RATELIMIT-RESET-AFTER: 0.640\r\n");
	ok(l.reset_after_ms == 640, "reset-after in fractional seconds");
	hdr(&l, "X-RateLimit-Reset-After:\t1 \t\r\n");
	ok(l.reset_after_ms == 1000, "reset-after whole seconds, padded");
	hdr(&l, "X-RateLimit-Reset-After: 0.0641\r\n");
	ok(l.reset_after_ms == 65, "reset-after rounded up to whole ms");
	hdr(&l, "X-RateLimit-Reset-After: 2.5000\r\n");
	ok(l.reset_after_ms == 2500, "trailing zeros do not round up");
	hdr(&l, "Retry-After: 2\r\n");
	ok(l.retry_after_ms == 2000, "Retry-After read");
	hdr(&l, "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n");
	ok(l.retry_after_ms == 0, "a Retry-After date already past is no "
	    "wait");
	ahead = time(NULL) + 5;
	gmtime_r(&ahead, &tm);
	strftime(date, sizeof(date), "Retry-After: %a, %d %b %Y %H:%M:%S "
	    "GMT\r\n", &tm);
	hdr(&l, date);
	ok(l.retry_after_ms > 3000 && l.retry_after_ms <= 5000,
	    "a Retry-After date 5 s ahead is a wait of up to 5 s");
	hdr(&l, "Retry-After: Wed, 21 Oct 2015 07:28:00 UTC\r\n");
	ok(l.retry_after_ms > 3000, "a Retry-After that is neither seconds "
	    "nor an HTTP-date changes nothing");
	hdr(&l, "X-RateLimit-Remaining: -1\r\n");
	hdr(&l, "X-RateLimit-Remaining: 3abc\r\n");
	hdr(&l, "X-RateLimit-Remaining:\r\n");
	ok(l.remaining == 0, "bad remaining values ignored");
	hdr(&l, "X-RateLimit-Reset-After: .5\r\n");
	hdr(&l, "X-RateLimit-Reset-After: 1.\r\n");
	hdr(&l, "X-RateLimit-Reset-After: -1\r\n");
	ok(l.reset_after_ms == 2500, "bad reset-after values ignored");
	hdr(&l, "X-RateLimit-Reset: 1470173023.123\r\n");
	hdr(&l, "X-RateLimit-Remaining-Foo: 9\r\n");
	hdr(&l, "X-RateLimit-Remaining\r\n");
	ok(l.remaining == 0 && l.reset_after_ms == 2500,
	    "other headers and lines without a colon ignored");
	discord_limit_header(&l, "Retry-After: 3XYZ", 14);
	ok(l.retry_after_ms == 3000, "only len bytes of the line read");
	hdr(&l, "HTTP/1.1 200 OK\r\n");
	ok(!l.has_remaining && l.reset_after_ms == -1 &&
	    l.retry_after_ms == -1, "a status line starts over");

	hdr(&l, "X-RateLimit-Remaining: 3\r\n");
	hdr(&l, "X-RateLimit-Reset-After: 0.5\r\n");
	ok(discord_pause_ms(&l, 200, NULL, 0) == 0,
	    "remaining left: no wait");
	hdr(&l, "X-RateLimit-Remaining: 0\r\n");
	ok(discord_pause_ms(&l, 200, "{}", 2) == 500,
	    "remaining 0: wait reset-after");
	ok(discord_pause_ms(&l, 204, NULL, 0) == 500,
	    "remaining 0 on any status");
	discord_limit_init(&l);
	hdr(&l, "X-RateLimit-Remaining: 0\r\n");
	ok(discord_pause_ms(&l, 200, NULL, 0) == 1000,
	    "remaining 0 without reset-after: a default wait");

	discord_limit_init(&l);
	hdr(&l, "Retry-After: 1\r\n");
	hdr(&l, "X-RateLimit-Reset-After: 0.3\r\n");
	body = "{\"message\": \"You are being rate limited.\", "
	    "\"retry_after\": 0.64, \"global\": false}";
	ok(discord_pause_ms(&l, 429, body, strlen(body)) == 640,
	    "429: retry_after in the body wins, 0.64 s is 640 ms");
	body = "{\"retry_after\": 1.2345}";
	ok(discord_pause_ms(&l, 429, body, strlen(body)) == 1235,
	    "429: body retry_after rounded up");
	body = "{\"retry_after\": 0}";
	ok(discord_pause_ms(&l, 429, body, strlen(body)) == 0,
	    "429: retry_after 0 means no wait");
	body = "<html>slow down</html>";
	ok(discord_pause_ms(&l, 429, body, strlen(body)) == 1000,
	    "429 without JSON: Retry-After header");
	body = "{\"retry_after\": -3}";
	ok(discord_pause_ms(&l, 429, body, strlen(body)) == 1000,
	    "429 with negative retry_after: header");
	body = "{\"retry_after\": \"0.5\"}";
	ok(discord_pause_ms(&l, 429, body, strlen(body)) == 1000,
	    "429 with retry_after as text: header");
	body = "{\"retry_after\": 0.5, \"x\": ";
	ok(discord_pause_ms(&l, 429, body, 20) == 1000,
	    "429 body cut at len is not JSON: header");
	body = "{\"retry_after\": 1e300}";
	ok(discord_pause_ms(&l, 429, body, strlen(body)) == 3600000,
	    "429 with an absurd retry_after: capped at an hour");
	discord_limit_init(&l);
	hdr(&l, "X-RateLimit-Reset-After: 0.3\r\n");
	ok(discord_pause_ms(&l, 429, "{}", 2) == 300,
	    "429 without retry_after: reset-after");
	discord_limit_init(&l);
	ok(discord_pause_ms(&l, 429, NULL, 0) == 1000,
	    "429 with nothing: a default wait");
	hdr(&l, "Retry-After: 5\r\n");
	hdr(&l, "X-RateLimit-Remaining: 1\r\n");
	ok(discord_pause_ms(&l, 503, NULL, 0) == 0,
	    "503 with Retry-After is not a rate limit");
}

static void
test_global(void)
{
	struct discord_limit l;
	const char *body = "{\"message\":\"You are being rate limited.\","
	    "\"retry_after\":1.5,\"global\":true}";
	const char *local = "{\"retry_after\":1.5,\"global\":false}";

	discord_limit_init(&l);
	ok(!discord_limit_global(&l, 429, local, strlen(local)),
	    "429 with \"global\": false is this webhook's own limit");
	ok(discord_limit_global(&l, 429, body, strlen(body)),
	    "429 with \"global\": true is the global limit");
	ok(!discord_limit_global(&l, 200, body, strlen(body)),
	    "only a 429 is a limit, whatever its body says");
	ok(!discord_limit_global(&l, 429, "{\"global\":1}", 12),
	    "\"global\": 1 is not true");
	ok(!discord_limit_global(&l, 429, "not json", 8),
	    "a body that does not parse says nothing");
	hdr(&l, "X-RateLimit-Global: true\r\n");
	ok(l.global && discord_limit_global(&l, 429, NULL, 0),
	    "X-RateLimit-Global: true says global without a body");
	discord_limit_init(&l);
	hdr(&l, "x-ratelimit-scope: GLOBAL\r\n");
	ok(discord_limit_global(&l, 429, local, strlen(local)),
	    "X-RateLimit-Scope: global says global, in any case");
	discord_limit_init(&l);
	hdr(&l, "X-RateLimit-Scope: user\r\n");
	ok(!discord_limit_global(&l, 429, NULL, 0),
	    "X-RateLimit-Scope: user is not global");
	hdr(&l, "X-RateLimit-Global: true\r\n");
	hdr(&l, "HTTP/1.1 200 OK\r\n");
	ok(!l.global, "a new status line forgets what the last reply said");
}

int
main(void)
{
	util_init();
	test_types();
	test_sender();
	test_coalesce();
	test_truncation();
	test_untrusted();
	test_url();
	test_redact();
	test_limits();
	test_global();
	return done();
}
