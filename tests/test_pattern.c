/* Unit tests for pattern.c: every operator, the edge cases, the errors. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pattern.h"
#include "util.h"
#include "tap.h"

/* Patterns and events are written with ' for " so they stay readable. */
static const char *envelope =
    "{'id':'01J9ZQ3K8HXW','type':'speedrun.split','source':'livesplit',"
    "'producer':'cyghfer','seq':42,'time':'2026-03-01T20:15:00.000Z',"
    "'detail':{'game':'Super Mario 64','category':'16 Star','split':'BoB',"
    "'pace':'-0:00:05.000','pace_ms':-5000,'tags':['a','b']}}";

static cJSON *
parse(const char *text)
{
	cJSON *j;
	char *s, *p;

	s = xstrdup(text);
	for (p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	if ((j = cJSON_Parse(s)) == NULL) {
		printf("Bail out! test JSON does not parse: %s\n", s);
		exit(1);
	}
	free(s);
	return j;
}

/* Returns 1 or 0 as pattern_match does, -1 if the pattern is refused. */
static int
match(const char *pat, const char *ev)
{
	cJSON *pj, *ej;
	struct pattern *p;
	char err[256];
	int r;

	pj = parse(pat);
	ej = parse(ev);
	if ((p = pattern_compile(pj, NULL, err, sizeof(err))) == NULL) {
		printf("# %s: refused: %s\n", pat, err);
		r = -1;
	} else
		r = pattern_match(p, ej);
	pattern_free(p);
	cJSON_Delete(pj);
	cJSON_Delete(ej);
	return r;
}

static int
yes(const char *pat, const char *ev)
{
	return match(pat, ev) == 1;
}

static int
no(const char *pat, const char *ev)
{
	return match(pat, ev) == 0;
}

/* Follow a JSON-pointer-like path ("/detail/0/prefix") from root. */
static const cJSON *
item_at(const cJSON *root, const char *path)
{
	char buf[256], *tok, *save;
	const cJSON *cur = root;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, "/", &save); tok != NULL && cur != NULL;
	    tok = strtok_r(NULL, "/", &save)) {
		if (cJSON_IsArray(cur))
			cur = cJSON_GetArrayItem(cur, atoi(tok));
		else
			cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
	}
	return cur;
}

/* Three checks: refused, with this message, blaming the item at path. */
static void
refused(const char *name, const char *pat, const char *want,
    const char *path)
{
	const cJSON *bad = NULL, *expect;
	struct pattern *p;
	char err[256];
	cJSON *pj;

	pj = parse(pat);
	expect = item_at(pj, path);
	p = pattern_compile(pj, &bad, err, sizeof(err));
	ok(p == NULL, "error %s: pattern refused", name);
	is_str(p == NULL ? err : "(compiled)", want, "error %s: message",
	    name);
	ok(expect != NULL && bad == expect, "error %s: *bad is %s", name,
	    path);
	pattern_free(p);
	cJSON_Delete(pj);
}

static void
test_literals(void)
{
	const char *e = envelope;

	ok(yes("{'source':['livesplit']}", e), "string literal matches");
	ok(no("{'source':['obs']}", e), "other string does not match");
	ok(yes("{'source':['obs','livesplit']}", e),
	    "any literal in the list may match");
	ok(no("{'source':['LiveSplit']}", e), "literals are case-sensitive");
	ok(yes("{'seq':[42]}", e), "number literal matches");
	ok(yes("{'seq':[42.0]}", e), "42.0 matches 42: numeric comparison");
	ok(yes("{'seq':[4.2e1]}", "{'seq':42.0}"), "exponent form matches");
	ok(no("{'seq':[41]}", e), "other number does not match");
	ok(no("{'seq':['42']}", e), "string \"42\" does not match number 42");
	ok(no("{'n':[42]}", "{'n':'42'}"),
	    "number 42 does not match string \"42\"");
	ok(yes("{'live':[true]}", "{'live':true}"), "true matches true");
	ok(no("{'live':[false]}", "{'live':true}"), "false misses true");
	ok(yes("{'live':[false]}", "{'live':false}"), "false matches false");
	ok(no("{'live':[true]}", "{'live':'true'}"),
	    "true does not match the string \"true\"");
	ok(yes("{'x':[null]}", "{'x':null}"), "null matches null");
	ok(no("{'x':[null]}", "{'x':''}"), "null misses the empty string");
	ok(no("{'x':['']}", "{'x':null}"), "empty string misses null");
	ok(yes("{'x':['']}", "{'x':''}"), "empty string matches itself");
	ok(no("{'x':[null]}", "{'y':1}"),
	    "null does not match a missing field");
	ok(yes("{'source':['livesplit'],'type':['speedrun.split']}", e),
	    "all fields must match: both do");
	ok(no("{'source':['livesplit'],'type':['speedrun.reset']}", e),
	    "all fields must match: one does not");
	ok(no("{'nope':['livesplit']}", e), "literal misses a missing field");
	ok(yes("{}", e), "empty pattern matches everything");
	ok(yes("{}", "{}"), "empty pattern matches an empty event");
}

static void
test_structure(void)
{
	const char *e = envelope;
	const char *runs = "{'runs':[{'game':'a','cat':'x'},"
	    "{'game':'b','cat':'y'}, 'loose']}";

	ok(yes("{'detail':{'game':['Super Mario 64']}}", e),
	    "nested pattern matches nested field");
	ok(no("{'detail':{'game':['Zelda']}}", e),
	    "nested pattern with other value misses");
	ok(no("{'detail':{'game':['Super Mario 64']}}",
	    "{'detail':'Super Mario 64'}"),
	    "nested pattern misses a string where an object was expected");
	ok(no("{'game':['Super Mario 64']}", e),
	    "a nested field is not found at the top level");
	ok(no("{'detail':['x']}", e), "matcher list misses an object field");
	ok(no("{'detail':[{'prefix':''}]}", e),
	    "prefix misses an object field");
	ok(no("{'detail':[{'anything-but':'x'}]}", e),
	    "anything-but misses an object field");
	ok(yes("{'detail':{'tags':['b']}}", e),
	    "array field matches when an element matches");
	ok(no("{'detail':{'tags':['c']}}", e),
	    "array field misses when no element matches");
	ok(no("{'tags':['a']}", "{'tags':[]}"), "empty array matches nothing");
	ok(yes("{'t':['c']}", "{'t':[['a','b'],['c']]}"),
	    "arrays inside arrays are searched");
	ok(yes("{'runs':{'game':['b'],'cat':['y']}}", runs),
	    "nested pattern matches one object of an array");
	ok(no("{'runs':{'game':['a'],'cat':['y']}}", runs),
	    "fields are not combined across array elements");
	ok(no("{'runs':{'game':[{'exists':false}]}}", runs),
	    "exists:false below an array of objects that have the field");
	ok(yes("{'runs':{'level':[{'exists':false}]}}", runs),
	    "exists:false below an array of objects without the field");
	ok(yes("{'detail':{'a':{'b':{'c':[1]}}}}",
	    "{'detail':{'a':{'b':{'c':1}}}}"), "three levels deep matches");
	ok(no("{'detail':{'a':{'b':{'c':[1]}}}}", "{'detail':{'a':{}}}"),
	    "missing intermediate object misses");
}

static void
test_strings(void)
{
	const char *e = envelope;

	ok(yes("{'detail':{'game':[{'prefix':'Super'}]}}", e), "prefix hit");
	ok(no("{'detail':{'game':[{'prefix':'super'}]}}", e),
	    "prefix is case-sensitive");
	ok(yes("{'detail':{'game':[{'prefix':''}]}}", e),
	    "empty prefix matches any string");
	ok(no("{'detail':{'split':[{'prefix':'BoBomb'}]}}", e),
	    "prefix longer than the value misses");
	ok(no("{'seq':[{'prefix':'4'}]}", e), "prefix misses a number");
	ok(yes("{'detail':{'game':[{'prefix':"
	    "{'equals-ignore-case':'sUPER m'}}]}}", e),
	    "prefix ignoring case hits");
	ok(no("{'detail':{'game':[{'prefix':"
	    "{'equals-ignore-case':'mario'}}]}}", e),
	    "prefix ignoring case still anchors at the start");
	ok(yes("{'detail':{'game':[{'suffix':' 64'}]}}", e), "suffix hit");
	ok(no("{'detail':{'game':[{'suffix':'Mario'}]}}", e), "suffix miss");
	ok(no("{'detail':{'game':[{'suffix':'mario 64'}]}}", e),
	    "suffix is case-sensitive");
	ok(yes("{'detail':{'game':[{'suffix':"
	    "{'equals-ignore-case':'MARIO 64'}}]}}", e),
	    "suffix ignoring case hits");
	ok(no("{'n':[{'suffix':'2'}]}", "{'n':42}"), "suffix misses a number");
	ok(yes("{'detail':{'game':[{'equals-ignore-case':'super MARIO 64'}]}}",
	    e), "equals-ignore-case hits");
	ok(no("{'detail':{'game':[{'equals-ignore-case':'super mario'}]}}", e),
	    "equals-ignore-case needs the whole value");
	ok(no("{'x':[{'equals-ignore-case':'\\u00e9t\\u00e9'}]}",
	    "{'x':'\\u00c9T\\u00c9'}"),
	    "equals-ignore-case folds ASCII only, not \\u00c9");
	ok(no("{'x':[{'equals-ignore-case':'1'}]}", "{'x':1}"),
	    "equals-ignore-case misses a number");
}

static void
test_wildcard(void)
{
	const char *e = envelope;

	ok(yes("{'detail':{'game':[{'wildcard':'Super*64'}]}}", e),
	    "wildcard with a star inside");
	ok(yes("{'detail':{'game':[{'wildcard':'*Mario*'}]}}", e),
	    "wildcard with stars at both ends");
	ok(yes("{'detail':{'game':[{'wildcard':'S*r M*o*4'}]}}", e),
	    "wildcard with several stars");
	ok(no("{'detail':{'game':[{'wildcard':'S*z*4'}]}}", e),
	    "wildcard misses when a middle piece is absent");
	ok(yes("{'x':[{'wildcard':'Super*'}]}", "{'x':'Super'}"),
	    "a star matches the empty run");
	ok(yes("{'x':[{'wildcard':'*'}]}", "{'x':''}"),
	    "lone star matches the empty string");
	ok(no("{'x':[{'wildcard':'*'}]}", "{'x':5}"),
	    "wildcard misses a number");
	ok(yes("{'x':[{'wildcard':'a*b*c'}]}", "{'x':'abc'}"),
	    "pieces may be adjacent");
	ok(no("{'x':[{'wildcard':'a*b*c'}]}", "{'x':'acb'}"),
	    "pieces must come in order");
	ok(no("{'x':[{'wildcard':'a*a'}]}", "{'x':'a'}"),
	    "prefix and suffix pieces may not overlap");
	ok(yes("{'x':[{'wildcard':'ab*ab'}]}", "{'x':'abab'}"),
	    "prefix and suffix pieces may touch");
	ok(no("{'x':[{'wildcard':'abc'}]}", "{'x':'abcd'}"),
	    "wildcard without a star needs the whole value");
	ok(yes("{'x':[{'wildcard':'a\\\\*b'}]}", "{'x':'a*b'}"),
	    "escaped star matches a literal star");
	ok(no("{'x':[{'wildcard':'a\\\\*b'}]}", "{'x':'axb'}"),
	    "escaped star is not a wildcard");
	ok(yes("{'x':[{'wildcard':'a\\\\**'}]}", "{'x':'a*xyz'}"),
	    "escaped star followed by a real star");
	ok(no("{'x':[{'wildcard':'a\\\\**'}]}", "{'x':'axyz'}"),
	    "escaped star followed by a real star needs the literal star");
	ok(yes("{'x':[{'wildcard':'x\\\\\\\\*'}]}", "{'x':'x\\\\yz'}"),
	    "escaped backslash then a real star");
	ok(yes("{'x':[{'wildcard':'*-*-*'}]}", "{'x':'2026-03-01'}"),
	    "three stars around two dashes");
	ok(no("{'x':[{'wildcard':'*-*-*'}]}", "{'x':'2026-0301'}"),
	    "three stars need both dashes");
}

static void
test_exists(void)
{
	const char *e = envelope;

	ok(yes("{'detail':{'split':[{'exists':true}]}}", e),
	    "exists:true on a present string");
	ok(no("{'detail':{'origin':[{'exists':true}]}}", e),
	    "exists:true misses a missing field");
	ok(yes("{'origin_time':[{'exists':false}]}", e),
	    "exists:false on a missing field");
	ok(no("{'source':[{'exists':false}]}", e),
	    "exists:false misses a present field");
	ok(yes("{'x':[{'exists':true}]}", "{'x':null}"),
	    "exists:true on a null value: null is a leaf");
	ok(no("{'detail':[{'exists':true}]}", e),
	    "exists:true misses an object: leaves only");
	ok(yes("{'detail':[{'exists':false}]}", e),
	    "exists:false matches an object: leaves only");
	ok(yes("{'detail':{'tags':[{'exists':true}]}}", e),
	    "exists:true on a non-empty array");
	ok(no("{'x':[{'exists':true}]}", "{'x':[]}"),
	    "exists:true misses an empty array");
	ok(yes("{'x':[{'exists':false}]}", "{'x':[]}"),
	    "exists:false matches an empty array");
	ok(yes("{'detail':{'x':[{'exists':false}]}}", "{'seq':1}"),
	    "exists:false below a missing parent object");
	ok(no("{'detail':{'x':[{'exists':true}]}}", "{'seq':1}"),
	    "exists:true below a missing parent object");
	ok(yes("{'x':[{'exists':false},'y']}", "{'x':'y'}"),
	    "exists:false ORed with a literal that matches");
}

static void
test_numeric(void)
{
	const char *e = envelope;

	ok(yes("{'seq':[{'numeric':['>',0]}]}", e), "numeric > hit");
	ok(no("{'seq':[{'numeric':['>',42]}]}", e), "numeric > at the bound");
	ok(yes("{'seq':[{'numeric':['>=',42]}]}", e),
	    "numeric >= at the bound");
	ok(no("{'seq':[{'numeric':['<',42]}]}", e), "numeric < at the bound");
	ok(yes("{'seq':[{'numeric':['<=',42]}]}", e),
	    "numeric <= at the bound");
	ok(yes("{'seq':[{'numeric':['=',42.0]}]}", e), "numeric = hit");
	ok(no("{'seq':[{'numeric':['=',41]}]}", e), "numeric = miss");
	ok(yes("{'seq':[{'numeric':['>',0,'<=',42]}]}", e),
	    "range with inclusive upper bound at the bound");
	ok(no("{'seq':[{'numeric':['>',0,'<',42]}]}", e),
	    "range with exclusive upper bound at the bound");
	ok(no("{'seq':[{'numeric':['>',42,'<',100]}]}", e),
	    "range with exclusive lower bound at the bound");
	ok(yes("{'seq':[{'numeric':['>=',42,'<=',42]}]}", e),
	    "closed range of one point");
	ok(yes("{'detail':{'pace_ms':[{'numeric':['>=',-5000,'<',-4999]}]}}",
	    e), "negative range");
	ok(yes("{'x':[{'numeric':['>',0.5,'<',0.75]}]}", "{'x':0.625}"),
	    "fractional range");
	ok(no("{'source':[{'numeric':['>',0]}]}", e),
	    "numeric misses a string");
	ok(no("{'x':[{'numeric':['>=',0]}]}", "{'x':'5'}"),
	    "numeric misses a numeric string");
	ok(no("{'x':[{'numeric':['>=',0]}]}", "{'x':true}"),
	    "numeric misses a boolean");
	ok(no("{'x':[{'numeric':['<',1]}]}", "{'x':null}"),
	    "numeric misses null");
	ok(yes("{'x':[{'numeric':['>',5]}]}", "{'x':[1,10]}"),
	    "numeric on an array: any element in range");
	ok(no("{'x':[{'numeric':['>',5]}]}", "{'x':[1,2]}"),
	    "numeric on an array: no element in range");
}

static void
test_anything_but(void)
{
	const char *e = envelope;

	ok(yes("{'source':[{'anything-but':'obs'}]}", e),
	    "anything-but string: other value passes");
	ok(no("{'source':[{'anything-but':'livesplit'}]}", e),
	    "anything-but string: excluded value fails");
	ok(no("{'source':[{'anything-but':['obs','livesplit']}]}", e),
	    "anything-but list: excluded value fails");
	ok(yes("{'source':[{'anything-but':['obs','wsplit']}]}", e),
	    "anything-but list: other value passes");
	ok(yes("{'seq':[{'anything-but':41}]}", e),
	    "anything-but number: other value passes");
	ok(no("{'seq':[{'anything-but':42.0}]}", e),
	    "anything-but number: excluded value fails (numerically)");
	ok(no("{'seq':[{'anything-but':[41,42]}]}", e),
	    "anything-but numbers: excluded value fails");
	ok(no("{'nope':[{'anything-but':'x'}]}", e),
	    "anything-but misses a missing field");
	ok(yes("{'seq':[{'anything-but':'42'}]}", e),
	    "anything-but string passes a number");
	ok(yes("{'x':[{'anything-but':'x'}]}", "{'x':null}"),
	    "anything-but passes null");
	ok(no("{'source':[{'anything-but':{'prefix':'live'}}]}", e),
	    "anything-but prefix: excluded prefix fails");
	ok(yes("{'source':[{'anything-but':{'prefix':'obs'}}]}", e),
	    "anything-but prefix: other prefix passes");
	ok(no("{'seq':[{'anything-but':{'prefix':'x'}}]}", e),
	    "anything-but prefix matches strings only");
	ok(no("{'source':[{'anything-but':{'suffix':'split'}}]}", e),
	    "anything-but suffix: excluded suffix fails");
	ok(yes("{'source':[{'anything-but':{'suffix':'.png'}}]}", e),
	    "anything-but suffix: other suffix passes");
	ok(no("{'source':[{'anything-but':"
	    "{'equals-ignore-case':'LIVESPLIT'}}]}", e),
	    "anything-but equals-ignore-case: excluded in any case fails");
	ok(yes("{'source':[{'anything-but':"
	    "{'equals-ignore-case':['OBS','LIVE']}}]}", e),
	    "anything-but equals-ignore-case list: others pass");
	ok(no("{'source':[{'anything-but':{'wildcard':'*split'}}]}", e),
	    "anything-but wildcard: excluded fails");
	ok(yes("{'source':[{'anything-but':{'wildcard':['o*','x*']}}]}", e),
	    "anything-but wildcard list: others pass");
	ok(yes("{'detail':{'tags':[{'anything-but':'a'}]}}", e),
	    "anything-but on an array: one element not excluded passes");
	ok(no("{'detail':{'tags':[{'anything-but':['a','b']}]}}", e),
	    "anything-but on an array: every element excluded fails");
	ok(no("{'x':[{'anything-but':'a'}]}", "{'x':[]}"),
	    "anything-but on an empty array fails");
}

static void
test_or(void)
{
	const char *e = envelope;

	ok(yes("{'$or':[{'source':['obs']},{'seq':[42]}]}", e),
	    "$or: second alternative matches");
	ok(no("{'$or':[{'source':['obs']},{'seq':[1]}]}", e),
	    "$or: no alternative matches");
	ok(no("{'type':['x'],'$or':[{'source':['livesplit']},{'seq':[1]}]}",
	    e), "$or is ANDed with the other keys: key misses");
	ok(yes("{'type':['speedrun.split'],'$or':[{'source':['obs']},"
	    "{'seq':[42]}]}", e), "$or ANDed with the other keys: all hit");
	ok(yes("{'detail':{'$or':[{'split':['WF']},{'split':['BoB']}]}}", e),
	    "$or inside a nested pattern");
	ok(yes("{'$or':[{'source':['obs']},{'$or':[{'seq':[1]},"
	    "{'detail':{'split':['BoB']}}]}]}", e), "nested $or matches");
	ok(no("{'$or':[{'source':['obs']},{'$or':[{'seq':[1]},"
	    "{'detail':{'split':['WF']}}]}]}", e), "nested $or misses");
	ok(yes("{'$or':[{'origin_time':[{'exists':true}]},"
	    "{'detail':{'pace_ms':[{'numeric':['<',0]}]}}]}", e),
	    "$or mixing operators");
}

static void
test_routes(void)
{
	const char *e = envelope;
	const char *bot = "{'type':'speedrun.split','source':'livesplit',"
	    "'producer':'test-bot','seq':1,'detail':{'split':'BoB'}}";
	const char *ahead = "{'type':['speedrun.split'],"
	    "'detail':{'game':[{'prefix':'Super Mario'}],"
	    "'pace_ms':[{'numeric':['<',0]}]}}";
	const char *real = "{'source':['livesplit'],"
	    "'producer':[{'anything-but':{'prefix':'test-'}}]}";

	ok(yes(ahead, e), "route: Mario runs ahead of pace");
	ok(no("{'type':['speedrun.split'],'detail':{'pace_ms':"
	    "[{'numeric':['<',-10000]}]}}", e),
	    "route: ahead by ten seconds or more misses a 5 s lead");
	ok(yes(real, e), "route: real producers pass");
	ok(no(real, bot), "route: test producers are kept out");
	ok(yes("{'type':[{'wildcard':'speedrun.*'}],'$or':["
	    "{'detail':{'split':['BoB','WF']}},{'detail':{'tags':['pb']}}]}",
	    e), "route: early splits or personal bests");
	ok(yes("{'detail':{'category':[{'equals-ignore-case':'16 star'},"
	    "{'equals-ignore-case':'70 star'}]}}", e),
	    "route: either category, any case");
	ok(yes("{'origin_time':[{'exists':false}],'seq':"
	    "[{'numeric':['>',0]}]}", e),
	    "route: events without the producer's own time");
	ok(no(ahead, "[1]"), "route: an event that is not an object misses");
}

static void
test_errors(void)
{
	refused("root", "[]", "pattern: expects a JSON object", "");
	refused("scalar value", "{'source':'livesplit'}",
	    "source: expects a list of matchers or a nested pattern object",
	    "/source");
	refused("empty list", "{'detail':{'game':[]}}",
	    "game: empty matcher list", "/detail/game");
	refused("list in list", "{'source':[['a']]}",
	    "matcher: expects a value or an operator object, not a list",
	    "/source/0");
	refused("empty operator", "{'source':['a',{}]}",
	    "matcher: empty operator object", "/source/1");
	refused("two operators", "{'source':[{'prefix':'a','suffix':'b'}]}",
	    "prefix: expects one operator per object, found \"suffix\" too",
	    "/source/0/suffix");
	refused("unknown operator", "{'source':[{'contains':'x'}]}",
	    "contains: unknown operator", "/source/0/contains");
	refused("cidr", "{'ip':[{'cidr':'10.0.0.0/24'}]}",
	    "cidr: unsupported operator", "/ip/0/cidr");
	refused("prefix number", "{'source':[{'prefix':5}]}",
	    "prefix: expects a string or {\"equals-ignore-case\": string}",
	    "/source/0/prefix");
	refused("prefix bad ignore-case",
	    "{'source':[{'suffix':{'equals-ignore-case':1}}]}",
	    "suffix: expects a string or {\"equals-ignore-case\": string}",
	    "/source/0/suffix");
	refused("equals-ignore-case", "{'s':[{'equals-ignore-case':['a']}]}",
	    "equals-ignore-case: expects a string", "/s/0/equals-ignore-case");
	refused("wildcard type", "{'s':[{'wildcard':5}]}",
	    "wildcard: expects a string", "/s/0/wildcard");
	refused("wildcard **", "{'s':[{'wildcard':'a**b'}]}",
	    "wildcard: consecutive '*' are not allowed", "/s/0/wildcard");
	refused("wildcard escape", "{'s':[{'wildcard':'a\\\\b'}]}",
	    "wildcard: '\\' must be followed by '*' or '\\'",
	    "/s/0/wildcard");
	refused("exists", "{'s':[{'exists':'yes'}]}",
	    "exists: expects true or false", "/s/0/exists");
	refused("numeric type", "{'n':[{'numeric':5}]}",
	    "numeric: expects one comparison or a range, like "
	    "[\">\", 0, \"<=\", 5]", "/n/0/numeric");
	refused("numeric three items", "{'n':[{'numeric':['>',1,'<']}]}",
	    "numeric: expects one comparison or a range, like "
	    "[\">\", 0, \"<=\", 5]", "/n/0/numeric");
	refused("numeric operator", "{'n':[{'numeric':['!=',1]}]}",
	    "numeric: expects one of <, <=, =, >, >=", "/n/0/numeric/0");
	refused("numeric operand", "{'n':[{'numeric':['>','5']}]}",
	    "numeric: expects a number after \">\"", "/n/0/numeric/1");
	refused("numeric upper operand",
	    "{'n':[{'numeric':['>',1,'<',null]}]}",
	    "numeric: expects a number after \"<\"", "/n/0/numeric/3");
	refused("range start", "{'n':[{'numeric':['<',5,'>',1]}]}",
	    "numeric: a range must start with > or >=", "/n/0/numeric/0");
	refused("range with =", "{'n':[{'numeric':['=',1,'<',5]}]}",
	    "numeric: a range must start with > or >=", "/n/0/numeric/0");
	refused("range end", "{'n':[{'numeric':['>',1,'>=',5]}]}",
	    "numeric: a range must end with < or <=", "/n/0/numeric/2");
	refused("range empty", "{'n':[{'numeric':['>',5,'<',1]}]}",
	    "numeric: the range is empty", "/n/0/numeric/3");
	refused("range open point", "{'n':[{'numeric':['>',5,'<=',5]}]}",
	    "numeric: the range is empty", "/n/0/numeric/3");
	refused("anything-but empty", "{'s':[{'anything-but':[]}]}",
	    "anything-but: empty list", "/s/0/anything-but");
	refused("anything-but mixed", "{'s':[{'anything-but':['a',1]}]}",
	    "anything-but: a list must hold only strings or only numbers",
	    "/s/0/anything-but/1");
	refused("anything-but bool", "{'s':[{'anything-but':true}]}",
	    "anything-but: expects a string, a number, a list of them, or an "
	    "operator object", "/s/0/anything-but");
	refused("anything-but numeric",
	    "{'s':[{'anything-but':{'numeric':['>',1]}}]}",
	    "anything-but: \"numeric\" is not supported here; use prefix, "
	    "suffix, equals-ignore-case or wildcard",
	    "/s/0/anything-but/numeric");
	refused("anything-but prefix type",
	    "{'s':[{'anything-but':{'prefix':5}}]}",
	    "prefix: expects a string", "/s/0/anything-but/prefix");
	refused("anything-but wildcard list",
	    "{'s':[{'anything-but':{'wildcard':['a*','b**']}}]}",
	    "wildcard: consecutive '*' are not allowed",
	    "/s/0/anything-but/wildcard/1");
	refused("anything-but empty object", "{'s':[{'anything-but':{}}]}",
	    "anything-but: empty operator object", "/s/0/anything-but");
	refused("$or object", "{'$or':{'a':['b']}}",
	    "$or: expects a list of at least two patterns", "/$or");
	refused("$or single", "{'$or':[{'a':['b']}]}",
	    "$or: expects a list of at least two patterns", "/$or");
	refused("$or alternative", "{'$or':[{'a':['b']},['c']]}",
	    "$or: each alternative must be a pattern object", "/$or/1");
	refused("inside $or", "{'x':['y'],'$or':[{'a':['b']},{'c':[]}]}",
	    "c: empty matcher list", "/$or/1/c");
}

/* {'a':{'a':...{inner}...}} with depth objects in all. */
static char *
deep(int depth, const char *inner)
{
	char *s;
	size_t n = 0;
	int i;

	s = xmalloc((size_t)depth * 6 + strlen(inner) + 4);
	for (i = 1; i < depth; i++)
		n += sprintf(s + n, "{'a':");
	n += sprintf(s + n, "{%s}", inner);
	for (i = 1; i < depth; i++)
		s[n++] = '}';
	s[n] = '\0';
	return s;
}

static void
test_limits(void)
{
	char path[128], err[256], *pat, *ev;
	const cJSON *bad;
	struct pattern *p;
	cJSON *pj;
	size_t n;
	int i;

	pat = deep(16, "'x':['y']");
	ev = deep(16, "'x':'y'");
	ok(yes(pat, ev), "16 levels compile and match");
	free(pat);
	free(ev);

	pat = deep(17, "'x':['y']");
	n = 0;
	for (i = 1; i < 17; i++)
		n += snprintf(path + n, sizeof(path) - n, "/a");
	refused("depth", pat, "pattern nests deeper than 16 levels", path);
	free(pat);

	/* $or alternatives are objects too, so they count as a level */
	pat = deep(16, "'$or':[{'y':[1]},{'z':[2]}]");
	refused("depth through $or", pat,
	    "pattern nests deeper than 16 levels", "/a/a/a/a/a/a/a/a/a/a/a/a/"
	    "a/a/a/$or/0");
	free(pat);

	/* 256 literals in one list, then one more */
	pat = xmalloc(8 + 257 * 4 + 4);
	n = (size_t)sprintf(pat, "{'x':[");
	for (i = 0; i < 256; i++)
		n += (size_t)sprintf(pat + n, "%s%d", i ? "," : "", i);
	strcpy(pat + n, "]}");
	ok(yes(pat, "{'x':255}"), "256 matchers compile");
	sprintf(pat + n, ",256]}");
	refused("matchers", pat, "pattern has more than 256 matchers",
	    "/x/256");
	free(pat);

	pj = parse("{'x':[]}");
	ok(pattern_compile(pj, NULL, NULL, 0) == NULL,
	    "refusal without bad or err does not crash");
	cJSON_Delete(pj);

	pj = parse("{'x':['y']}");
	bad = pj;
	strcpy(err, "stale");
	p = pattern_compile(pj, &bad, err, sizeof(err));
	ok(p != NULL && bad == NULL && err[0] == '\0',
	    "success clears *bad and err");
	pattern_free(p);
	cJSON_Delete(pj);

	ok(pattern_compile(NULL, &bad, err, sizeof(err)) == NULL &&
	    bad == NULL, "NULL json is refused, *bad is NULL");
	pattern_free(NULL);
}

/* The compiled pattern must not point into the JSON it came from. */
static void
test_independence(void)
{
	struct pattern *p;
	cJSON *pj, *ej;

	pj = parse("{'detail':{'game':[{'prefix':'Super'},"
	    "{'wildcard':'*Zelda*'}],'tags':[{'anything-but':['x','y']}]}}");
	ej = parse(envelope);
	p = pattern_compile(pj, NULL, NULL, 0);
	cJSON_Delete(pj);
	ok(p != NULL && pattern_match(p, ej),
	    "pattern still matches after its JSON is freed");
	ok(p != NULL && pattern_match(p, ej),
	    "matching twice gives the same answer");
	pattern_free(p);
	cJSON_Delete(ej);
}

int
main(void)
{
	util_init();
	test_literals();
	test_structure();
	test_strings();
	test_wildcard();
	test_exists();
	test_numeric();
	test_anything_but();
	test_or();
	test_routes();
	test_errors();
	test_limits();
	test_independence();
	return done();
}
