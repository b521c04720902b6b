/* Unit tests for event.c: every input shape into the exact envelope, the
 * errors that name their field, durations, and ids. */
#include "autoconf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "event.h"
#include "json.h"
#include "util.h"
#include "tap.h"

/*
 * Test documents are written with ' for " so that they stay readable;
 * dq() turns them back.  A \\' in the C text becomes \" in the JSON, for
 * JSON held in a string.
 */
#define RECV	1731606465000LL		/* 2024-11-14T17:47:45.000Z */
#define ID	"01JCNWKJF80000000000000000"
#define HEAD(type, source) "{'id':'" ID "','seq':42,'type':'" type \
	"','source':'" source "','producer':'cyghfer'," \
	"'time':'2024-11-14T17:47:45.000Z'"

static char *limited_sources[] = { "livesplit*" };
static char *limited_types[] = { "speedrun.*", "stream.online" };

static struct producer_conf any = { .name = "cyghfer" };
static struct producer_conf limited = {
	.name = "cyghfer",
	.sources = limited_sources,
	.nsources = 1,
	.types = limited_types,
	.ntypes = 2,
};

static struct event_error eerr;

/* Normalize the document and stamp it; the compact text of the envelope,
 * or of its member part when part is not NULL; NULL if refused. */
static char *
run(const char *text, const struct producer_conf *pc, const char *part)
{
	struct json_error jerr;
	char *doc = dq(text), *out = NULL;
	cJSON *in, *env = NULL;
	const cJSON *item;

	memset(&eerr, 0, sizeof(eerr));
	in = json_parse_strict(doc, strlen(doc), 32, 65536, &jerr);
	if (in == NULL) {
		printf("# test document is not JSON: %s\n", jerr.message);
		eerr.code = "(not JSON)";
		goto out;
	}
	if ((env = event_normalize(in, pc, RECV, &eerr)) == NULL)
		goto out;
	event_stamp(env, ID, 42);
	item = part ? cJSON_GetObjectItemCaseSensitive(env, part) : env;
	out = item ? cJSON_PrintUnformatted(item) : xstrdup("(absent)");
out:
	cJSON_Delete(in);
	cJSON_Delete(env);
	free(doc);
	return out;
}

static void
envelope(const char *in, const char *want, const char *name)
{
	char *got = run(in, &any, NULL), *w = dq(want);

	if (!is_str(got, w, "%s", name) && got == NULL)
		printf("#   refused: %s\n", eerr.message);
	free(got);
	free(w);
}

/* Only one member of the envelope, for tests about one field. */
static void
part_is(const char *in, const char *part, const char *want,
    const char *name)
{
	char *got = run(in, &any, part), *w = dq(want);

	if (!is_str(got, w, "%s", name) && got == NULL)
		printf("#   refused: %s\n", eerr.message);
	free(got);
	free(w);
}

/* Refused with status, code and field; and message, unless NULL.  The
 * message is plain C text, not run through dq(). */
static void
refused_by(const struct producer_conf *pc, const char *in, int status,
    const char *code, const char *field, const char *message,
    const char *name)
{
	char *got = run(in, pc, NULL);

	if (!ok(got == NULL && eerr.status == status && eerr.code != NULL &&
	    strcmp(eerr.code, code) == 0, "%s: refused %d %s", name, status,
	    code))
		printf("#   got %d %s: %s\n", eerr.status,
		    eerr.code ? eerr.code : "(accepted)", eerr.message);
	is_str(got ? "(accepted)" : eerr.field, field, "%s: names %s", name,
	    field);
	if (message != NULL)
		is_str(got ? "(accepted)" : eerr.message, message,
		    "%s: message", name);
	free(got);
}

#define refused(in, st, code, field, msg, name) \
	refused_by(&any, (in), (st), (code), (field), (msg), (name))
#define bad_field(in, field, msg, name) \
	refused((in), 400, "invalid_field", (field), (msg), (name))

static void
test_legacy(void)
{
	envelope("{'EventType':'speedrun.split','EventSource':'livesplit',"
	    "'Producer':'cyghfer','Game':'Super Metroid','Category':'Any%',"
	    "'SplitName':'Ceres Ridley','Pace':'-00:00:05.1230000 | "
	    "-00:00:04.9000000','Message':'Ceres Ridley ahead',"
	    "'Timestamp':'2024-11-14T18:47:44.1234567+01:00'}",
	    HEAD("speedrun.split", "livesplit")
	    ",'origin_time':'2024-11-14T17:47:44.123Z','detail':{"
	    "'game':'Super Metroid','category':'Any%','split':'Ceres Ridley',"
	    "'message':'Ceres Ridley ahead','pace':'-0:00:05.123',"
	    "'pace_ms':-5123,'pace_game_ms':-4900,"
	    "'pace_raw':'-00:00:05.1230000 | -00:00:04.9000000',"
	    "'timestamp_raw':'2024-11-14T18:47:44.1234567+01:00'}}",
	    "legacy split: every field mapped, time to UTC");
	envelope("{'EventType':'speedrun.pb','Game':'A Hat in Time',"
	    "'Category':'Any%','SplitName':'Mafia Town',"
	    "'Pace':'-00:01:02.5000000 | ',"
	    "'Timestamp':'2024-11-14T17:47:44.9999999Z'}",
	    HEAD("speedrun.split", "livesplit")
	    ",'origin_time':'2024-11-14T17:47:44.999Z','detail':{"
	    "'game':'A Hat in Time','category':'Any%','split':'Mafia Town',"
	    "'pace':'-0:01:02.500','pace_ms':-62500,"
	    "'pace_raw':'-00:01:02.5000000 | ',"
	    "'timestamp_raw':'2024-11-14T17:47:44.9999999Z',"
	    "'pb_pace':true,'legacy_type':'speedrun.pb'}}",
	    "legacy speedrun.pb becomes a split on PB pace");
	envelope("{'EventType':'speedrun.finish','EventSource':null,"
	    "'Game':'Super Mario 64','Category':'16 Star',"
	    "'Pace':' | 1.02:03:04.5000000','Attempt':57,"
	    "'Comparison':'Personal Best',"
	    "'Timestamp':'2024-01-01T00:30:00.0000000+01:00'}",
	    HEAD("speedrun.finish", "livesplit")
	    ",'origin_time':'2023-12-31T23:30:00.000Z','detail':{"
	    "'game':'Super Mario 64','category':'16 Star',"
	    "'pace':'26:03:04.500','pace_ms':93784500,"
	    "'pace_game_ms':93784500,'pace_raw':' | 1.02:03:04.5000000',"
	    "'timestamp_raw':'2024-01-01T00:30:00.0000000+01:00',"
	    "'Attempt':57,'Comparison':'Personal Best'}}",
	    "legacy: game-time pace with days, other fields kept, null "
	    "source is livesplit, date rolls back over the offset");

#define LEGACY_PACE(p) "{'EventType':'speedrun.split','Game':'Celeste'," \
	"'SplitName':'Forsaken City','Pace':'" p "'}"
	part_is(LEGACY_PACE("00:00:05 | 00:00:04"), "detail",
	    "{'game':'Celeste','split':'Forsaken City','pace':'0:00:05.000',"
	    "'pace_ms':5000,'pace_game_ms':4000,"
	    "'pace_raw':'00:00:05 | 00:00:04'}",
	    "legacy pace without fractions");
	part_is(LEGACY_PACE("01:13:42.6480000 | 01:02:41.7640000"),
	    "detail", "{'game':'Celeste','split':'Forsaken City',"
	    "'pace':'1:13:42.648','pace_ms':4422648,"
	    "'pace_game_ms':3761764,"
	    "'pace_raw':'01:13:42.6480000 | 01:02:41.7640000'}",
	    "legacy pace of an hour and more, from a real splits file");
	part_is(LEGACY_PACE("-00:00:01.2500000"), "detail",
	    "{'game':'Celeste','split':'Forsaken City','pace':'-0:00:01.250',"
	    "'pace_ms':-1250,'pace_raw':'-00:00:01.2500000'}",
	    "legacy pace as one TimeSpan is the real side");
	part_is(LEGACY_PACE(" | "), "detail",
	    "{'game':'Celeste','split':'Forsaken City','pace_raw':' | '}",
	    "legacy pace with both sides empty keeps only the raw text");
	part_is(LEGACY_PACE(""), "detail",
	    "{'game':'Celeste','split':'Forsaken City','pace_raw':''}",
	    "legacy empty pace");

#define LEGACY_TS(t) "{'EventType':'speedrun.reset','Game':'Celeste'," \
	"'Timestamp':'" t "'}"
	part_is(LEGACY_TS("2024-11-14T12:47:44.5-05:00"), "origin_time",
	    "'2024-11-14T17:47:44.500Z'", "legacy time west of UTC");
	part_is(LEGACY_TS("2024-02-29T23:59:59.0000000-01:00"),
	    "origin_time", "'2024-03-01T00:59:59.000Z'",
	    "legacy time on a leap day, into March");
	part_is(LEGACY_TS("2024-11-15T05:17:44.0010000+11:30"),
	    "origin_time", "'2024-11-14T17:47:44.001Z'",
	    "legacy time with a half-hour offset");
	part_is(LEGACY_TS("2024-11-14T17:47:44Z"), "origin_time",
	    "'2024-11-14T17:47:44.000Z'", "legacy time without fraction");

	bad_field(LEGACY_TS("2024-11-14T18:47:44.1234567"), "Timestamp",
	    "Timestamp: expected a time like "
	    "\"2024-11-14T18:47:44.1234567+01:00\"",
	    "legacy time without offset");
	bad_field(LEGACY_TS("2024-11-14T18:47:44.12345678+01:00"),
	    "Timestamp", NULL, "legacy time with eight fractional digits");
	bad_field(LEGACY_TS("2023-02-29T00:00:00Z"), "Timestamp", NULL,
	    "legacy time on a day that does not exist");
	bad_field(LEGACY_TS("2024-11-00T18:47:44Z"), "Timestamp", NULL,
	    "legacy time on day 0");
	bad_field(LEGACY_TS("2024-13-01T18:47:44Z"), "Timestamp", NULL,
	    "legacy time in month 13");
	bad_field(LEGACY_TS("2024-11-14 18:47:44Z"), "Timestamp", NULL,
	    "legacy time with a space for T");
	bad_field(LEGACY_TS("2024-11-14T24:00:00Z"), "Timestamp", NULL,
	    "legacy time at hour 24");
	bad_field(LEGACY_TS("2024-11-14T18:47:44+1:00"), "Timestamp", NULL,
	    "legacy time with a one-digit offset");
	part_is(LEGACY_TS("9999-12-31T23:59:59.9999999Z"), "origin_time",
	    "'9999-12-31T23:59:59.999Z'", "legacy time at the end of 9999");
	part_is(LEGACY_TS("0001-01-01T00:00:00-01:00"), "origin_time",
	    "'0001-01-01T01:00:00.000Z'",
	    "legacy time in year 1, west of UTC");
	bad_field(LEGACY_TS("9999-12-31T23:59:59.9990000-23:59"),
	    "Timestamp", "Timestamp: outside the years 0001 to 9999 in UTC",
	    "legacy time that is year 10000 in UTC");
	bad_field(LEGACY_TS("0001-01-01T00:00:00+00:01"), "Timestamp",
	    "Timestamp: outside the years 0001 to 9999 in UTC",
	    "legacy time that is year 0 in UTC");
	bad_field(LEGACY_PACE("fast"), "Pace", "Pace: expected \"REAL | "
	    "GAME\" .NET TimeSpans like \"-00:00:05.1230000 | "
	    "-00:00:04.9000000\"", "legacy pace that is no TimeSpan");
	bad_field(LEGACY_PACE("-00:00:05.12345678 | "), "Pace", NULL,
	    "legacy pace with eight fractional digits");
	bad_field(LEGACY_PACE("00:60:00 | "), "Pace", NULL,
	    "legacy pace with 60 minutes");
	bad_field(LEGACY_PACE("00:00:01 | 00:00:02 | 00:00:03"), "Pace",
	    NULL, "legacy pace with three sides");
	part_is(LEGACY_PACE("-100.00:00:00 | 100.00:00:00"), "detail",
	    "{'game':'Celeste','split':'Forsaken City',"
	    "'pace':'-2400:00:00.000','pace_ms':-8640000000,"
	    "'pace_game_ms':8640000000,"
	    "'pace_raw':'-100.00:00:00 | 100.00:00:00'}",
	    "legacy pace of 100 days either way is accepted");
	bad_field(LEGACY_PACE("999999999999:00:00"), "Pace",
	    "Pace: real side longer than 100 days (8640000000 ms)",
	    "legacy pace of a trillion hours names Pace, not "
	    "detail.pace_ms");
	bad_field(LEGACY_PACE("00:00:01 | -100.00:00:00.001"), "Pace",
	    "Pace: game side longer than 100 days (8640000000 ms)",
	    "legacy game-side pace a millisecond over 100 days");
	bad_field("{'EventType':'speedrun.split','Game':'Celeste',"
	    "'SplitName':'x','Pace':5}", "Pace", "Pace: expected a string",
	    "legacy pace as a number");
	bad_field("{'EventType':'speedrun.start','Game':5}", "Game",
	    "Game: expected a string", "legacy game as a number");
	bad_field("{'EventType':'speedrun.start','Game':'Celeste',"
	    "'game':'Celeste'}", "game",
	    "game: clashes with a field derived from the body",
	    "legacy field that would overwrite a derived one");
	bad_field("{'EventType':'speedrun.pb','Game':'Celeste'}",
	    "detail.split", "detail.split: required for this type",
	    "legacy PB pace without a split name");
	refused("{'EventType':'speedrun.start','Game':'Celeste',"
	    "'Producer':'someone'}", 403, "producer_mismatch", "Producer",
	    "Producer: \"someone\" is not the producer this key belongs to",
	    "legacy body naming another producer");
	refused("{'EventType':'Split','Game':'Celeste'}", 400,
	    "invalid_type", "EventType", NULL, "legacy type not dotted");
	refused_by(&limited, "{'EventType':'speedrun.start','Game':'C',"
	    "'EventSource':'obs'}", 403, "source_not_allowed",
	    "EventSource", NULL, "legacy source outside the producer's globs");
}

static void
test_putevents(void)
{
	envelope("{'DetailType':'speedrun.gold','Source':'livesplit',"
	    "'Time':'2024-11-14T17:47:44Z','EventBusName':'default',"
	    "'Detail':'{\\'game\\':\\'Celeste\\',\\'category\\':\\'Any%\\',"
	    "\\'split\\':\\'Forsaken City\\',"
	    "\\'segment_time\\':\\'1:52.340\\',"
	    "\\'best_segment_time\\':\\'0:01:53.1\\',"
	    "\\'improvement\\':\\'-0:00:00.76\\'}'}",
	    HEAD("speedrun.gold", "livesplit")
	    ",'origin_time':'2024-11-14T17:47:44.000Z','detail':{"
	    "'game':'Celeste','category':'Any%','split':'Forsaken City',"
	    "'segment_time':'0:01:52.340','segment_time_ms':112340,"
	    "'best_segment_time':'0:01:53.100','best_segment_time_ms':113100,"
	    "'improvement':'-0:00:00.760','improvement_ms':-760}}",
	    "PutEvents entry with Detail as a string, durations normalized");
	envelope("{'DetailType':'stream.online','Source':'obs'}",
	    HEAD("stream.online", "obs") ",'detail':{}}",
	    "PutEvents entry without Detail");
	bad_field("{'DetailType':'stream.online','Source':'obs',"
	    "'Detail':'{\\'a\\':1,\\'a\\':2}'}", "Detail",
	    "Detail: line 1, column 8: duplicate key \"a\"",
	    "PutEvents Detail with a duplicate key");
	bad_field("{'DetailType':'stream.online','Source':'obs',"
	    "'Detail':'nope'}", "Detail",
	    "Detail: line 1, column 1: invalid literal (expected null)",
	    "PutEvents Detail that is not JSON");
	bad_field("{'DetailType':'stream.online','Source':'obs',"
	    "'Detail':'[1]'}", "Detail",
	    "Detail: expected a string holding a JSON object",
	    "PutEvents Detail holding an array");
	refused("{'DetailType':'stream.online','Detail':'{}'}", 400,
	    "invalid_source", "Source", "Source: required",
	    "PutEvents entry without Source");
	bad_field("{'DetailType':'stream.online','Source':'obs','Foo':1}",
	    "Foo", "Foo: not a member of a PutEvents entry",
	    "PutEvents entry with an unknown member");
	bad_field("{'DetailType':'stream.online','Source':'obs',"
	    "'Time':'14/11/2024'}", "Time", "Time: expected an RFC 3339 "
	    "time like \"2024-11-14T17:47:44Z\"",
	    "PutEvents Time not RFC 3339");
	bad_field("{'DetailType':'stream.online','Source':'obs',"
	    "'Time':'9999-12-31T23:30:00-01:00'}", "Time",
	    "Time: outside the years 0001 to 9999 in UTC",
	    "PutEvents Time that is year 10000 in UTC");
	refused_by(&limited, "{'DetailType':'stream.chat','Source':"
	    "'livesplit'}", 403, "type_not_allowed", "DetailType",
	    "DetailType: producer may not send type \"stream.chat\"",
	    "PutEvents type outside the producer's globs");
}

static void
test_eventbridge(void)
{
	cJSON *in, *env;
	struct event_error err;
	char *doc;

	envelope("{'version':'0','id':'6a7e8feb-b491-4cf7-a9f1-bf3703467718',"
	    "'detail-type':'speedrun.start','source':'livesplit',"
	    "'account':'111122223333','time':'2024-11-14T17:47:44.5+00:00',"
	    "'region':'eu-west-1','resources':[],'detail':{'game':'Celeste',"
	    "'category':'Any%','attempt':412,'run_time':'0:00'}}",
	    HEAD("speedrun.start", "livesplit")
	    ",'origin_time':'2024-11-14T17:47:44.500Z','detail':{"
	    "'game':'Celeste','category':'Any%','attempt':412,"
	    "'run_time':'0:00:00.000','run_time_ms':0}}",
	    "EventBridge event, AWS envelope members dropped");

	doc = dq("{'id':'mine','detail-type':'stream.online','source':'obs'}");
	in = cJSON_Parse(doc);
	env = event_normalize(in, &any, RECV, &err);
	ok(env != NULL && strcmp(cJSON_GetObjectItem(env, "id")->valuestring,
	    "") == 0 && cJSON_GetObjectItem(env, "seq")->valuedouble == 0,
	    "the body's id is not the envelope's; id and seq wait for "
	    "event_stamp");
	event_stamp(env, "01JCNWKJF8ZZZZZZZZZZZZZZZZ", 1ULL << 40);
	event_stamp(env, "01JCNWKJF8ZZZZZZZZZZZZZZZZ", 1ULL << 40);
	ok(env != NULL && env->child != NULL &&
	    strcmp(env->child->string, "id") == 0 &&
	    strcmp(env->child->valuestring, "01JCNWKJF8ZZZZZZZZZZZZZZZZ") ==
	    0 && strcmp(env->child->next->string, "seq") == 0 &&
	    env->child->next->valuedouble == 1099511627776.0,
	    "event_stamp fills id and seq in place, first, and can repeat");
	cJSON_Delete(env);
	cJSON_Delete(in);
	free(doc);

	refused("{'detail-type':'stream.online'}", 400, "invalid_source",
	    "source", "source: required", "EventBridge event without source");
	bad_field("{'detail-type':'stream.online','source':'obs',"
	    "'detail':[]}", "detail", "detail: expected an object",
	    "EventBridge detail that is an array");
	bad_field("{'detail-type':'stream.online','source':'obs','foo':1}",
	    "foo", "foo: not a member of an EventBridge entry",
	    "EventBridge event with an unknown member");
}

static void
test_sns(void)
{
	envelope("{'Type':'Notification','MessageId':"
	    "'22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324','TopicArn':"
	    "'arn:aws:sns:eu-west-1:111122223333:runs',"
	    "'Subject':'speedrun.finish','Message':'{\\'game\\':"
	    "\\'Super Mario 64\\',\\'category\\':\\'16 Star\\',"
	    "\\'run_time\\':\\'0:15:38.21\\'}',"
	    "'Timestamp':'2024-11-14T17:47:44.123Z',"
	    "'MessageAttributes':{'attempt':{'Type':'Number','Value':'57'},"
	    "'runner':{'Type':'String','Value':'cyghfer'},"
	    "'tags':{'Type':'String.Array','Value':'[\\'wr\\',\\'live\\']'}}}",
	    HEAD("speedrun.finish", "sns")
	    ",'origin_time':'2024-11-14T17:47:44.123Z','detail':{"
	    "'game':'Super Mario 64','category':'16 Star',"
	    "'run_time':'0:15:38.210','run_time_ms':938210,'attempt':57,"
	    "'runner':'cyghfer','tags':['wr','live']}}",
	    "SNS notification with a JSON message and attributes");
	envelope("{'Subject':'stream.note','Message':'Going for sub-10'}",
	    HEAD("stream.note", "sns")
	    ",'detail':{'message':'Going for sub-10'}}",
	    "SNS with a plain-text message");

#define SNS_ATTR(t, v) "{'Subject':'stream.note','Message':'hi'," \
	"'MessageAttributes':{'attempt':{'Type':'" t "','Value':'" v "'}}}"
	part_is(SNS_ATTR("Number", "-2.5e1"), "detail",
	    "{'message':'hi','attempt':-25}", "SNS Number attribute");
	bad_field(SNS_ATTR("Number", "12abc"), "MessageAttributes.attempt",
	    "MessageAttributes.attempt: expected a number, as text",
	    "SNS Number attribute that is not a number");
	bad_field(SNS_ATTR("Number", " 5"), "MessageAttributes.attempt",
	    NULL, "SNS Number attribute with space around it");
	bad_field(SNS_ATTR("Number", "05"), "MessageAttributes.attempt",
	    NULL, "SNS Number attribute with a leading zero");
	bad_field(SNS_ATTR("String.Array", "{}"),
	    "MessageAttributes.attempt", NULL,
	    "SNS String.Array attribute that is no array");
	bad_field(SNS_ATTR("Binary", "AAEC"), "MessageAttributes.attempt",
	    "MessageAttributes.attempt: Type must be String, Number or "
	    "String.Array", "SNS Binary attribute");
	bad_field("{'Subject':'stream.note','Message':'{\\'attempt\\':1}',"
	    "'MessageAttributes':{'attempt':{'Type':'Number','Value':'2'}}}",
	    "MessageAttributes", "MessageAttributes: \"attempt\" is also a "
	    "field of the message", "SNS attribute clashing with the message");
	bad_field("{'Subject':'stream.note','Message':'{oops'}", "Message",
	    "Message: line 1, column 2: expected a string key, found 'o'",
	    "SNS message that starts as JSON but is not");
	refused("{'Message':'hi'}", 400, "invalid_type", "Subject",
	    "Subject: required", "SNS without Subject");
	bad_field("{'Subject':'stream.note','Message':'hi','Foo':1}", "Foo",
	    "Foo: not a member of an SNS entry", "SNS unknown member");
	refused_by(&limited, "{'Subject':'speedrun.start','Message':"
	    "'{\\'game\\':\\'Celeste\\'}'}", 403, "source_not_allowed",
	    "source", NULL, "SNS source sns outside the producer's globs");
}

static void
test_native(void)
{
	envelope("{'type':'speedrun.split','source':'livesplit',"
	    "'producer':'cyghfer','time':'2024-11-14T18:47:44.250+01:00',"
	    "'detail':{'game':'A Hat in Time','category':'Any%',"
	    "'split':'Mafia Town','split_index':3,'pace':'+0:00:01.5',"
	    "'segment_time_ms':61000}}",
	    HEAD("speedrun.split", "livesplit")
	    ",'origin_time':'2024-11-14T17:47:44.250Z','detail':{"
	    "'game':'A Hat in Time','category':'Any%','split':'Mafia Town',"
	    "'split_index':3,'pace':'0:00:01.500','pace_ms':1500,"
	    "'segment_time':'0:01:01.000','segment_time_ms':61000}}",
	    "native split, text made for a lone _ms field");
	envelope("{'type':'stream.online'}",
	    HEAD("stream.online", "api") ",'detail':{}}",
	    "native event: source defaults to api, detail to {}");
	envelope("{'type':'stream.chat.message','source':'twitch',"
	    "'detail':{'pace':'whatever','nested':{'a':[1,2.5,null]}}}",
	    HEAD("stream.chat.message", "twitch")
	    ",'detail':{'pace':'whatever','nested':{'a':[1,2.5,null]}}}",
	    "a type outside speedrun.* passes through unchanged");
	envelope("{'type':'speedrun.foo','detail':{'pace':'soon'}}",
	    HEAD("speedrun.foo", "api") ",'detail':{'pace':'soon'}}",
	    "an unknown speedrun.* type passes through unchanged");
	envelope("{'type':'speedrun.split','detail':{'game':'Celeste',"
	    "'split':'Summit','pace_ms':-5123,'pace':'-0:05.123'}}",
	    HEAD("speedrun.split", "api") ",'detail':{'game':'Celeste',"
	    "'split':'Summit','pace':'-0:00:05.123','pace_ms':-5123}}",
	    "pace and an agreeing pace_ms, sent in either order");
	envelope("{'type':'stream.offline','detail':null,'time':null}",
	    HEAD("stream.offline", "api") ",'detail':{}}",
	    "native null detail and time are absent");
	refused("{'type':'stream.online','producer':'other'}", 403,
	    "producer_mismatch", "producer",
	    "producer: \"other\" is not the producer this key belongs to",
	    "native body naming another producer");
	bad_field("{'type':'stream.online','id':'01ARZ3NDEKTSV4RRFFQ69G5FAV'}",
	    "id", "id: not a member of a native entry",
	    "native body setting an id");
	part_is("{'type':'stream.online','time':"
	    "'2024-11-14t17:47:44.123456789z'}", "origin_time",
	    "'2024-11-14T17:47:44.123Z'",
	    "RFC 3339 time with nine fractional digits, lowercase t and z");
	bad_field("{'type':'stream.online','time':"
	    "'2024-11-14T17:47:44.1234567891Z'}", "time", NULL,
	    "RFC 3339 time with ten fractional digits");
	bad_field("{'type':'stream.online','time':'2024-11-14T17:47:44'}",
	    "time", NULL, "native time without zone");
	bad_field("{'type':'stream.online','time':1731606464}", "time",
	    "time: expected a string", "native time as a number");
	part_is("{'type':'stream.online','time':"
	    "'9999-12-31T23:59:59.999Z'}", "origin_time",
	    "'9999-12-31T23:59:59.999Z'", "native time, last ms of 9999");
	part_is("{'type':'stream.online','time':"
	    "'0001-01-01T00:00:00Z'}", "origin_time",
	    "'0001-01-01T00:00:00.000Z'", "native time, first ms of 0001");
	bad_field("{'type':'stream.online','time':"
	    "'9999-12-31T23:59:59.999-23:59'}", "time",
	    "time: outside the years 0001 to 9999 in UTC",
	    "native time that is year 10000 in UTC");
	bad_field("{'type':'stream.online','time':"
	    "'9999-12-31T23:59:59.999999999-00:01'}", "time", NULL,
	    "native time a minute into year 10000 in UTC");
	bad_field("{'type':'stream.online','time':"
	    "'0001-01-01T00:00:00+23:59'}", "time",
	    "time: outside the years 0001 to 9999 in UTC",
	    "native time that is year 0 in UTC");
}

static void
test_envelope_checks(void)
{
	char buf[512], *got;

#define TYPE_IS(t) "{'type':'" t "'}"
	refused(TYPE_IS("Speedrun.Split"), 400, "invalid_type", "type",
	    "type: expected dotted lowercase like \"speedrun.split\", at "
	    "most 128 characters", "type with capitals");
	refused(TYPE_IS("speedrun"), 400, "invalid_type", "type", NULL,
	    "type of one word");
	refused(TYPE_IS("speedrun..split"), 400, "invalid_type", "type",
	    NULL, "type with an empty word");
	refused(TYPE_IS(".speedrun.split"), 400, "invalid_type", "type",
	    NULL, "type starting with a dot");
	refused(TYPE_IS("speedrun.split."), 400, "invalid_type", "type",
	    NULL, "type ending with a dot");
	refused(TYPE_IS("speedrun.sp lit"), 400, "invalid_type", "type",
	    NULL, "type with a space");
	refused("{'type':5}", 400, "invalid_type", "type",
	    "type: expected a string", "type as a number");
	snprintf(buf, sizeof(buf), "{'type':'a.%0126d'}", 0);
	part_is(buf, "type", "'a.0000000000000000000000000000000000000000"
	    "000000000000000000000000000000000000000000000000000000000000000"
	    "00000000000000000000000'", "type of 128 characters");
	snprintf(buf, sizeof(buf), "{'type':'a.%0127d'}", 0);
	refused(buf, 400, "invalid_type", "type", NULL,
	    "type of 129 characters");

#define SOURCE_IS(s) "{'type':'stream.online','source':'" s "'}"
	refused(SOURCE_IS("-live"), 400, "invalid_source", "source",
	    "source: expected lowercase letters, digits, '.', '_' or '-', "
	    "at most 64 characters", "source starting with '-'");
	refused(SOURCE_IS("LiveSplit"), 400, "invalid_source", "source",
	    NULL, "source with capitals");
	refused(SOURCE_IS(""), 400, "invalid_source", "source", NULL,
	    "empty source");
	snprintf(buf, sizeof(buf), SOURCE_IS("s%063d"), 0);
	part_is(buf, "source", "'s000000000000000000000000000000000000000"
	    "000000000000000000000000'", "source of 64 characters");
	snprintf(buf, sizeof(buf), SOURCE_IS("s%064d"), 0);
	refused(buf, 400, "invalid_source", "source", NULL,
	    "source of 65 characters");

	part_is("{'type':'speedrun.start','source':'livesplit-2',"
	    "'detail':{'game':'Celeste'}}", "source", "'livesplit-2'",
	    "unlimited producer: any source");
	refused_by(&limited, SOURCE_IS("obs"), 403, "source_not_allowed",
	    "source", "source: producer may not send source \"obs\"",
	    "source outside the producer's globs");
	refused_by(&limited, "{'type':'stream.chat','source':'livesplit'}",
	    403, "type_not_allowed", "type", NULL,
	    "type outside the producer's globs");
	got = run("{'type':'speedrun.start','source':'livesplit-2',"
	    "'detail':{'game':'Celeste'}}", &limited, "type");
	is_str(got, "\"speedrun.start\"",
	    "source and type inside the producer's globs");
	free(got);

	refused("[1]", 400, "invalid_event", "", "expected a JSON object",
	    "an entry that is not an object");
	refused("{}", 400, "invalid_event", "", "no type: expected \"type\", "
	    "\"detail-type\", \"DetailType\", \"Message\" or \"EventType\"",
	    "an object of no known shape");
	refused("{'Detail':{'a':1}}", 400, "invalid_event", "", NULL,
	    "Detail as an object is no PutEvents entry");
}

/* A native event of type t with detail d. */
static char *
native(char *buf, size_t len, const char *t, const char *d)
{
	snprintf(buf, len, "{'type':'%s','detail':%s}", t, d);
	return buf;
}

static void
test_speedrun_fields(void)
{
	static const char *needs_split[] = { "speedrun.split",
	    "speedrun.gold", "speedrun.skip", "speedrun.undo" };
	static const char *no_split[] = { "speedrun.start", "speedrun.reset",
	    "speedrun.finish", "speedrun.pb" };
	char b[4200], d[4100], *got;
	size_t i;

#define DET(t, d) native(b, sizeof(b), (t), (d))
	bad_field(DET("speedrun.start", "{}"), "detail.game",
	    "detail.game: required for this type", "speedrun without game");
	bad_field(DET("speedrun.reset", "{'game':''}"), "detail.game", NULL,
	    "speedrun with an empty game");
	bad_field(DET("speedrun.start", "{'game':5}"), "detail.game",
	    "detail.game: expected a string", "game as a number");
	bad_field(DET("speedrun.start", "{'game':'C','category':['Any%']}"),
	    "detail.category", "detail.category: expected a string",
	    "category as an array");
	for (i = 0; i < 4; i++) {
		bad_field(DET(needs_split[i], "{'game':'Celeste'}"),
		    "detail.split", "detail.split: required for this type",
		    needs_split[i]);
		got = run(DET(no_split[i], "{'game':'Celeste'}"), &any,
		    "type");
		ok(got != NULL, "%s needs no split", no_split[i]);
		free(got);
	}

	snprintf(d, sizeof(d), "{'game':'%0257d'}", 0);
	bad_field(DET("speedrun.start", d), "detail.game",
	    "detail.game: longer than 256 characters", "game of 257 chars");
	strcpy(d, "{'game':'");
	for (i = 0; i < 256; i++)
		strcat(d, "\xc3\xa9");
	strcat(d, "'}");
	got = run(DET("speedrun.start", d), &any, "type");
	ok(got != NULL, "game of 256 two-byte characters fits");
	free(got);
	snprintf(d, sizeof(d), "{'game':'C','split':'%0257d'}", 0);
	bad_field(DET("speedrun.split", d), "detail.split", NULL,
	    "split of 257 chars");
	snprintf(d, sizeof(d), "{'game':'C','message':'%02000d'}", 0);
	got = run(DET("speedrun.start", d), &any, "type");
	ok(got != NULL, "message of 2000 characters fits");
	free(got);
	snprintf(d, sizeof(d), "{'game':'C','message':'%02001d'}", 0);
	bad_field(DET("speedrun.start", d), "detail.message",
	    "detail.message: longer than 2000 characters",
	    "message of 2001 chars");

	bad_field(DET("speedrun.start", "{'game':'C','attempt':-1}"),
	    "detail.attempt", "detail.attempt: expected a non-negative "
	    "integer", "negative attempt");
	bad_field(DET("speedrun.split", "{'game':'C','split':'s',"
	    "'split_index':2.5}"), "detail.split_index", NULL,
	    "fractional split_index");
	bad_field(DET("speedrun.split", "{'game':'C','split':'s',"
	    "'split_index':'3'}"), "detail.split_index", NULL,
	    "split_index as a string");
	part_is(DET("speedrun.split", "{'game':'C','split':'s',"
	    "'split_index':0,'attempt':1e3}"), "detail", "{'game':'C',"
	    "'split':'s','split_index':0,'attempt':1000}",
	    "zero and 1e3 are integers");

	bad_field(DET("speedrun.finish", "{'game':'C','run_time':'1:2:3'}"),
	    "detail.run_time",
	    "detail.run_time: expected a duration like \"-0:00:05.123\"",
	    "run_time that is no duration");
	bad_field(DET("speedrun.gold", "{'game':'C','split':'s',"
	    "'improvement':-760}"), "detail.improvement", NULL,
	    "improvement as a number");
	bad_field(DET("speedrun.gold", "{'game':'C','split':'s',"
	    "'best_segment_time':''}"), "detail.best_segment_time", NULL,
	    "empty best_segment_time");
	bad_field(DET("speedrun.split", "{'game':'C','split':'s',"
	    "'pace':'-0:00:05.123','pace_ms':-5000}"), "detail.pace_ms",
	    "detail.pace_ms: -5000 disagrees with detail.pace (-5123)",
	    "pace_ms disagreeing with pace");
	bad_field(DET("speedrun.split", "{'game':'C','split':'s',"
	    "'pace_ms':1.5}"), "detail.pace_ms",
	    "detail.pace_ms: expected an integer", "fractional pace_ms");
	bad_field(DET("speedrun.split", "{'game':'C','split':'s',"
	    "'pace':'0:01','pace_ms':'1000'}"), "detail.pace_ms", NULL,
	    "pace_ms as a string");
	part_is(DET("speedrun.finish", "{'game':'C',"
	    "'run_time':'100.00:00:00','improvement_ms':-8640000000}"),
	    "detail", "{'game':'C','run_time':'2400:00:00.000',"
	    "'run_time_ms':8640000000,'improvement':'-2400:00:00.000',"
	    "'improvement_ms':-8640000000}",
	    "durations of exactly 100 days, as text or ms, are accepted");
	bad_field(DET("speedrun.split", "{'game':'C','split':'s',"
	    "'pace':'999999999999:00:00'}"), "detail.pace",
	    "detail.pace: longer than 100 days (8640000000 ms)",
	    "pace of a trillion hours");
	bad_field(DET("speedrun.finish", "{'game':'C',"
	    "'run_time':'-100.00:00:00.001'}"), "detail.run_time", NULL,
	    "run_time a millisecond over 100 days, negative");
	bad_field(DET("speedrun.split", "{'game':'C','split':'s',"
	    "'pace_ms':8640000001}"), "detail.pace_ms",
	    "detail.pace_ms: longer than 100 days (8640000000 ms)",
	    "pace_ms a millisecond over 100 days");
	bad_field(DET("speedrun.gold", "{'game':'C','split':'s',"
	    "'segment_time_ms':-9007199254740992}"),
	    "detail.segment_time_ms", NULL, "segment_time_ms of -2^53");
	bad_field(DET("speedrun.split", "{'game':'C','split':'s',"
	    "'pace':'1.00:00:00','pace_ms':3600000000000000000}"),
	    "detail.pace_ms", "detail.pace_ms: longer than 100 days "
	    "(8640000000 ms)", "pace_ms of 3.6e18 beside a good pace");

	strcpy(d, "{'game':'C'");
	for (i = 1; i < 64; i++)
		sprintf(d + strlen(d), ",'f%zu':%zu", i, i);
	strcat(d, "}");
	got = run(DET("speedrun.start", d), &any, "type");
	ok(got != NULL, "detail of 64 members fits");
	free(got);
	strcpy(d + strlen(d) - 1, ",'f64':64}");
	bad_field(DET("speedrun.start", d), "detail",
	    "detail: more than 64 members", "detail of 65 members");
}

static void
duration_is(const char *s, int64_t want)
{
	int64_t ms = 7777777;

	ok(event_parse_duration(s, &ms) == 0 && ms == want,
	    "duration \"%s\" is %" PRId64 " ms (got %" PRId64 ")", s, want,
	    ms);
}

static void
test_durations(void)
{
	static const char *bad[] = { "", "-", "5", "5:3", "5:60", "1:60:00",
	    "1:00:60", "1:0:00", "1.24:00:00", "1.2:03", "0:00:05.",
	    "0:00:05.12345678", "0:00:05 ", " 0:00:05", "0:00:05x", "--0:01",
	    "+-0:01", "1:00:00:00", "1234567890123:00", "1.5", "0:00,5",
	    "100000000.00:00:00", "1:005", "0:5:00",
	    "00:00:05.1230000 | ", "\xd9\xa1:00" };
	static const int64_t round[] = { 0, 1, -1, 999, 59999, 3600000,
	    -5123, 93784500, 922337203685477 };
	char buf[40];
	int64_t ms;
	size_t i;

	duration_is("0:00", 0);
	duration_is("5:03", 303000);
	duration_is("75:00", 4500000);
	duration_is("1:00:00", 3600000);
	duration_is("100:00:00", 360000000);
	duration_is("-00:00:05.1230000", -5123);
	duration_is("-0:00:00.0009", 0);
	duration_is("-0:00:00.0019", -1);
	duration_is("0:00:00.9999999", 999);
	duration_is("+1:02:03.4", 3723400);
	duration_is("1.02:03:04.5", 93784500);
	duration_is("-1.00:00:00", -86400000);
	duration_is("10675199.02:48:05.4775807", 922337203685477);
	duration_is("00:15:38.21", 938210);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(event_parse_duration(bad[i], &ms) == -1,
		    "refuses duration \"%s\"", bad[i]);

	event_fmt_duration(buf, sizeof(buf), 0);
	is_str(buf, "0:00:00.000", "formats zero");
	event_fmt_duration(buf, sizeof(buf), -5000);
	is_str(buf, "-0:00:05.000", "formats a negative duration");
	event_fmt_duration(buf, sizeof(buf), 93784500);
	is_str(buf, "26:03:04.500", "formats days as hours, unpadded");
	event_fmt_duration(buf, sizeof(buf), -1);
	is_str(buf, "-0:00:00.001", "formats -1 ms");
	event_fmt_duration(buf, sizeof(buf), INT64_MIN);
	is_str(buf, "-2562047788015:12:55.808", "formats INT64_MIN");
	event_fmt_duration(buf, 6, -5000);
	is_str(buf, "-0:00", "truncates to the buffer");
	for (i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
		event_fmt_duration(buf, sizeof(buf), round[i]);
		ok(event_parse_duration(buf, &ms) == 0 && ms == round[i],
		    "formatted %" PRId64 " parses back", round[i]);
	}
}

static int
crockford(const char *id)
{
	static const char digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	size_t i;

	if (strlen(id) != EVENT_ID_LEN || id[0] > '7')
		return 0;
	for (i = 0; i < EVENT_ID_LEN; i++)
		if (strchr(digits, id[i]) == NULL)
			return 0;
	return 1;
}

static void
test_ids(void)
{
	char prev[EVENT_ID_LEN + 1], id[EVENT_ID_LEN + 1];
	char first[EVENT_ID_LEN + 1];
	int i, sorted = 1, format = 1, same_ms = 1, moved = 0;

	event_id(first, RECV);
	ok(crockford(first), "an id is 26 Crockford base32 digits (%s)",
	    first);
	ok(strncmp(first, "01JCNWKJF8", 10) == 0,
	    "the first 10 digits are the milliseconds");

	memcpy(prev, first, sizeof(prev));
	for (i = 0; i < 10000; i++) {
		event_id(id, RECV);
		if (strcmp(id, prev) <= 0)
			sorted = 0;
		if (!crockford(id))
			format = 0;
		if (strncmp(id, "01JCNWKJF8", 10) != 0)
			same_ms = 0;
		memcpy(prev, id, sizeof(prev));
	}
	ok(sorted, "10000 ids in one millisecond increase strictly");
	ok(format, "all of them are well formed");
	ok(same_ms, "all of them keep the millisecond");

	event_id(id, RECV - 60000);
	ok(strcmp(id, prev) > 0 && strncmp(id, "01JCNWKJF8", 10) == 0,
	    "a clock a minute back still gives a larger id, on the last ms");
	memcpy(prev, id, sizeof(prev));

	sorted = 1;
	for (i = 0; i < 10000; i++) {
		event_id(id, RECV + 1 + (i % 7 == 0 ? -500 : i));
		if (strcmp(id, prev) <= 0)
			sorted = 0;
		if (strcmp(id + 10, prev + 10) != 0 &&
		    strncmp(id, prev, 10) != 0)
			moved++;
		memcpy(prev, id, sizeof(prev));
	}
	ok(sorted, "10000 ids over a clock that jumps back increase strictly");
	ok(moved > 1000, "a new millisecond draws new random bits (%d)",
	    moved);
	event_id(id, RECV + 20000);
	ok(strncmp(id, "01JCNWM608", 10) == 0 && strcmp(id, prev) > 0,
	    "a later millisecond shows in the prefix (%s)", id);
}

/* The hand-written formatting and parsing in util.c. */
static void
test_util_time(void)
{
	char buf[32], small[8], *p;

	fmt_rfc3339(buf, sizeof(buf), 0);
	is_str(buf, "1970-01-01T00:00:00.000Z", "rfc3339 of the epoch");
	fmt_rfc3339(buf, sizeof(buf), 1764798497123LL);
	is_str(buf, "2025-12-03T21:48:17.123Z", "rfc3339 with milliseconds");
	fmt_rfc3339(buf, sizeof(buf), -1);
	is_str(buf, "1969-12-31T23:59:59.999Z", "rfc3339 just before the "
	    "epoch borrows a second");
	fmt_rfc3339(buf, sizeof(buf), -62135596800000LL);
	is_str(buf, "0001-01-01T00:00:00.000Z", "rfc3339 pads year 1 to four "
	    "digits");
	fmt_rfc3339(buf, sizeof(buf), 253402300799999LL);
	is_str(buf, "9999-12-31T23:59:59.999Z", "rfc3339 of the last "
	    "millisecond of 9999");
	fmt_rfc3339(small, sizeof(small), 0);
	is_str(small, "1970-01", "rfc3339 into a short buffer is cut and "
	    "terminated");

	p = fmt_uint(buf, 7, 3);
	*p = '\0';
	is_str(buf, "007", "fmt_uint pads to the width");
	p = fmt_uint(buf, 18446744073709551615ULL, 1);
	*p = '\0';
	is_str(buf, "18446744073709551615", "fmt_uint writes the largest "
	    "value in full");
	p = fmt_uint(buf, 0, 0);
	*p = '\0';
	is_str(buf, "0", "fmt_uint writes 0 as one digit");
	str_copy(small, "abcdefghij", sizeof(small));
	is_str(small, "abcdefg", "str_copy cuts to the buffer and "
	    "terminates");

	ok(http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT") ==
	    784111777000LL, "http_date_ms reads an IMF-fixdate");
	ok(http_date_ms("Thu, 03 Dec 2026 23:59:60 GMT") ==
	    http_date_ms("Fri, 04 Dec 2026 00:00:00 GMT"),
	    "http_date_ms takes a leap second as the next one");
	ok(http_date_ms("Sunday, 06-Nov-94 08:49:37 GMT") == -1,
	    "the obsolete RFC 850 form is refused");
	ok(http_date_ms("Sun Nov  6 08:49:37 1994") == -1,
	    "the asctime form is refused");
	ok(http_date_ms("Sun, 06 Nov 1994 08:49:37 UTC") == -1,
	    "a zone other than GMT is refused");
	ok(http_date_ms("Sun, 06 Foo 1994 08:49:37 GMT") == -1,
	    "an unknown month is refused");
	ok(http_date_ms("Sun, 32 Nov 1994 08:49:37 GMT") == -1,
	    "day 32 is refused");
	ok(http_date_ms("Sun, 06 Nov 1994 24:00:00 GMT") == -1,
	    "hour 24 is refused");
	ok(http_date_ms("Sun, 06 Nov 19x4 08:49:37 GMT") == -1,
	    "a year with a letter is refused");
	ok(http_date_ms("120") == -1, "seconds are not a date");

#define RA(s)	retry_after_header((s), strlen(s))
	ok(RA("Retry-After: 120\r\n") == 120000, "Retry-After in seconds");
	ok(RA("retry-after:\t1.5 \r\n") == 1500, "any case, tabs, a fraction");
	ok(RA("Retry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n") == 0,
	    "an HTTP-date already past is no wait");
	ok(RA("Retry-After: soon\r\n") == -2, "a value not read is -2");
	ok(RA("Retry-After: 86400\r\n") == -2, "a day or more is not read");
	ok(RA("Retry-After: -1\r\n") == -2, "a negative wait is not read");
	ok(RA("Retry-After-Extra: 1\r\n") == -1, "another header that starts "
	    "alike is not taken for it");
	ok(RA("Content-Length: 3\r\n") == -1, "another header is -1");
	ok(RA("Retry-After: 12345678901234567890123456789012345678901234567890"
	    "\r\n") == -1, "a value too long for any date is ignored");
#undef RA
}

int
main(void)
{
	util_init();
	test_util_time();
	test_legacy();
	test_putevents();
	test_eventbridge();
	test_sns();
	test_native();
	test_envelope_checks();
	test_speedrun_fields();
	test_durations();
	test_ids();
	return done();
}
