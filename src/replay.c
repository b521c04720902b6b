/* ctrctl replay: a LiveSplit splits file played as a producer would. */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "ctrctl.h"
#include "event.h"
#include "log.h"
#include "lss.h"
#include "util.h"

#define MS		LSS_TICKS_MS
#define SOURCE		"livesplit"

/*
 * A run is a list of steps made first from the file, then sent one by
 * one.  Every time is in ticks and is the timer's reading, so that pace
 * and golds are computed exactly as LiveSplit does, before anything is
 * cut to the milliseconds ctrd keeps.
 */
enum kind {
	K_START, K_SPLIT, K_GOLD, K_SKIP, K_RESET, K_FINISH, K_PB
};

static const char *const kind_type[] = {
	"speedrun.start", "speedrun.split", "speedrun.gold", "speedrun.skip",
	"speedrun.reset", "speedrun.finish", "speedrun.pb"
};

struct step {
	enum kind	 kind;
	long		 seg;		/* segment index, or -1 */
	int64_t		 at;		/* the timer's reading then */
	int64_t		 run_time;	/* each LSS_NONE when absent */
	int64_t		 segment_time;
	int64_t		 pace;
	int64_t		 best;
	int64_t		 improvement;
};

struct run {
	struct step	*v;
	size_t		 n;
	long		 attempt;	/* for speedrun.start; 0 unknown */
};

/* A segment's name as the native events show it: a subsplit's "-" or
 * "{Group} " prefix moves to detail.group. */
struct label {
	char	*split;
	char	*group;		/* NULL outside a subsplit group */
};

struct options {
	const char	*url;
	const char	*keyfile;
	const char	*producer;
	double		 speed;
	int		 speed_given;
	long		 run_id;
	int		 run_given;
	int		 legacy;
	int		 dry_run;
};

static struct step *
add_step(struct run *r, enum kind k, long seg, int64_t at)
{
	struct step *s;

	r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
	s = &r->v[r->n++];
	s->kind = k;
	s->seg = seg;
	s->at = at;
	s->run_time = s->segment_time = s->pace = s->best =
	    s->improvement = LSS_NONE;
	return s;
}

/*
 * The synthetic run: each split lands off the personal-best split time
 * by 250, 500, 750, 1000 ms in turn, ahead on even segments and behind on
 * odd ones, and 1000 ms ahead on the last, so that the run shows both
 * signs of pace and ends in a personal best.  A segment whose personal
 * best has no time takes its best segment time; one with neither is
 * skipped.  No split comes before the previous one.
 */
static size_t
synthetic_times(const struct lss *l, int64_t *t)
{
	const struct lss_segment *s;
	int64_t prev = 0, off;
	size_t i;

	for (i = 0; i < l->nsegments; i++) {
		s = &l->segments[i];
		off = 250 * (1 + (int64_t)(i % 4)) * MS;
		if (i + 1 == l->nsegments)
			off = -1000 * MS;
		else if (i % 2 == 0)
			off = -off;
		if (s->pb_real != LSS_NONE) {
			t[i] = s->pb_real + off;
			if (t[i] < prev)
				t[i] = prev;
		} else if (s->best_real != LSS_NONE)
			t[i] = prev + s->best_real;
		else
			t[i] = LSS_NONE;
		if (t[i] != LSS_NONE)
			prev = t[i];
	}
	return l->nsegments;
}

/*
 * Attempt id's split times from the segment history.  LiveSplit writes an
 * entry, empty for a skipped split, for every segment an attempt passed,
 * so the attempt went as far as its entries run unbroken from the first
 * segment; a later entry after a missing one (history cleaned since)
 * cannot be placed in time.  Sets *finished when the last segment has a
 * time.  Returns how many segments were played, or 0 if none has a time.
 */
static size_t
attempt_times(const struct lss *l, const char *path, long id, int64_t *t,
    int *finished)
{
	const struct lss_time *h;
	int64_t prev = 0;
	size_t i, j, n = 0;
	int timed = 0;

	for (i = 0; i < l->nsegments; i++) {
		if ((h = lss_history(&l->segments[i], id)) == NULL)
			break;
		t[i] = h->real == LSS_NONE ? LSS_NONE : prev + h->real;
		if (t[i] != LSS_NONE) {
			prev = t[i];
			timed = 1;
		}
		n = i + 1;
	}
	*finished = n > 0 && n == l->nsegments && t[n - 1] != LSS_NONE;
	if (n > 0 && n == l->nsegments && !*finished)
		n--;	/* the last split has no time: reset there */
	for (j = n + 1; j < l->nsegments && timed; j++)
		if (lss_history(&l->segments[j], id) != NULL) {
			fprintf(stderr, "ctrctl: %s: attempt %ld has no "
			    "history for segment %zu (%s) but has some "
			    "later; the run ends there\n", path, id, n + 1,
			    l->segments[n].name);
			break;
		}
	return timed ? n : 0;
}

/* The steps of a run whose first n splits land at t[] (LSS_NONE for a
 * skip), ending in a finish or a reset at segment n. */
static void
play(const struct lss *l, const int64_t *t, size_t n, int finished,
    struct run *r)
{
	const struct lss_segment *s, *last = &l->segments[l->nsegments - 1];
	struct step *st;
	int64_t prev = 0;
	int skipped = 0, final_known = 0;
	size_t i;

	add_step(r, K_START, -1, l->offset);
	for (i = 0; i < n; i++) {
		s = &l->segments[i];
		if (t[i] == LSS_NONE) {
			add_step(r, K_SKIP, (long)i, prev);
			skipped = 1;
			continue;
		}
		st = add_step(r, K_SPLIT, (long)i, t[i]);
		st->run_time = t[i];
		st->segment_time = t[i] - prev;
		if (s->pb_real != LSS_NONE)
			st->pace = t[i] - s->pb_real;
		/* A segment timed across a skipped split is two segments:
		 * LiveSplit does not take it for a gold either. */
		if (s->best_real != LSS_NONE && !skipped &&
		    t[i] - prev < s->best_real) {
			st = add_step(r, K_GOLD, (long)i, t[i]);
			st->segment_time = t[i] - prev;
			st->best = s->best_real;
			st->improvement = s->best_real - (t[i] - prev);
		}
		prev = t[i];
		skipped = 0;
		final_known = i + 1 == l->nsegments;
	}
	if (!finished) {
		add_step(r, K_RESET, (long)n, prev);
		return;
	}
	st = add_step(r, K_FINISH, -1, prev);
	st->run_time = prev;
	if (final_known && last->pb_real != LSS_NONE)
		st->pace = prev - last->pb_real;
	/* Without a final personal-best time any finished run is the
	 * personal best. */
	if (final_known && (last->pb_real == LSS_NONE ||
	    prev < last->pb_real)) {
		st = add_step(r, K_PB, -1, prev);
		st->run_time = prev;
		if (last->pb_real != LSS_NONE)
			st->improvement = last->pb_real - prev;
	}
}

/* For "{Group} Name": the group, owned by the caller, with *rest set to
 * Name; NULL, with *rest the whole name, for any other name. */
static char *
group_of(const char *name, const char **rest)
{
	const char *close, *r;

	*rest = name;
	if (name[0] != '{' || (close = strchr(name, '}')) == NULL ||
	    close == name + 1)
		return NULL;
	r = close + 1 + strspn(close + 1, " ");
	if (*r == '\0')
		return NULL;
	*rest = r;
	return xstrndup(name + 1, (size_t)(close - name - 1));
}

static void
make_labels(const struct lss *l, struct label *lb)
{
	const char *name, *rest, *ignored;
	size_t i, j;

	for (i = 0; i < l->nsegments; i++) {
		name = l->segments[i].name;
		rest = name[0] == '-' ? name + 1 + strspn(name + 1, " ") :
		    name;
		if (name[0] == '-' && *rest != '\0') {
			/* The group is named by the "{Group} Name" that
			 * closes this run of "-" names, if one does. */
			for (j = i + 1; j < l->nsegments &&
			    l->segments[j].name[0] == '-'; j++)
				;
			lb[i].group = j < l->nsegments ?
			    group_of(l->segments[j].name, &ignored) : NULL;
		} else
			lb[i].group = group_of(name, &rest);
		lb[i].split = xstrdup(rest);
	}
}

static void
free_labels(struct label *lb, size_t n)
{
	size_t i;

	for (i = 0; lb != NULL && i < n; i++) {
		free(lb[i].split);
		free(lb[i].group);
	}
	free(lb);
}

static void
add_duration(cJSON *o, const char *name, int64_t ticks)
{
	char buf[32];

	if (ticks == LSS_NONE)
		return;
	event_fmt_duration(buf, sizeof(buf), lss_ticks_ms(ticks));
	cJSON_AddStringToObject(o, name, buf);
}

/* One step as a native event: {type, source, time, detail}. */
static cJSON *
native_event(const struct lss *l, const struct label *lb,
    const struct run *r, const struct step *s, const struct options *o)
{
	cJSON *ev, *d;
	char now[32];

	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "type", kind_type[s->kind]);
	cJSON_AddStringToObject(ev, "source", SOURCE);
	if (o->producer != NULL)
		cJSON_AddStringToObject(ev, "producer", o->producer);
	fmt_rfc3339(now, sizeof(now), now_ms());
	cJSON_AddStringToObject(ev, "time", now);
	d = cJSON_AddObjectToObject(ev, "detail");
	cJSON_AddStringToObject(d, "game", l->game);
	cJSON_AddStringToObject(d, "category", l->category);
	if (s->kind == K_START && r->attempt > 0)
		cJSON_AddNumberToObject(d, "attempt", (double)r->attempt);
	if (s->seg >= 0) {
		cJSON_AddStringToObject(d, "split", lb[s->seg].split);
		if (lb[s->seg].group != NULL)
			cJSON_AddStringToObject(d, "group", lb[s->seg].group);
		cJSON_AddNumberToObject(d, "split_index", (double)s->seg);
	}
	add_duration(d, "run_time", s->run_time);
	add_duration(d, "segment_time", s->segment_time);
	add_duration(d, "best_segment_time", s->best);
	add_duration(d, "pace", s->pace);
	add_duration(d, "improvement", s->improvement);
	return ev;
}

/* Now as .NET's round-trip format writes local time:
 * "2026-12-03T21:48:17.1234567+01:00". */
static void
dotnet_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	unsigned off;
	char date[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	off = (unsigned)(labs(tm.tm_gmtoff) / 60 % (24 * 60));
	snprintf(buf, len, "%s.%07u%c%02u:%02u", date,
	    (unsigned)(ts.tv_nsec / 100 % 10000000), tm.tm_gmtoff < 0 ?
	    '-' : '+', off / 60, off % 60);
}

static void
add_text_or_null(cJSON *o, const char *name, const char *text)
{
	if (text != NULL)
		cJSON_AddStringToObject(o, name, text);
	else
		cJSON_AddNullToObject(o, name);
}

/*
 * One step in the Catch The Run LiveSplit component's wire format.  Its
 * "speedrun.pb" is a split ahead of personal-best pace, so a personal
 * best of the whole run has no event of its own there (the caller skips
 * K_PB).  Absent fields are null, as the component's .NET serializer
 * writes them.
 */
static cJSON *
legacy_event(const struct lss *l, const struct run *r, const struct step *s,
    const struct options *o)
{
	const char *type = kind_type[s->kind];
	char pace[48], msg[96], a[32], b[32], stamp[48];
	const char *pace_p = NULL, *msg_p = NULL;
	cJSON *ev;

	if (s->kind == K_SPLIT && s->pace != LSS_NONE && s->pace < 0)
		type = "speedrun.pb";
	if (s->pace != LSS_NONE) {
		lss_fmt_timespan(a, sizeof(a), s->pace);
		snprintf(pace, sizeof(pace), "%s | ", a);
		pace_p = pace;
	}
	if (s->kind == K_START && r->attempt > 0) {
		snprintf(msg, sizeof(msg), "attempt %ld", r->attempt);
		msg_p = msg;
	} else if (s->kind == K_GOLD) {
		event_fmt_duration(a, sizeof(a),
		    lss_ticks_ms(s->segment_time));
		event_fmt_duration(b, sizeof(b), lss_ticks_ms(s->best));
		snprintf(msg, sizeof(msg), "gold segment %s (best was %s)",
		    a, b);
		msg_p = msg;
	} else if (s->kind == K_FINISH && s->run_time != LSS_NONE) {
		event_fmt_duration(a, sizeof(a), lss_ticks_ms(s->run_time));
		snprintf(msg, sizeof(msg), "finished in %s", a);
		msg_p = msg;
	}

	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "EventType", type);
	cJSON_AddStringToObject(ev, "EventSource", SOURCE);
	add_text_or_null(ev, "Producer", o->producer);
	cJSON_AddStringToObject(ev, "Game", l->game);
	cJSON_AddStringToObject(ev, "Category", l->category);
	add_text_or_null(ev, "SplitName", s->seg >= 0 ?
	    l->segments[s->seg].name : NULL);
	add_text_or_null(ev, "Pace", pace_p);
	add_text_or_null(ev, "Message", msg_p);
	dotnet_now(stamp, sizeof(stamp));
	cJSON_AddStringToObject(ev, "Timestamp", stamp);
	return ev;
}

/* Sleep until the step's time on the compressed clock. */
static void
wait_for(const struct lss *l, const struct step *s, double speed,
    const struct timespec *t0)
{
	struct timespec ts = *t0;
	int64_t wall = s->at - l->offset, ns;
	double d;

	if (speed <= 0 || wall <= 0)
		return;
	/* Capped at about three years, which keeps the cast defined. */
	d = (double)wall * 100.0 / speed;
	ns = d < 1e17 ? (int64_t)d : INT64_C(100000000000000000);
	ts.tv_sec += (time_t)(ns / 1000000000);
	ts.tv_nsec += (long)(ns % 1000000000);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
	    NULL) == EINTR)
		;
}

/* One line for a step sent: the status, what it was, and ctrd's id for
 * it or its error. */
static void
print_result(const struct lss *l, const struct step *s, const char *type,
    int status, const char *reply)
{
	const cJSON *e, *id, *err, *code, *msg;
	cJSON *j = cJSON_Parse(reply);
	char name[96], text[200];

	e = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "entries"), 0);
	id = cJSON_GetObjectItem(e, "id");
	err = cJSON_GetObjectItem(e != NULL ? e : j, "error");
	code = cJSON_GetObjectItem(err, "code");
	msg = cJSON_GetObjectItem(err, "message");
	printf("status=%d type=%s", status, type);
	if (s->seg >= 0) {
		log_escape(name, sizeof(name), l->segments[s->seg].name,
		    strlen(l->segments[s->seg].name));
		printf(" split=\"%s\"", name);
	}
	if (cJSON_IsString(id))
		printf(" id=%s", id->valuestring);
	if (cJSON_IsString(code)) {
		log_escape(text, sizeof(text), code->valuestring,
		    strlen(code->valuestring));
		printf(" error=%s", text);
	}
	if (cJSON_IsString(msg)) {
		log_escape(text, sizeof(text), msg->valuestring,
		    strlen(msg->valuestring));
		printf(" message=\"%s\"", text);
	}
	putchar('\n');
	fflush(stdout);
	cJSON_Delete(j);
}

/* Send (or print) every step in turn.  Returns the exit status. */
static int
send_run(const struct lss *l, const struct label *lb, const struct run *r,
    const struct options *o, struct poster *p)
{
	struct timespec t0;
	const struct step *s;
	cJSON *ev;
	char *body, *reply;
	size_t i;
	int status, failed = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < r->n; i++) {
		s = &r->v[i];
		if (o->legacy && s->kind == K_PB)
			continue;	/* the component has no such event */
		/* First wait, so that the event's time is when it is sent. */
		wait_for(l, s, o->speed, &t0);
		ev = o->legacy ? legacy_event(l, r, s, o) :
		    native_event(l, lb, r, s, o);
		body = cJSON_PrintUnformatted(ev);
		if (p == NULL) {
			printf("%s\n", body);
			fflush(stdout);
		} else if ((status = post_body(p, body, strlen(body),
		    &reply)) == -1) {
			free(body);
			cJSON_Delete(ev);
			return 2;
		} else {
			print_result(l, s, cJSON_GetObjectItem(ev, o->legacy ?
			    "EventType" : "type")->valuestring, status, reply);
			failed |= status < 200 || status > 299;
			free(reply);
		}
		free(body);
		cJSON_Delete(ev);
	}
	return failed ? 1 : 0;
}

static int
parse_options(int argc, char *argv[], struct options *o)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "speed", required_argument, NULL, 's' },
		{ "run", required_argument, NULL, 'r' },
		{ "producer", required_argument, NULL, 'p' },
		{ "legacy", no_argument, NULL, 'L' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "u:k:", opts, NULL)) != -1) {
		errno = 0;
		switch (c) {
		case 'u':
			o->url = optarg;
			break;
		case 'k':
			o->keyfile = optarg;
			break;
		case 's':
			o->speed = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || errno != 0 ||
			    !(o->speed >= 0) || isinf(o->speed))
				return -1;
			o->speed_given = 1;
			break;
		case 'r':
			o->run_id = strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || errno != 0)
				return -1;
			o->run_given = 1;
			break;
		case 'p':
			o->producer = optarg;
			break;
		case 'L':
			o->legacy = 1;
			break;
		case 'n':
			o->dry_run = 1;
			break;
		default:
			return -1;
		}
	}
	if (o->url == NULL)
		o->url = o->legacy ? CTRCTL_LEGACY_URL : CTRCTL_URL;
	/* Printing a run is for reading it: no waiting unless asked. */
	if (o->dry_run && !o->speed_given)
		o->speed = 0;
	return optind + 1 == argc ? optind : -1;
}

/* Whether the file mentions attempt id anywhere: its attempt history or
 * any segment's history (LiveSplit keeps ids there that it dropped from
 * the attempt history). */
static int
attempt_known(const struct lss *l, long id)
{
	size_t i;

	if (lss_attempt(l, id) != NULL)
		return 1;
	for (i = 0; i < l->nsegments; i++)
		if (lss_history(&l->segments[i], id) != NULL)
			return 1;
	return 0;
}

int
replay_main(int argc, char *argv[])
{
	struct options o = { NULL, NULL, NULL, 1.0, 0, 0, 0, 0, 0 };
	struct run r = { NULL, 0, 0 };
	struct poster *p = NULL;
	struct label *lb = NULL;
	struct lss *l;
	const char *path;
	int64_t *t = NULL;
	char key[256];
	size_t n = 0;
	int i, finished = 1, ret = 2;

	if ((i = parse_options(argc, argv, &o)) == -1)
		ctrctl_usage();
	path = argv[i];
	if ((l = lss_load(path)) == NULL)
		return 2;
	t = xcalloc(l->nsegments, sizeof(*t));
	if (o.run_given) {
		if ((n = attempt_times(l, path, o.run_id, t, &finished)) > 0)
			r.attempt = o.run_id;
		else if (!attempt_known(l, o.run_id)) {
			/* A typo, not a request for a made-up run that may
			 * end in a personal best. */
			fprintf(stderr, "ctrctl: %s: no attempt %ld in the "
			    "file\n", path, o.run_id);
			goto done;
		} else
			fprintf(stderr, "ctrctl: %s: attempt %ld has no "
			    "segment times; playing a synthetic run\n", path,
			    o.run_id);
	}
	if (n == 0) {
		n = synthetic_times(l, t);
		finished = 1;
		r.attempt = l->attempt_count + 1;
	}
	play(l, t, n, finished, &r);
	lb = xcalloc(l->nsegments, sizeof(*lb));
	make_labels(l, lb);

	if (!o.dry_run) {
		if (post_key(o.keyfile, key, sizeof(key)) == -1)
			goto done;
		p = post_open(o.url, key, o.legacy);
		sodium_memzero(key, sizeof(key));
	}
	ret = send_run(l, lb, &r, &o, p);

done:
	post_close(p);
	free_labels(lb, l->nsegments);
	free(r.v);
	free(t);
	lss_free(l);
	return ret;
}
