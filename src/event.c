/* The canonical envelope: each accepted input shape normalized into it. */
#include "autoconf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "config.h"
#include "event.h"
#include "json.h"
#include "log.h"
#include "util.h"

/*
 * What each shape means, and the choices made where the shapes leave room:
 *
 * native	{type, source, producer, time, detail}.  source defaults to
 *		"api"; producer, if given, must be the key's.
 * EventBridge	{detail-type, source, detail, time}.  source is required,
 *		as in EventBridge.  AWS's own envelope members (version, id,
 *		account, region, resources) are accepted and dropped: ctrd
 *		assigns the id, and the producer comes from the key.
 * PutEvents	{DetailType, Source, Detail, Time}; Detail is a string
 *		holding a JSON object, parsed as strictly as a body.
 *		Resources, EventBusName and TraceHeader are dropped.
 * SNS		{Subject, Message, MessageAttributes, Timestamp}.  Subject
 *		is the type; source is always "sns".  A Message starting
 *		with '{' must be a JSON object and becomes the detail; any
 *		other text becomes detail.message.  Each attribute
 *		{Type, Value} becomes a detail field.  The members SNS adds
 *		to a notification (TopicArn, MessageId, Signature, ...) are
 *		dropped.
 * legacy	The Catch The Run LiveSplit component's PascalCase body;
 *		see from_legacy.  Its unknown members are kept in detail.
 *
 * In every shape but legacy, any other top-level member is refused: a
 * field the producer meant for consumers must not vanish silently.
 *
 * detail is always an object of at most DETAIL_MEMBERS_MAX members as
 * sent (before ctrd adds the "_ms" twins below).
 *
 * For the speedrun types ctrd knows (start, split, gold, skip, undo,
 * reset, finish, pb) the fields they define are checked, and each duration
 * is rewritten as canonical text ("-0:00:05.123") beside its milliseconds
 * ("pace_ms"), so that consumers need not parse either form.  Types
 * outside speedrun.* pass through with detail as sent, and so do speedrun.*
 * types that ctrd does not know yet, so that producers can add kinds of
 * event before ctrd learns them.
 *
 * Bounds, so that what consumers get stays in the range they can hold:
 * a producer's time, once converted to UTC, must fall in the years 0001
 * to 9999 (an offset can push a time written in either year over the
 * edge, and RFC 3339 has four-digit years only).  A duration, as text or
 * as "_ms", may be at most DURATION_MAX_DAYS (100) either way: longer
 * than any run, and its milliseconds stay far inside a JSON number's
 * exact 2^53.
 */

#define TYPE_MAX		128
#define SOURCE_MAX		64
#define DETAIL_MEMBERS_MAX	64
#define EMBEDDED_DEPTH_MAX	32	/* Detail and Message strings */
#define TEXT_DURATION_MAX	48	/* longer is never a duration */
#define DURATION_MAX_DAYS	100
#define DURATION_MAX_MS		(DURATION_MAX_DAYS * 86400000LL)
/* 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z */
#define TIME_MIN_MS		(-62135596800000LL)
#define TIME_MAX_MS		253402300799999LL

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#define ERR_LEGACY_TIME \
	"expected a time like \"2024-11-14T18:47:44.1234567+01:00\""
#define ERR_RFC3339 "expected an RFC 3339 time like \"2024-11-14T17:47:44Z\""
#define ERR_DURATION "expected a duration like \"-0:00:05.123\""
#define ERR_YEARS "outside the years 0001 to 9999 in UTC"

/* One entry on its way to becoming an envelope. */
struct norm {
	const char	*type;		/* points into the input, or static */
	const char	*type_field;	/* the input member named in errors */
	const char	*source;
	const char	*source_field;
	int		 has_origin;
	int64_t		 origin_ms;
	cJSON		*detail;	/* owned */
};

static int __attribute__((format(printf, 5, 6)))
refuse(struct event_error *err, int status, const char *code,
    const char *field, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	err->status = status;
	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field);
	if (*field != '\0')
		n = snprintf(err->message, sizeof(err->message), "%s: ",
		    err->field);
	va_start(ap, fmt);
	vsnprintf(err->message + n, sizeof(err->message) - n, fmt, ap);
	va_end(ap);
	return -1;
}

#define bad_field(err, field, ...) \
	refuse((err), 400, "invalid_field", (field), __VA_ARGS__)

/* Producer text, made printable and short, for a field name or message. */
static const char *
shown(char *buf, size_t len, const char *s)
{
	return log_escape(buf, len, s, strlen(s));
}

static const cJSON *
member(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* *out is the member's text, or NULL when it is absent or null. */
static int
opt_string(const cJSON *obj, const char *key, const char **out,
    struct event_error *err)
{
	const cJSON *v = member(obj, key);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return bad_field(err, key, "expected a string");
	*out = v->valuestring;
	return 0;
}

/* Read between 1 and max digits; *ndig says how many there were. */
static int
read_uint(const char **p, int max, int64_t *v, int *ndig)
{
	int n = 0;

	*v = 0;
	while (**p >= '0' && **p <= '9') {
		if (++n > max)
			return -1;
		*v = *v * 10 + (**p - '0');
		(*p)++;
	}
	if (ndig != NULL)
		*ndig = n;
	return n > 0 ? 0 : -1;
}

/* Exactly n digits. */
static int
read_fixed(const char **p, int n, int *v)
{
	int64_t x;
	int got;
	const char *q = *p;

	if (read_uint(&q, n, &x, &got) == -1 || got != n)
		return -1;
	*p = q;
	*v = (int)x;
	return 0;
}

/* ".fff..." with 1 to max digits, as milliseconds truncated; none is 0. */
static int
read_fraction(const char **p, int max, int64_t *ms)
{
	int n = 0;

	*ms = 0;
	if (**p != '.')
		return 0;
	(*p)++;
	while (**p >= '0' && **p <= '9') {
		if (++n > max)
			return -1;
		if (n <= 3)
			*ms = *ms * 10 + (**p - '0');
		(*p)++;
	}
	if (n == 0)
		return -1;
	for (; n < 3; n++)
		*ms *= 10;
	return 0;
}

int
event_parse_duration(const char *s, int64_t *ms)
{
	const char *p = s;
	int64_t a, b, days = 0, hours = 0, mins, secs = 0, frac, total;
	int neg = 0, has_hours = 0, nb, ss;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	/* Twelve digits of hours or minutes, or eight of days, keep every
	 * sum below 2^63 ms. */
	if (read_uint(&p, 12, &a, NULL) == -1)
		return -1;
	if (*p == '.') {
		/* "d.hh:mm:ss": days always come with hours. */
		p++;
		if ((days = a) > 99999999)
			return -1;
		if (read_uint(&p, 2, &hours, NULL) == -1 || hours > 23 ||
		    *p++ != ':' || read_uint(&p, 2, &mins, &nb) == -1 ||
		    nb != 2)
			return -1;
		has_hours = 1;
	} else {
		if (*p++ != ':' || read_uint(&p, 2, &b, &nb) == -1)
			return -1;
		if (*p == ':') {
			hours = a;
			mins = b;
			has_hours = 1;
			if (nb != 2)
				return -1;
		} else {
			mins = a;
			if (nb != 2 || b > 59)
				return -1;
			secs = b;
		}
	}
	if (has_hours) {
		if (*p++ != ':' || read_fixed(&p, 2, &ss) == -1 ||
		    mins > 59 || ss > 59)
			return -1;
		secs = ss;
	}
	if (read_fraction(&p, 7, &frac) == -1 || *p != '\0')
		return -1;
	total = (((days * 24 + hours) * 60 + mins) * 60 + secs) * 1000 +
	    frac;
	*ms = neg ? -total : total;
	return 0;
}

void
event_fmt_duration(char *buf, size_t len, int64_t ms)
{
	uint64_t u = ms < 0 ? -(uint64_t)ms : (uint64_t)ms;
	char tmp[40], *p = tmp;

	/* By hand: this runs for every duration of every event. */
	if (ms < 0)
		*p++ = '-';
	p = fmt_uint(p, u / 3600000, 1);
	*p++ = ':';
	p = fmt_uint(p, u / 60000 % 60, 2);
	*p++ = ':';
	p = fmt_uint(p, u / 1000 % 60, 2);
	*p++ = '.';
	p = fmt_uint(p, u % 1000, 3);
	*p = '\0';
	str_copy(buf, tmp, len);
}

/* Within DURATION_MAX_MS either way. */
static int
duration_ok(int64_t ms)
{
	return ms >= -DURATION_MAX_MS && ms <= DURATION_MAX_MS;
}

static int
too_long(struct event_error *err, const char *field, const char *side)
{
	return bad_field(err, field, "%slonger than %d days (%lld ms)", side,
	    DURATION_MAX_DAYS, DURATION_MAX_MS);
}

static int
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian, y >= 1). */
static int64_t
days_since_epoch(int y, int m, int d)
{
	static const int before[] = { 0, 31, 59, 90, 120, 151, 181, 212,
	    243, 273, 304, 334 };
	int64_t py = y - 1, days;

	days = py * 365 + py / 4 - py / 100 + py / 400;
	days += before[m - 1] + (m > 2 && is_leap(y)) + d - 1;
	return days - 719162;	/* 0001-01-01 to 1970-01-01 */
}

/*
 * "YYYY-MM-DDThh:mm:ss[.f]" then "Z" or "+hh:mm"/"-hh:mm", as RFC 3339
 * and .NET's round-trip format write it; maxfrac bounds the fraction.
 * XXX: a leap second (ss = 60) is refused though RFC 3339 allows it:
 * milliseconds since the epoch cannot name it.
 */
static int
parse_time(const char *s, int maxfrac, int64_t *ms)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	const char *p = s;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t frac;

	if (read_fixed(&p, 4, &y) == -1 || *p++ != '-' ||
	    read_fixed(&p, 2, &mo) == -1 || *p++ != '-' ||
	    read_fixed(&p, 2, &d) == -1 || (*p != 'T' && *p != 't'))
		return -1;
	p++;
	if (read_fixed(&p, 2, &h) == -1 || *p++ != ':' ||
	    read_fixed(&p, 2, &mi) == -1 || *p++ != ':' ||
	    read_fixed(&p, 2, &sec) == -1 ||
	    read_fraction(&p, maxfrac, &frac) == -1)
		return -1;
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (read_fixed(&p, 2, &oh) == -1 || *p++ != ':' ||
		    read_fixed(&p, 2, &om) == -1 || oh > 23 || om > 59)
			return -1;
	} else
		return -1;
	if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && is_leap(y)) || h > 23 ||
	    mi > 59 || sec > 59)
		return -1;
	*ms = ((days_since_epoch(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
	*ms = *ms * 1000 + frac - (int64_t)sign * (oh * 60 + om) * 60000;
	return 0;
}

void
event_id(char *buf, int64_t ms)
{
	static const char digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	static const uint64_t ms_max = ((uint64_t)1 << 48) - 1;
	static int started;
	static uint64_t last_ms;
	static unsigned char rnd[10];
	unsigned char raw[16];
	uint64_t t;
	int i, j, bit, carry;
	unsigned v;

	/* The state is the process's: ctrd makes ids on its one loop. */
	if (!started && sodium_init() < 0)
		fatalx("sodium_init failed");
	t = ms < 0 ? 0 : (uint64_t)ms > ms_max ? ms_max : (uint64_t)ms;

	/* Same millisecond, or the clock went back: stay on the last
	 * millisecond and count up, so that ids keep increasing. */
	if (started && t <= last_ms) {
		t = last_ms;
		for (carry = 1, i = 9; i >= 0 && carry; i--)
			carry = ++rnd[i] == 0;
		if (carry) {
			if (t == ms_max)
				fatalx("event ids exhausted");
			t++;
			randombytes_buf(rnd, sizeof(rnd));
		}
	} else
		randombytes_buf(rnd, sizeof(rnd));
	started = 1;
	last_ms = t;

	for (i = 0; i < 6; i++)
		raw[i] = (unsigned char)(t >> (40 - 8 * i));
	memcpy(raw + 6, rnd, sizeof(rnd));

	/* 26 digits of 5 bits hold 130 bits: the first two are zero. */
	for (i = 0; i < EVENT_ID_LEN; i++) {
		v = 0;
		for (j = 0, bit = i * 5 - 2; j < 5; j++, bit++) {
			v <<= 1;
			if (bit >= 0)
				v |= (raw[bit / 8] >> (7 - bit % 8)) & 1;
		}
		buf[i] = digits[v];
	}
	buf[EVENT_ID_LEN] = '\0';
}

int
event_type_valid(const char *s)
{
	size_t n = 0, word = 0, words = 1;

	for (; s[n] != '\0'; n++) {
		if (s[n] == '.') {
			if (word == 0)
				return 0;
			word = 0;
			words++;
		} else if ((s[n] >= 'a' && s[n] <= 'z') ||
		    (s[n] >= '0' && s[n] <= '9') || s[n] == '_' ||
		    s[n] == '-')
			word++;
		else
			return 0;
	}
	return words >= 2 && word > 0 && n <= TYPE_MAX;
}

static int
valid_source(const char *s)
{
	size_t n;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (n = 1; s[n] != '\0'; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') ||
		    (s[n] >= '0' && s[n] <= '9') || s[n] == '.' ||
		    s[n] == '_' || s[n] == '-'))
			return 0;
	return n <= SOURCE_MAX;
}

/* An input member that the producer can name but never choose. */
static int
check_producer(const cJSON *in, const char *key,
    const struct producer_conf *pc, struct event_error *err)
{
	const char *v;
	char b[48];

	if (opt_string(in, key, &v, err) == -1)
		return -1;
	if (v != NULL && strcmp(v, pc->name) != 0)
		return refuse(err, 403, "producer_mismatch", key,
		    "\"%s\" is not the producer this key belongs to",
		    shown(b, sizeof(b), v));
	return 0;
}

/* Every top-level member must be one that the shape knows. */
static int
check_members(const cJSON *in, const char *const *known, const char *shape,
    struct event_error *err)
{
	const cJSON *it;
	const char *const *k;
	char b[48];

	cJSON_ArrayForEach(it, in) {
		for (k = known; *k != NULL; k++)
			if (strcmp(*k, it->string) == 0)
				break;
		if (*k == NULL)
			return bad_field(err, shown(b, sizeof(b), it->string),
			    "not a member of %s entry", shape);
	}
	return 0;
}

static int
take_type(const cJSON *in, const char *key, struct norm *n,
    struct event_error *err)
{
	const cJSON *v = member(in, key);

	n->type_field = key;
	if (v == NULL || cJSON_IsNull(v))
		return refuse(err, 400, "invalid_type", key, "required");
	if (!cJSON_IsString(v))
		return refuse(err, 400, "invalid_type", key,
		    "expected a string");
	n->type = v->valuestring;
	return 0;
}

/* dflt NULL: the shape requires a source. */
static int
take_source(const cJSON *in, const char *key, const char *dflt,
    struct norm *n, struct event_error *err)
{
	const cJSON *v = member(in, key);

	n->source_field = key;
	if (v == NULL || cJSON_IsNull(v)) {
		if (dflt == NULL)
			return refuse(err, 400, "invalid_source", key,
			    "required");
		n->source = dflt;
		return 0;
	}
	if (!cJSON_IsString(v))
		return refuse(err, 400, "invalid_source", key,
		    "expected a string");
	n->source = v->valuestring;
	return 0;
}

/* The producer's time v, from member key, as the origin time. */
static int
set_origin(const char *v, int maxfrac, const char *key, const char *form,
    struct norm *n, struct event_error *err)
{
	if (parse_time(v, maxfrac, &n->origin_ms) == -1)
		return bad_field(err, key, "%s", form);
	if (n->origin_ms < TIME_MIN_MS || n->origin_ms > TIME_MAX_MS)
		return bad_field(err, key, ERR_YEARS);
	n->has_origin = 1;
	return 0;
}

static int
take_time(const cJSON *in, const char *key, struct norm *n,
    struct event_error *err)
{
	const char *v;

	if (opt_string(in, key, &v, err) == -1)
		return -1;
	if (v == NULL)
		return 0;
	return set_origin(v, 9, key, ERR_RFC3339, n, err);
}

/* The member as the detail object; absent or null is {}. */
static int
take_detail(const cJSON *in, const char *key, struct norm *n,
    struct event_error *err)
{
	const cJSON *v = member(in, key);

	if (v == NULL || cJSON_IsNull(v)) {
		n->detail = cJSON_CreateObject();
		return 0;
	}
	if (!cJSON_IsObject(v))
		return bad_field(err, key, "expected an object");
	n->detail = cJSON_Duplicate(v, 1);
	return 0;
}

/* JSON inside a string member, held to the same rules as a body. */
static cJSON *
parse_embedded(const char *text, const char *field, struct event_error *err)
{
	struct json_error jerr;
	cJSON *v;

	v = json_parse_strict(text, strlen(text), EMBEDDED_DEPTH_MAX, 0,
	    &jerr);
	if (v == NULL)
		bad_field(err, field, "%s", jerr.message);
	return v;
}

static int
from_native(const cJSON *in, const struct producer_conf *pc,
    struct norm *n, struct event_error *err)
{
	static const char *const known[] = { "type", "source", "producer",
	    "time", "detail", NULL };

	if (check_members(in, known, "a native", err) == -1 ||
	    take_type(in, "type", n, err) == -1 ||
	    take_source(in, "source", "api", n, err) == -1 ||
	    check_producer(in, "producer", pc, err) == -1 ||
	    take_time(in, "time", n, err) == -1 ||
	    take_detail(in, "detail", n, err) == -1)
		return -1;
	return 0;
}

static int
from_eventbridge(const cJSON *in, struct norm *n, struct event_error *err)
{
	static const char *const known[] = { "detail-type", "source",
	    "detail", "time", "version", "id", "account", "region",
	    "resources", NULL };

	if (check_members(in, known, "an EventBridge", err) == -1 ||
	    take_type(in, "detail-type", n, err) == -1 ||
	    take_source(in, "source", NULL, n, err) == -1 ||
	    take_time(in, "time", n, err) == -1 ||
	    take_detail(in, "detail", n, err) == -1)
		return -1;
	return 0;
}

static int
from_putevents(const cJSON *in, struct norm *n, struct event_error *err)
{
	static const char *const known[] = { "DetailType", "Source",
	    "Detail", "Time", "Resources", "EventBusName", "TraceHeader",
	    NULL };
	const char *text;

	if (check_members(in, known, "a PutEvents", err) == -1 ||
	    take_type(in, "DetailType", n, err) == -1 ||
	    take_source(in, "Source", NULL, n, err) == -1 ||
	    take_time(in, "Time", n, err) == -1 ||
	    opt_string(in, "Detail", &text, err) == -1)
		return -1;
	if (text == NULL) {
		n->detail = cJSON_CreateObject();
		return 0;
	}
	if ((n->detail = parse_embedded(text, "Detail", err)) == NULL)
		return -1;
	if (!cJSON_IsObject(n->detail))
		return bad_field(err, "Detail",
		    "expected a string holding a JSON object");
	return 0;
}

/* One SNS message attribute {Type, Value} as a detail value. */
static cJSON *
sns_attribute(const cJSON *attr, struct event_error *err)
{
	const cJSON *t, *v;
	cJSON *out;
	char field[64], b[40];
	const char *s;

	snprintf(field, sizeof(field), "MessageAttributes.%s",
	    shown(b, sizeof(b), attr->string));
	t = cJSON_IsObject(attr) ? member(attr, "Type") : NULL;
	v = cJSON_IsObject(attr) ? member(attr, "Value") : NULL;
	if (!cJSON_IsString(t) ||
	    !cJSON_IsString(v) || cJSON_GetArraySize(attr) != 2) {
		bad_field(err, field, "expected {\"Type\": ..., \"Value\": "
		    "...} with string members");
		return NULL;
	}
	s = v->valuestring;
	if (strcmp(t->valuestring, "String") == 0)
		return cJSON_CreateString(s);
	if (strcmp(t->valuestring, "Number") == 0) {
		/* JSON's number grammar, nothing around it. */
		out = NULL;
		if ((*s == '-' || (*s >= '0' && *s <= '9')) &&
		    s[strlen(s) - 1] >= '0' && s[strlen(s) - 1] <= '9')
			out = parse_embedded(s, field, err);
		if (out == NULL || !cJSON_IsNumber(out)) {
			cJSON_Delete(out);
			bad_field(err, field, "expected a number, as text");
			return NULL;
		}
		return out;
	}
	if (strcmp(t->valuestring, "String.Array") == 0) {
		if ((out = parse_embedded(s, field, err)) == NULL)
			return NULL;
		if (!cJSON_IsArray(out)) {
			cJSON_Delete(out);
			bad_field(err, field,
			    "expected a JSON array, as text");
			return NULL;
		}
		return out;
	}
	bad_field(err, field, "Type must be String, Number or String.Array");
	return NULL;
}

static int
from_sns(const cJSON *in, struct norm *n, struct event_error *err)
{
	static const char *const known[] = { "Subject", "Message",
	    "MessageAttributes", "Timestamp", "Type", "MessageId",
	    "TopicArn", "TargetArn", "MessageStructure", "MessageGroupId",
	    "MessageDeduplicationId", "SignatureVersion", "Signature",
	    "SigningCertURL", "UnsubscribeURL", NULL };
	const cJSON *attrs, *a;
	const char *msg, *p;
	cJSON *v;
	char b[40];

	if (check_members(in, known, "an SNS", err) == -1 ||
	    take_type(in, "Subject", n, err) == -1 ||
	    take_time(in, "Timestamp", n, err) == -1 ||
	    opt_string(in, "Message", &msg, err) == -1)
		return -1;
	n->source = "sns";
	n->source_field = "source";
	if (msg == NULL)
		return bad_field(err, "Message", "expected a string");

	for (p = msg; *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n';)
		p++;
	if (*p == '{') {
		if ((n->detail = parse_embedded(msg, "Message", err)) == NULL)
			return -1;
		if (!cJSON_IsObject(n->detail))
			return bad_field(err, "Message",
			    "expected a JSON object or plain text");
	} else {
		n->detail = cJSON_CreateObject();
		cJSON_AddStringToObject(n->detail, "message", msg);
	}

	attrs = member(in, "MessageAttributes");
	if (attrs == NULL || cJSON_IsNull(attrs))
		return 0;
	if (!cJSON_IsObject(attrs))
		return bad_field(err, "MessageAttributes",
		    "expected an object");
	cJSON_ArrayForEach(a, attrs) {
		if (member(n->detail, a->string) != NULL)
			return bad_field(err, "MessageAttributes",
			    "\"%s\" is also a field of the message",
			    shown(b, sizeof(b), a->string));
		if ((v = sns_attribute(a, err)) == NULL)
			return -1;
		cJSON_AddItemToObject(n->detail, a->string, v);
	}
	return 0;
}

/* One side of LiveSplit's "REAL | GAME" pace, spaces trimmed. */
static int
pace_side(const char *s, size_t len, int *present, int64_t *ms)
{
	char text[TEXT_DURATION_MAX];

	while (len > 0 && *s == ' ') {
		s++;
		len--;
	}
	while (len > 0 && s[len - 1] == ' ')
		len--;
	*present = len > 0;
	if (len == 0)
		return 0;
	if (len >= sizeof(text))
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	return event_parse_duration(text, ms);
}

/*
 * Pace as the component sends it: "REAL | GAME", .NET TimeSpans, either
 * side possibly empty; a lone TimeSpan is taken as the real side.
 * detail.pace is the real side, or the game side when real is empty.
 */
static int
legacy_pace(const char *raw, cJSON *detail, struct event_error *err)
{
	const char *bar = strchr(raw, '|');
	int64_t real_ms = 0, game_ms = 0;
	int has_real, has_game = 0;
	char text[32];

	if (bar != NULL && strchr(bar + 1, '|') != NULL)
		goto bad;
	if (pace_side(raw, bar ? (size_t)(bar - raw) : strlen(raw),
	    &has_real, &real_ms) == -1)
		goto bad;
	if (bar != NULL && pace_side(bar + 1, strlen(bar + 1), &has_game,
	    &game_ms) == -1)
		goto bad;
	if (has_real && !duration_ok(real_ms))
		return too_long(err, "Pace", "real side ");
	if (has_game && !duration_ok(game_ms))
		return too_long(err, "Pace", "game side ");
	if (has_real || has_game) {
		event_fmt_duration(text, sizeof(text),
		    has_real ? real_ms : game_ms);
		cJSON_AddStringToObject(detail, "pace", text);
		cJSON_AddNumberToObject(detail, "pace_ms",
		    (double)(has_real ? real_ms : game_ms));
	}
	if (has_game)
		cJSON_AddNumberToObject(detail, "pace_game_ms",
		    (double)game_ms);
	cJSON_AddStringToObject(detail, "pace_raw", raw);
	return 0;

bad:
	return bad_field(err, "Pace", "expected \"REAL | GAME\" .NET "
	    "TimeSpans like \"-00:00:05.1230000 | -00:00:04.9000000\"");
}

/*
 * The Catch The Run LiveSplit component's body.  Its legacy type
 * "speedrun.pb" means "on personal-best pace at this split", so it becomes
 * a split with detail.pb_pace.  Members it does not define are kept in
 * detail under their own names; one that would overwrite a field derived
 * here is refused.  null counts as absent, as .NET serializers write it.
 * XXX: the checks shared with other shapes name the detail field
 * ("detail.split"), not the member it came from ("SplitName").
 */
static int
from_legacy(const cJSON *in, const struct producer_conf *pc,
    struct norm *n, struct event_error *err)
{
	static const char *const text[][2] = { { "Game", "game" },
	    { "Category", "category" }, { "SplitName", "split" },
	    { "Message", "message" } };
	static const char *const used[] = { "EventType", "EventSource",
	    "Producer", "Game", "Category", "SplitName", "Message", "Pace",
	    "Timestamp", NULL };
	const char *v, *const *u;
	const cJSON *it;
	size_t i;
	int pb;
	char b[48];

	if (take_type(in, "EventType", n, err) == -1 ||
	    take_source(in, "EventSource", "livesplit", n, err) == -1 ||
	    check_producer(in, "Producer", pc, err) == -1)
		return -1;
	if ((pb = strcmp(n->type, "speedrun.pb") == 0))
		n->type = "speedrun.split";

	n->detail = cJSON_CreateObject();
	for (i = 0; i < NELEM(text); i++) {
		if (opt_string(in, text[i][0], &v, err) == -1)
			return -1;
		if (v != NULL)
			cJSON_AddStringToObject(n->detail, text[i][1], v);
	}
	if (opt_string(in, "Pace", &v, err) == -1)
		return -1;
	if (v != NULL && legacy_pace(v, n->detail, err) == -1)
		return -1;
	if (opt_string(in, "Timestamp", &v, err) == -1)
		return -1;
	if (v != NULL) {
		if (set_origin(v, 7, "Timestamp", ERR_LEGACY_TIME, n,
		    err) == -1)
			return -1;
		cJSON_AddStringToObject(n->detail, "timestamp_raw", v);
	}
	if (pb) {
		cJSON_AddTrueToObject(n->detail, "pb_pace");
		cJSON_AddStringToObject(n->detail, "legacy_type",
		    "speedrun.pb");
	}

	cJSON_ArrayForEach(it, in) {
		for (u = used; *u != NULL && strcmp(*u, it->string) != 0; u++)
			;
		if (*u != NULL)
			continue;
		if (member(n->detail, it->string) != NULL)
			return bad_field(err, shown(b, sizeof(b), it->string),
			    "clashes with a field derived from the body");
		cJSON_AddItemToObject(n->detail, it->string,
		    cJSON_Duplicate(it, 1));
	}
	return 0;
}

static int
from_any(const cJSON *in, const struct producer_conf *pc, struct norm *n,
    struct event_error *err)
{
	if (!cJSON_IsObject(in))
		return refuse(err, 400, "invalid_event", "",
		    "expected a JSON object");
	if (member(in, "EventType") != NULL)
		return from_legacy(in, pc, n, err);
	if (member(in, "DetailType") != NULL ||
	    cJSON_IsString(member(in, "Detail")))
		return from_putevents(in, n, err);
	if (member(in, "detail-type") != NULL)
		return from_eventbridge(in, n, err);
	if (member(in, "Message") != NULL)
		return from_sns(in, n, err);
	if (member(in, "type") != NULL)
		return from_native(in, pc, n, err);
	return refuse(err, 400, "invalid_event", "", "no type: expected "
	    "\"type\", \"detail-type\", \"DetailType\", \"Message\" or "
	    "\"EventType\"");
}

static int
allowed(char *const *globs, size_t n, const char *s)
{
	size_t i;

	if (n == 0)
		return 1;
	for (i = 0; i < n; i++)
		if (glob_match(globs[i], s))
			return 1;
	return 0;
}

static int
check_envelope(const struct norm *n, const struct producer_conf *pc,
    struct event_error *err)
{
	char b[48];

	if (!event_type_valid(n->type))
		return refuse(err, 400, "invalid_type", n->type_field,
		    "expected dotted lowercase like \"speedrun.split\", at "
		    "most %d characters", TYPE_MAX);
	if (!valid_source(n->source))
		return refuse(err, 400, "invalid_source", n->source_field,
		    "expected lowercase letters, digits, '.', '_' or '-', "
		    "at most %d characters", SOURCE_MAX);
	if (!allowed(pc->sources, pc->nsources, n->source))
		return refuse(err, 403, "source_not_allowed", n->source_field,
		    "producer may not send source \"%s\"",
		    shown(b, sizeof(b), n->source));
	if (!allowed(pc->types, pc->ntypes, n->type))
		return refuse(err, 403, "type_not_allowed", n->type_field,
		    "producer may not send type \"%s\"", n->type);
	if (cJSON_GetArraySize(n->detail) > DETAIL_MEMBERS_MAX)
		return bad_field(err, "detail", "more than %d members",
		    DETAIL_MEMBERS_MAX);
	return 0;
}

/* The speedrun types ctrd knows, and which of them name a split. */
static const struct speedrun_kind {
	const char	*type;
	int		 needs_split;
} speedrun_kinds[] = {
	{ "speedrun.start", 0 }, { "speedrun.split", 1 },
	{ "speedrun.gold", 1 }, { "speedrun.skip", 1 },
	{ "speedrun.undo", 1 }, { "speedrun.reset", 0 },
	{ "speedrun.finish", 0 }, { "speedrun.pb", 0 },
};

static const struct text_field {
	const char	*name;
	size_t		 max;	/* characters */
} speedrun_texts[] = {
	{ "game", 256 }, { "category", 256 }, { "split", 256 },
	{ "message", 2000 },
};

/* Duration fields as text, each with its milliseconds twin. */
static const char *const speedrun_durations[][2] = {
	{ "pace", "pace_ms" }, { "run_time", "run_time_ms" },
	{ "segment_time", "segment_time_ms" },
	{ "best_segment_time", "best_segment_time_ms" },
	{ "improvement", "improvement_ms" },
};

static const char *const speedrun_counts[] = { "split_index", "attempt" };

/* Index in speedrun_durations of name as text (col 0) or ms (col 1). */
static int
duration_index(const char *name, int col)
{
	size_t i;

	for (i = 0; i < NELEM(speedrun_durations); i++)
		if (strcmp(speedrun_durations[i][col], name) == 0)
			return (int)i;
	return -1;
}

/* "detail." and a member's name, made only for an error's field. */
static const char *
dfield(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "detail.%s", name);
	return buf;
}

static int
check_texts(const cJSON *detail, int needs_split, struct event_error *err)
{
	const struct text_field *t;
	const cJSON *v;
	char f[32];
	int64_t x;
	size_t i;

	for (i = 0; i < NELEM(speedrun_texts); i++) {
		t = &speedrun_texts[i];
		v = member(detail, t->name);
		if (v != NULL && !cJSON_IsString(v))
			return bad_field(err, dfield(f, sizeof(f), t->name),
			    "expected a string");
		if (v != NULL && utf8_chars(v->valuestring) > t->max)
			return bad_field(err, dfield(f, sizeof(f), t->name),
			    "longer than %zu characters", t->max);
		if ((v == NULL || *v->valuestring == '\0') &&
		    (i == 0 || (i == 2 && needs_split)))
			return bad_field(err, dfield(f, sizeof(f), t->name),
			    "required for this type");
	}
	for (i = 0; i < NELEM(speedrun_counts); i++) {
		v = member(detail, speedrun_counts[i]);
		if (v != NULL && (json_int(v, &x) == -1 || x < 0))
			return bad_field(err, dfield(f, sizeof(f),
			    speedrun_counts[i]),
			    "expected a non-negative integer");
	}
	return 0;
}

/*
 * One duration field: its text parsed, its "_ms" twin checked against it
 * or, if only the twin was sent, the text made from it.  Both are added
 * to out in canonical form.
 */
static int
add_duration(cJSON *out, const cJSON *detail, int i,
    struct event_error *err)
{
	const char *name = speedrun_durations[i][0];
	const char *ms_name = speedrun_durations[i][1];
	const cJSON *text = member(detail, name);
	const cJSON *ms = member(detail, ms_name);
	char f[40], buf[32];
	int64_t t = 0, m = 0;

	if (text != NULL && (!cJSON_IsString(text) ||
	    event_parse_duration(text->valuestring, &t) == -1))
		return bad_field(err, dfield(f, sizeof(f), name),
		    ERR_DURATION);
	if (text != NULL && !duration_ok(t))
		return too_long(err, dfield(f, sizeof(f), name), "");
	/* Range first: 3.6e18 is too long, whether or not it is exact. */
	if (cJSON_IsNumber(ms) && (ms->valuedouble > DURATION_MAX_MS ||
	    ms->valuedouble < -DURATION_MAX_MS))
		return too_long(err, dfield(f, sizeof(f), ms_name), "");
	if (ms != NULL && json_int(ms, &m) == -1)
		return bad_field(err, dfield(f, sizeof(f), ms_name),
		    "expected an integer");
	if (text != NULL && ms != NULL && m != t)
		return bad_field(err, dfield(f, sizeof(f), ms_name),
		    "%" PRId64 " disagrees with detail.%s (%" PRId64 ")",
		    m, name, t);
	if (text == NULL)
		t = m;
	event_fmt_duration(buf, sizeof(buf), t);
	cJSON_AddStringToObject(out, name, buf);
	cJSON_AddNumberToObject(out, ms_name, (double)t);
	return 0;
}

/*
 * Check the fields a known speedrun type defines, and rebuild detail with
 * each duration in canonical text next to its milliseconds, in the order
 * the producer sent them.  Other fields are kept as they are.
 */
static int
check_speedrun(struct norm *n, struct event_error *err)
{
	const struct speedrun_kind *k = NULL;
	cJSON *it, *next, *out;
	size_t i;
	int d;

	for (i = 0; i < NELEM(speedrun_kinds); i++)
		if (strcmp(speedrun_kinds[i].type, n->type) == 0)
			k = &speedrun_kinds[i];
	if (k == NULL)
		return 0;
	if (check_texts(n->detail, k->needs_split, err) == -1)
		return -1;

	/* Other members move to out rather than being copied: add_duration
	 * only ever looks up duration members, which stay behind. */
	out = cJSON_CreateObject();
	for (it = n->detail->child; it != NULL; it = next) {
		next = it->next;
		if ((d = duration_index(it->string, 0)) != -1 ||
		    ((d = duration_index(it->string, 1)) != -1 &&
		    member(n->detail, speedrun_durations[d][0]) == NULL)) {
			if (add_duration(out, n->detail, d, err) == -1)
				goto fail;
		} else if (duration_index(it->string, 1) == -1) {
			cJSON_DetachItemViaPointer(n->detail, it);
			cJSON_AddItemToObject(out, it->string, it);
		}
	}
	cJSON_Delete(n->detail);
	n->detail = out;
	return 0;

fail:
	cJSON_Delete(out);
	return -1;
}

cJSON *
event_normalize(const cJSON *in, const struct producer_conf *pc,
    int64_t recv_ms, struct event_error *err)
{
	struct norm n;
	cJSON *env;
	char stamp[32];

	memset(&n, 0, sizeof(n));
	memset(err, 0, sizeof(*err));
	if (from_any(in, pc, &n, err) == -1 ||
	    check_envelope(&n, pc, err) == -1 ||
	    check_speedrun(&n, err) == -1)
		goto fail;

	env = cJSON_CreateObject();
	cJSON_AddStringToObject(env, "id", "");
	cJSON_AddNumberToObject(env, "seq", 0);
	cJSON_AddStringToObject(env, "type", n.type);
	cJSON_AddStringToObject(env, "source", n.source);
	cJSON_AddStringToObject(env, "producer", pc->name);
	fmt_rfc3339(stamp, sizeof(stamp), recv_ms);
	cJSON_AddStringToObject(env, "time", stamp);
	if (n.has_origin) {
		fmt_rfc3339(stamp, sizeof(stamp), n.origin_ms);
		cJSON_AddStringToObject(env, "origin_time", stamp);
	}
	cJSON_AddItemToObject(env, "detail", n.detail);
	return env;

fail:
	cJSON_Delete(n.detail);
	return NULL;
}

void
event_stamp(cJSON *envelope, const char *id, uint64_t seq)
{
	cJSON_ReplaceItemInObjectCaseSensitive(envelope, "id",
	    cJSON_CreateString(id));
	cJSON_ReplaceItemInObjectCaseSensitive(envelope, "seq",
	    cJSON_CreateNumber((double)seq));
}
