/* Unit tests for ctr.conf parsing: values, defaults and exact errors. */
#include "autoconf.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "log.h"
#include "pattern.h"
#include "util.h"

#include "tap.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR	"/var"
#endif

#define HASH_A	"0123456789abcdef0123456789abcdef" \
		"0123456789abcdef0123456789abcdef"
#define HASH_B	"fedcba9876543210fedcba9876543210" \
		"fedcba9876543210fedcba9876543210"
#define HASH_C	"00112233445566778899aabbccddeeff" \
		"00112233445566778899aabbccddeeff"
/* 24 bytes 0x00..0x17, standard base64 */
#define WHSEC	"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"

static unsigned char secret_bytes[SERVER_SECRET_LEN];
static char tmpdir[] = "/tmp/test_config.XXXXXX";
static char errtext[8192];

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *f;

	if ((f = fopen(path, "w")) == NULL)
		fatal("fopen %s", path);
	if (len > 0 && fwrite(data, len, 1, f) != 1)
		fatal("fwrite %s", path);
	fclose(f);
	if (chmod(path, mode) == -1)
		fatal("chmod %s", path);
}

static void
write_conf(const char *path, const char *text)
{
	write_file(path, text, strlen(text), 0644);
}

/* All errors, one "file:line:col: msg" line each, for exact comparison. */
static const char *
join_errors(const struct config_errors *errs)
{
	size_t i, used = 0;

	errtext[0] = '\0';
	for (i = 0; i < errs->n; i++)
		used += snprintf(errtext + used, sizeof(errtext) - used,
		    "%s%s:%d:%d: %s", i ? "\n" : "", errs->v[i].file,
		    errs->v[i].line, errs->v[i].col, errs->v[i].msg);
	return errtext;
}

/*
 * Load text as t.conf and return its errors joined; a config that loads
 * when errors were expected is a failure of its own.
 */
static const char *
errors_of(const char *text)
{
	struct config_errors errs = { NULL, 0 };
	struct config *cfg;

	write_conf("t.conf", text);
	cfg = config_load("t.conf", &errs);
	if (cfg != NULL) {
		config_free(cfg);
		strcpy(errtext, "(loaded without errors)");
		return errtext;
	}
	join_errors(&errs);
	config_errors_free(&errs);
	return errtext;
}

static struct config *
load_ok(const char *text)
{
	struct config_errors errs = { NULL, 0 };
	struct config *cfg;

	write_conf("t.conf", text);
	if ((cfg = config_load("t.conf", &errs)) == NULL) {
		printf("# unexpected errors:\n# %s\n", join_errors(&errs));
		config_errors_free(&errs);
	}
	return cfg;
}

static int
matches(const struct pattern *p, const char *event)
{
	cJSON *ev;
	int r;

	if (p == NULL || (ev = cJSON_Parse(event)) == NULL)
		return -1;
	r = pattern_match(p, ev);
	cJSON_Delete(ev);
	return r;
}

static void
test_full(void)
{
	struct config *cfg;
	struct producer_conf *p;
	struct consumer_conf *c;
	unsigned char want[24];
	size_t i;

	cfg = load_ok(
	    "listen: \"[::1]:0\"\n"
	    "secret_file: secret\n"
	    "dead_letter_file: /srv/dead.jsonl\n"
	    "body_max: 100000\n"
	    "entry_max: 50000\n"
	    "json_depth_max: 8\n"
	    "queue_max: 1000\n"
	    "max_connections: 200\n"
	    "max_connections_per_ip: 0\n"
	    "connection_timeout_s: 9\n"
	    "drain_ms: 0\n"
	    "producers:\n"
	    "  - name: cyghfer\n"
	    "    key_hash: " HASH_A "\n"
	    "  - name: relay.2\n"
	    "    key_hash: [" HASH_B ", " HASH_C "]\n"
	    "    sources: [livesplit, \"bot-*\"]\n"
	    "    types: [\"speedrun.*\"]\n"
	    "consumers:\n"
	    "  - name: stats\n"
	    "    url: https://stats.example.org:8443/hook?x=1\n"
	    "    headers:\n"
	    "      X-Team: speedrun\n"
	    "      Authorization: \"Bearer abc\"\n"
	    "    secret: " WHSEC "\n"
	    "    budget_ms: 1500\n"
	    "    max_in_flight: 4\n"
	    "    queue_max: 77\n"
	    "    pattern:\n"
	    "      detail:\n"
	    "        game: [Celeste]\n"
	    "        pace_ms: [{numeric: [\"<\", 0]}]\n"
	    "        seq: [42]\n"
	    "        label: [\"42\"]\n"
	    "        gold: [true]\n"
	    "        note: [null]\n"
	    "  - name: pbs\n"
	    "    kind: discord\n"
	    "    url: http://127.0.0.1:9/api/webhooks/1/tok\n"
	    "    username: ctrd bot\n"
	    "    avatar_url: https://example.org/a.png\n"
	    "    thread_id: 123456789012345678\n");
	if (!ok(cfg != NULL, "full config loads"))
		return;
	is_str(cfg->path, "t.conf", "path kept as given");
	is_str(cfg->listen_host, "::1", "IPv6 listen host without brackets");
	ok(cfg->listen_port == 0, "listen port 0 kept");
	is_str(cfg->secret_file, "secret", "secret_file");
	ok(memcmp(cfg->server_secret, secret_bytes, SERVER_SECRET_LEN) == 0,
	    "server secret read from secret_file");
	is_str(cfg->dead_letter_file, "/srv/dead.jsonl", "dead_letter_file");
	ok(cfg->body_max == 100000 && cfg->entry_max == 50000,
	    "body_max and entry_max");
	ok(cfg->json_depth_max == 8 && cfg->queue_max == 1000,
	    "json_depth_max and queue_max");
	ok(cfg->max_connections == 200 && cfg->max_connections_per_ip == 0,
	    "connection limits, 0 per ip allowed");
	ok(cfg->connection_timeout_s == 9 && cfg->drain_ms == 0,
	    "connection_timeout_s and drain_ms 0");

	ok(cfg->nproducers == 2, "two producers");
	p = &cfg->producers[0];
	is_str(p->name, "cyghfer", "producer name");
	ok(p->nkeys == 1 && p->key_hash[0][0] == 0x01 &&
	    p->key_hash[0][31] == 0xef, "single key_hash decoded from hex");
	ok(p->nsources == 0 && p->ntypes == 0, "no globs: any allowed");
	p = &cfg->producers[1];
	is_str(p->name, "relay.2", "producer name with a dot");
	ok(p->nkeys == 2 && p->key_hash[0][0] == 0xfe &&
	    p->key_hash[1][15] == 0xff, "key_hash list for rotation");
	ok(p->nsources == 2 && strcmp(p->sources[1], "bot-*") == 0,
	    "sources globs");
	ok(p->ntypes == 1 && strcmp(p->types[0], "speedrun.*") == 0,
	    "types globs");

	ok(cfg->nconsumers == 2, "two consumers");
	c = &cfg->consumers[0];
	is_str(c->name, "stats", "consumer name");
	ok(c->kind == CONSUMER_WEBHOOK, "kind defaults to webhook");
	is_str(c->url, "https://stats.example.org:8443/hook?x=1", "url");
	ok(c->nheaders == 2 && strcmp(c->headers[0].name, "X-Team") == 0 &&
	    strcmp(c->headers[1].value, "Bearer abc") == 0,
	    "headers in file order");
	for (i = 0; i < sizeof(want); i++)
		want[i] = (unsigned char)i;
	ok(c->secret_len == 24 && memcmp(c->secret, want, 24) == 0,
	    "whsec_ secret decoded");
	ok(c->budget_ms == 1500 && c->max_in_flight == 4 &&
	    c->queue_max == 77, "budget_ms, max_in_flight, queue_max");
	ok(c->username == NULL && c->thread_id == NULL,
	    "discord fields unset on a webhook");
	ok(matches(c->pattern, "{\"detail\": {\"game\": \"Celeste\", "
	    "\"pace_ms\": -5, \"seq\": 42, \"label\": \"42\", "
	    "\"gold\": true, \"note\": null}}") == 1,
	    "pattern from YAML matches typed values");
	ok(matches(c->pattern, "{\"detail\": {\"game\": \"Celeste\", "
	    "\"pace_ms\": -5, \"seq\": \"42\", \"label\": \"42\", "
	    "\"gold\": true, \"note\": null}}") == 0,
	    "plain 42 is a number: the string \"42\" does not match");
	ok(matches(c->pattern, "{\"detail\": {\"game\": \"Celeste\", "
	    "\"pace_ms\": -5, \"seq\": 42, \"label\": 42, "
	    "\"gold\": true, \"note\": null}}") == 0,
	    "quoted \"42\" stays a string: the number 42 does not match");
	ok(matches(c->pattern, "{\"detail\": {\"game\": \"Celeste\", "
	    "\"pace_ms\": 5, \"seq\": 42, \"label\": \"42\", "
	    "\"gold\": true, \"note\": null}}") == 0,
	    "numeric operator from YAML refuses pace_ms 5");

	c = &cfg->consumers[1];
	ok(c->kind == CONSUMER_DISCORD, "kind discord");
	is_str(c->username, "ctrd bot", "discord username");
	is_str(c->avatar_url, "https://example.org/a.png", "avatar_url");
	is_str(c->thread_id, "123456789012345678",
	    "plain thread_id digits kept as text");
	ok(c->pattern == NULL, "no pattern: NULL matches every event");
	ok(c->secret == NULL && c->nheaders == 0, "no secret, no headers");
	config_free(cfg);
}

static void
test_defaults(void)
{
	struct config *cfg;
	struct consumer_conf *c;

	cfg = load_ok("secret_file: secret\n");
	if (!ok(cfg != NULL, "minimal config loads"))
		return;
	is_str(cfg->listen_host, "127.0.0.1", "default listen host");
	ok(cfg->listen_port == 8080, "default listen port");
	is_str(cfg->dead_letter_file, LOCALSTATEDIR
	    "/lib/ctrd/dead-letter.jsonl", "default dead_letter_file");
	ok(cfg->body_max == 262144 && cfg->entry_max == 65536 &&
	    cfg->json_depth_max == 32, "default body limits");
	ok(cfg->queue_max == 65536 && cfg->max_connections == 1024 &&
	    cfg->max_connections_per_ip == 64, "default daemon limits");
	ok(cfg->connection_timeout_s == 30 && cfg->drain_ms == 5000,
	    "default timeouts");
	ok(cfg->nproducers == 0 && cfg->nconsumers == 0,
	    "no producers, no consumers");
	config_free(cfg);

	cfg = load_ok("secret_file: secret\nconsumers:\n"
	    "  - {name: pb, url: \"http://127.0.0.1:9/\", "
	    "types: [speedrun.pb, \"speedrun.g*\"]}\n");
	ok(cfg != NULL && cfg->consumers[0].ntypes == 2 &&
	    strcmp(cfg->consumers[0].types[1], "speedrun.g*") == 0,
	    "a consumer's types list is read");
	if (cfg != NULL && cfg->consumers[0].ntypes == 0)
		printf("# no types\n");
	config_free(cfg);
	ok(strstr(errors_of("secret_file: secret\nconsumers:\n"
	    "  - {name: pb, url: \"http://127.0.0.1:9/\", types: 5}\n"),
	    "consumers[0].types") != NULL,
	    "a consumer's types must be a list");

	cfg = load_ok("secret_file: secret\nproducers: []\nconsumers:\n"
	    "  - name: a\n    url: http://[::1]:9000/x\n");
	if (!ok(cfg != NULL, "empty producers list allowed"))
		return;
	c = &cfg->consumers[0];
	ok(c->kind == CONSUMER_WEBHOOK && c->budget_ms == 2000 &&
	    c->max_in_flight == 16 && c->queue_max == 4096,
	    "consumer defaults");
	ok(c->secret == NULL && c->pattern == NULL && c->nheaders == 0,
	    "consumer optional fields unset");
	config_free(cfg);
}

static void
test_relative_paths(void)
{
	struct config_errors errs = { NULL, 0 };
	struct config *cfg;

	if (mkdir("sub", 0700) == -1)
		fatal("mkdir sub");
	write_file("sub/key", secret_bytes, sizeof(secret_bytes), 0600);
	write_conf("sub/t.conf", "secret_file: key\n"
	    "dead_letter_file: dl.jsonl\n");
	cfg = config_load("sub/t.conf", &errs);
	ok(cfg != NULL, "config in a subdirectory loads");
	if (cfg != NULL) {
		is_str(cfg->secret_file, "sub/key",
		    "relative secret_file taken from the config's directory");
		is_str(cfg->dead_letter_file, "sub/dl.jsonl",
		    "relative dead_letter_file too");
	}
	config_free(cfg);
	config_errors_free(&errs);
	unlink("sub/key");
	unlink("sub/t.conf");
	rmdir("sub");
}

static void
test_numbers(void)
{
	is_str(errors_of(
	    "secret_file: secret\n"
	    "consumers:\n"
	    "  - name: a\n"
	    "    url: http://127.0.0.1:9/\n"
	    "    max_in_flight: 4\n"
	    "    queue_max: 10\n"
	    "    budget_ms: 0\n"),
	    "t.conf:7:16: consumers[0].budget_ms: must be between 1 and 60000",
	    "budget_ms 0 out of range, at the value");
	is_str(errors_of(
	    "secret_file: secret\n"
	    "consumers:\n"
	    "  - name: d\n"
	    "    kind: discord\n"
	    "    url: https://discord.com/api/webhooks/1/t\n"
	    "    circuit_breaker: 3\n"),
	    "t.conf:6:5: consumers[0].circuit_breaker: only allowed for kind "
	    "webhook", "circuit_breaker on a Discord consumer is refused");
	is_str(errors_of("secret_file: secret\noverload_busy_pct: 101\n"),
	    "t.conf:2:20: overload_busy_pct: must be between 0 and 100",
	    "overload_busy_pct over 100");
	is_str(errors_of(
	    "secret_file: secret\n"
	    "producers:\n"
	    "  - name: p\n"
	    "    key_hash: " HASH_A "\n"
	    "    rate_limit: -1\n"),
	    "t.conf:5:17: producers[0].rate_limit: must be between 0 and "
	    "1000000", "a negative rate_limit");
	is_str(errors_of("secret_file: secret\nbody_max: \"5000\"\n"),
	    "t.conf:2:11: body_max: must be an integer",
	    "quoted number is a string, not an integer");
	/* ctrctl check passed these, and ctrd then failed to start. */
	is_str(errors_of("secret_file: secret\n"
	    "dead_letter_file: /proc/nope/x\n"),
	    "t.conf:2:19: dead_letter_file: directory /proc/nope is missing "
	    "or not writable", "a dead-letter directory that is missing");
	is_str(errors_of("secret_file: secret\ndead_letter_file: /proc\n"),
	    "t.conf:2:19: dead_letter_file: not a writable regular file",
	    "a dead-letter file that is a directory");
	is_str(errors_of("secret_file: secret\ndrain_ms: 1.5\n"),
	    "t.conf:2:11: drain_ms: must be an integer", "no fractions");
	is_str(errors_of("secret_file: secret\n"
	    "queue_max: 99999999999999999999999\n"),
	    "t.conf:2:12: queue_max: must be between 1 and 10000000",
	    "overflowing integer is out of range");
	is_str(errors_of("secret_file: secret\njson_depth_max: -3\n"),
	    "t.conf:2:17: json_depth_max: must be between 2 and 128",
	    "negative number out of range");
	is_str(errors_of("secret_file: secret\nmax_connections: [1]\n"),
	    "t.conf:2:18: max_connections: must be an integer",
	    "sequence where an integer belongs");
	is_str(errors_of("secret_file: secret\nbody_max: 2048\n"),
	    "t.conf:2:11: body_max: must be at least entry_max (65536)",
	    "default entry_max above body_max blamed on body_max");
	is_str(errors_of("secret_file: secret\nentry_max: 300000\n"),
	    "t.conf:2:12: entry_max: must not exceed body_max (262144)",
	    "entry_max above body_max");
}

static void
test_structure(void)
{
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n   url: x\n"),
	    "t.conf:4:4: yaml: did not find expected '-' indicator "
	    "(while parsing a block collection at 3:3)",
	    "YAML syntax error at the parser's problem mark");
	is_str(errors_of("secret_file: secret\nlisten: \"\xff\"\n"),
	    "t.conf:2:10: yaml: invalid leading UTF-8 octet",
	    "invalid UTF-8 placed by byte offset");
	is_str(errors_of("secret_file: secret\nlisten: 1.2.3.4:1\n"
	    "listen: 1.2.3.4:2\n"),
	    "t.conf:3:1: listen: duplicate key (first at 2:1)",
	    "duplicate top-level key");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: http://h/\n    name: b\n"),
	    "t.conf:5:5: consumers[0].name: duplicate key (first at 3:5)",
	    "duplicate key inside a consumer");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - &c {name: a, url: \"http://h/\"}\n  - *c\n"),
	    "t.conf:3:5: consumers[0]: YAML anchors are not supported\n"
	    "t.conf:4:5: consumers[1]: YAML aliases are not supported",
	    "anchors and aliases refused");
	is_str(errors_of("secret_file: !!str secret\n"),
	    "t.conf:1:14: secret_file: YAML tags are not supported",
	    "tags refused");
	is_str(errors_of("secret_file: secret\nbudget_ms: 5\n"),
	    "t.conf:2:1: budget_ms: unknown option",
	    "consumer option at top level is unknown");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: http://h/\n    budgt_ms: 5\n"),
	    "t.conf:5:5: consumers[0].budgt_ms: unknown option "
	    "(did you mean \"budget_ms\"?)", "unknown key with a suggestion");
	is_str(errors_of("secret_file: secret\n? [a, b]\n: 1\n"),
	    "t.conf:2:3: top level: mapping keys must be scalars",
	    "sequence as a key refused");
	is_str(errors_of("- secret_file\n"),
	    "t.conf:1:1: top level: must be a mapping of options",
	    "top level must be a mapping");
	is_str(errors_of("# only a comment\n"),
	    "t.conf:1:1: secret_file: required option is missing",
	    "empty file: secret_file is required");
	is_str(errors_of("secret_file: secret\n---\nlisten: 1.2.3.4:5\n"),
	    "t.conf:2:1: yaml: only one document is allowed",
	    "second YAML document refused");
	is_str(errors_of("secret_file: secret\nproducers: cyghfer\n"),
	    "t.conf:2:12: producers: must be a list of producer mappings",
	    "producers must be a list");
	is_str(errors_of("secret_file: secret\nconsumers: [a]\n"),
	    "t.conf:2:13: consumers[0]: must be a mapping",
	    "consumer must be a mapping");
	is_str(errors_of("secret_file: [a]\n"),
	    "t.conf:1:14: secret_file: must be a string",
	    "sequence where a string belongs");
	is_str(errors_of("secret_file:\n"),
	    "t.conf:1:13: secret_file: must not be empty",
	    "empty value for a string");
}

static void
test_many_errors(void)
{
	char deep[400], want[400];
	size_t i, n = 0;

	is_str(errors_of(
	    "listen: localhost:80\n"
	    "secret_file: secret\n"
	    "producers:\n"
	    "  - name: \"-bad\"\n"
	    "    key_hash: " HASH_A "\n"
	    "  - key_hash: [" HASH_A "]\n"
	    "consumers:\n"
	    "  - name: x\n"
	    "    kind: slack\n"
	    "    url: ftp://h/\n"
	    "  - name: x\n"
	    "    url: http://h/\n"
	    "    drain_ms: 3\n"),
	    "t.conf:1:9: listen: must be IPv4:port or [IPv6]:port, with a "
	    "numeric address and a port from 0 to 65535\n"
	    "t.conf:4:11: producers[0].name: must be 1 to 64 letters, "
	    "digits, '_', '.' or '-', starting with a letter or digit\n"
	    "t.conf:6:5: producers[1].name: required option is missing\n"
	    "t.conf:6:16: producers[1].key_hash[0]: same key hash as "
	    "producers[0]\n"
	    "t.conf:9:11: consumers[0].kind: must be webhook or discord\n"
	    "t.conf:10:10: consumers[0].url: must start with http:// or "
	    "https://\n"
	    "t.conf:11:11: consumers[1].name: \"x\" is already used by "
	    "consumers[0]\n"
	    "t.conf:13:5: consumers[1].drain_ms: unknown option",
	    "every error of one file reported in one run, in file order");

	n += snprintf(deep + n, sizeof(deep) - n, "secret_file: secret\n"
	    "consumers:\n  - name: a\n    url: http://h/\n    pattern: ");
	for (i = 0; i < 70; i++)
		deep[n++] = '[';
	for (i = 0; i < 70; i++)
		deep[n++] = ']';
	deep[n++] = '\n';
	deep[n] = '\0';
	/*
	 * The root, the consumers list and the consumer are three levels;
	 * the 61st '[' (column 14 + 61) would be the 65th.
	 */
	n = snprintf(want, sizeof(want), "t.conf:5:75: consumers[0].pattern");
	for (i = 0; i < 61; i++)
		n += snprintf(want + n, sizeof(want) - n, "[0]");
	snprintf(want + n, sizeof(want) - n, ": nested deeper than 64 "
	    "levels");
	is_str(errors_of(deep), want, "nesting is bounded");
}

static void
test_error_cap(void)
{
	char text[4096], last[128];
	struct config_errors errs = { NULL, 0 };
	struct config *cfg;
	size_t i, n;

	n = snprintf(text, sizeof(text), "secret_file: secret\n");
	for (i = 0; i < 150; i++)
		n += snprintf(text + n, sizeof(text) - n, "bogus%zu: 1\n", i);
	write_conf("t.conf", text);
	cfg = config_load("t.conf", &errs);
	ok(cfg == NULL && errs.n == 101, "100 errors kept, then a summary");
	if (errs.n == 101) {
		is_str(errs.v[99].msg, "bogus99: unknown option",
		    "the first 100 errors are the ones kept");
		snprintf(last, sizeof(last), "%s:%d:%d: %s", errs.v[100].file,
		    errs.v[100].line, errs.v[100].col, errs.v[100].msg);
		is_str(last, "t.conf:0:0: 50 more errors not shown",
		    "summary counts the errors left out");
	}
	config_free(cfg);
	config_errors_free(&errs);
}

static void
test_producers(void)
{
	is_str(errors_of("secret_file: secret\nproducers:\n"
	    "  - name: a\n    key_hash: " HASH_A "\n"
	    "  - name: a\n    key_hash: " HASH_B "\n"),
	    "t.conf:5:11: producers[1].name: \"a\" is already used by "
	    "producers[0]", "duplicate producer name");
	is_str(errors_of("secret_file: secret\nproducers:\n"
	    "  - name: a\n    key_hash: 0123456789ABCDEF\n"),
	    "t.conf:4:15: producers[0].key_hash: must be 64 lowercase hex "
	    "digits (keyed BLAKE2b-256)", "malformed key_hash");
	is_str(errors_of("secret_file: secret\nproducers:\n"
	    "  - name: a\n    key_hash: [" HASH_A ", " HASH_A "]\n"),
	    "t.conf:4:82: producers[0].key_hash[1]: repeats a key hash "
	    "given above", "key_hash repeated within a producer");
	is_str(errors_of("secret_file: secret\nproducers:\n"
	    "  - name: a\n    key_hash: [a, b, c, d, e]\n"),
	    "t.conf:4:15: producers[0].key_hash: must list 1 to 4 key hashes",
	    "more than PRODUCER_KEYS_MAX hashes");
	is_str(errors_of("secret_file: secret\nproducers:\n"
	    "  - name: a\n    key_hash: []\n"),
	    "t.conf:4:15: producers[0].key_hash: must list 1 to 4 key hashes",
	    "empty key_hash list");
	is_str(errors_of("secret_file: secret\nproducers:\n"
	    "  - name: a\n"),
	    "t.conf:3:5: producers[0].key_hash: required option is missing",
	    "key_hash required");
	is_str(errors_of("secret_file: secret\nproducers:\n"
	    "  - name: a\n    key_hash: " HASH_A "\n    types: speedrun\n"),
	    "t.conf:5:12: producers[0].types: must be a list of globs",
	    "types must be a list");
}

static void
test_stream(void)
{
	const struct stream_conf *sc;
	struct config *cfg;
	uint64_t gen;

	cfg = load_ok("secret_file: secret\n");
	if (!ok(cfg != NULL, "a config without a stream section loads"))
		return;
	sc = &cfg->stream;
	ok(sc->access == STREAM_PUBLIC && sc->ntokens == 0 &&
	    sc->ncors_origins == 0, "the stream is public by default, with "
	    "no tokens and no CORS origins");
	ok(sc->ring_events == 1000 && sc->ring_age_s == 3600 &&
	    sc->keepalive_s == 15 && sc->retry_ms == 3000 &&
	    sc->max_subscribers == 512 && sc->max_subscribers_per_ip == 8 &&
	    sc->backlog_max == 262144, "stream defaults without the section");
	gen = cfg->generation;
	config_free(cfg);

	cfg = load_ok("secret_file: secret\nproducers:\n"
	    "  - name: a\n    key_hash: " HASH_A "\n"
	    "stream:\n  access: token\n  keepalive_s: 1\n"
	    "  ring_events: 0\n  backlog_max: 1024\n"
	    "  max_subscribers_per_ip: 0\n"
	    "  cors_origins: [\"https://a.example\", "
	    "\"http://[::1]:8080\"]\n"
	    "  tokens:\n    - name: t1\n      token_hash: " HASH_B "\n"
	    "      producers: [\"a\", \"b*\"]\n"
	    "    - name: t2\n      token_hash: " HASH_C "\n");
	if (!ok(cfg != NULL, "a full stream section loads"))
		return;
	sc = &cfg->stream;
	ok(cfg->generation > gen, "each load gets a new generation");
	ok(sc->access == STREAM_TOKEN && sc->keepalive_s == 1 &&
	    sc->ring_events == 0 && sc->backlog_max == 1024 &&
	    sc->max_subscribers_per_ip == 0 && sc->ring_age_s == 3600,
	    "stream values given are kept, the others defaulted");
	ok(sc->ncors_origins == 2 &&
	    strcmp(sc->cors_origins[1], "http://[::1]:8080") == 0,
	    "cors_origins keeps each origin");
	ok(sc->ntokens == 2 && strcmp(sc->tokens[0].name, "t1") == 0 &&
	    sc->tokens[0].hash[0] == 0xfe && sc->tokens[0].nproducers == 2 &&
	    strcmp(sc->tokens[0].producers[1], "b*") == 0 &&
	    sc->tokens[1].nproducers == 0 && sc->tokens[1].hash[1] == 0x11,
	    "tokens keep their name, decoded hash and producer globs");
	config_free(cfg);

	is_str(errors_of("secret_file: secret\nstream: [1]\n"),
	    "t.conf:2:9: stream: must be a mapping", "stream not a mapping");
	is_str(errors_of("secret_file: secret\nstream:\n  access: open\n"),
	    "t.conf:3:11: stream.access: must be public or token",
	    "bad access");
	is_str(errors_of("secret_file: secret\nstream:\n  access: token\n"),
	    "t.conf:3:11: stream.access: token needs at least one entry in "
	    "stream.tokens", "token access without tokens");
	is_str(errors_of("secret_file: secret\nstream:\n  tokens:\n"
	    "    - name: t\n      token_hash: " HASH_A "\n"),
	    "t.conf:3:3: stream.tokens: given, but the stream is public; "
	    "set access: token", "tokens on a public stream");
	is_str(errors_of("secret_file: secret\nstream:\n  access: token\n"
	    "  tokens:\n    - name: t\n      token_hash: abc\n"),
	    "t.conf:6:19: stream.tokens[0].token_hash: must be 64 lowercase "
	    "hex digits (keyed BLAKE2b-256)", "malformed token_hash");
	is_str(errors_of("secret_file: secret\nproducers:\n"
	    "  - name: a\n    key_hash: [" HASH_B ", " HASH_A "]\n"
	    "stream:\n  access: token\n"
	    "  tokens:\n    - name: t\n      token_hash: " HASH_A "\n"),
	    "t.conf:9:19: stream.tokens[0].token_hash: same hash as the key "
	    "of producers[0]; a token must be a key of its own",
	    "a token that is also a producer's key is refused");
	is_str(errors_of("secret_file: secret\nstream:\n  access: token\n"
	    "  tokens:\n    - name: t\n      token_hash: " HASH_A "\n"
	    "    - name: t\n      token_hash: " HASH_A "\n"),
	    "t.conf:7:13: stream.tokens[1].name: \"t\" is already used by "
	    "stream.tokens[0]\n"
	    "t.conf:8:19: stream.tokens[1].token_hash: same hash as "
	    "stream.tokens[0]", "duplicate token name and hash");
	is_str(errors_of("secret_file: secret\nstream:\n  access: token\n"
	    "  tokens:\n    - name: t\n"),
	    "t.conf:5:7: stream.tokens[0].token_hash: required option is "
	    "missing", "token_hash required");
	is_str(errors_of("secret_file: secret\nstream:\n"
	    "  cors_origins: [\"https://a.example/\", \"a.example\", "
	    "\"*\"]\n"),
	    "t.conf:3:18: stream.cors_origins[0]: must be an origin alone: "
	    "no path, not even \"/\"\n"
	    "t.conf:3:40: stream.cors_origins[1]: must be \"*\" or an origin "
	    "such as https://example.org:8443\n"
	    "t.conf:3:53: stream.cors_origins[2]: \"*\" allows every origin; "
	    "list nothing else with it", "bad CORS origins");
	is_str(errors_of("secret_file: secret\nstream:\n  keepalive: 5\n"
	    "  keepalive_s: 0\n  backlog_max: 10\n"),
	    "t.conf:3:3: stream.keepalive: unknown option (did you mean "
	    "\"keepalive_s\"?)\n"
	    "t.conf:4:16: stream.keepalive_s: must be between 1 and 3600\n"
	    "t.conf:5:16: stream.backlog_max: must be between 1024 and "
	    "67108864",
	    "stream numbers are range-checked, names spell-checked");
}

static void
test_consumers(void)
{
	const char *e;

	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: https://user:pw@h/\n"),
	    "t.conf:4:10: consumers[0].url: must not hold user:password@; "
	    "use headers instead", "userinfo in url refused");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: \"http://h/a b\"\n"),
	    "t.conf:4:10: consumers[0].url: must not contain spaces, "
	    "control or non-ASCII characters", "space in url refused");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: http:///x\n"),
	    "t.conf:4:10: consumers[0].url: must have a host",
	    "url without a host");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: http://h:99999/\n"),
	    "t.conf:4:10: consumers[0].url: has a bad port", "url port range");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n"),
	    "t.conf:3:5: consumers[0].url: required option is missing",
	    "url required");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: http://h/\n    headers:\n"
	    "      Host: x\n      WebHook-Id: y\n      \"Bad Name\": z\n"
	    "      X-A: 1\n      x-a: 2\n      X-B: [1]\n"),
	    "t.conf:6:7: consumers[0].headers.Host: set by ctrd; it cannot "
	    "be configured\n"
	    "t.conf:7:7: consumers[0].headers.WebHook-Id: set by ctrd; it "
	    "cannot be configured\n"
	    "t.conf:8:7: consumers[0].headers.Bad Name: not a valid header "
	    "name\n"
	    "t.conf:10:7: consumers[0].headers.x-a: repeats header \"X-A\" "
	    "(names ignore case)\n"
	    "t.conf:11:12: consumers[0].headers.X-B: must be a string",
	    "header names checked; ctrd's own headers refused");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: http://h/\n    username: bob\n"),
	    "t.conf:5:5: consumers[0].username: only allowed for kind "
	    "discord", "discord-only option on a webhook");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    kind: discord\n    url: http://h/\n"
	    "    thread_id: 12x\n"),
	    "t.conf:6:16: consumers[0].thread_id: must be 1 to 20 decimal "
	    "digits", "thread_id digits only");

	e = errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: http://h/\n"
	    "    secret: whsec_c2VjcmV0c2VjcmV0\n");
	is_str(e, "t.conf:5:13: consumers[0].secret: must be \"whsec_\" and "
	    "standard base64 of 24 to 64 bytes", "whsec_ of 12 bytes refused");
	ok(strstr(e, "c2VjcmV0") == NULL, "secret not shown in the error");
	e = errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: http://h/\n"
	    "    secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\n");
	is_str(e, "t.conf:5:13: consumers[0].secret: must be \"whsec_\" and "
	    "standard base64 of 24 to 64 bytes", "secret without whsec_");
	e = errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: d\n    kind: discord\n"
	    "    url: \"https://discord.com/api/webhooks/1/T0KEN x\"\n");
	ok(strstr(e, "T0KEN") == NULL && strstr(e, "consumers[0].url") !=
	    NULL, "discord url token not shown in the error");
}

/*
 * The message after the path comes from pattern_compile, so take it from
 * the pattern module itself; what is checked here is where it points.
 */
static void
check_pattern_error(const char *yaml_pattern, const char *json,
    const char *where, const char *key, const char *what)
{
	const cJSON *bad;
	struct pattern *p;
	cJSON *j;
	char text[1024], err[256], want[1024];
	const char *msg = err;

	j = cJSON_Parse(json);
	p = pattern_compile(j, &bad, err, sizeof(err));
	if (p != NULL) {
		pattern_free(p);
		strcpy(err, "(compiled)");
	}
	cJSON_Delete(j);
	if (strncmp(err, key, strlen(key)) == 0 &&
	    strncmp(err + strlen(key), ": ", 2) == 0)
		msg = err + strlen(key) + 2;
	snprintf(want, sizeof(want), "%s: %s", where, msg);
	snprintf(text, sizeof(text), "secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: http://h/\n    pattern:\n%s",
	    yaml_pattern);
	is_str(errors_of(text), want, "%s", what);
}

static void
test_patterns(void)
{
	check_pattern_error("      detail:\n        game: Celeste\n",
	    "{\"detail\": {\"game\": \"Celeste\"}}",
	    "t.conf:7:15: consumers[0].pattern.detail.game", "game",
	    "pattern error at the item pattern_compile names");
	check_pattern_error("      detail:\n"
	    "        game: [\"a\", {prefix: 3}]\n",
	    "{\"detail\": {\"game\": [\"a\", {\"prefix\": 3}]}}",
	    "t.conf:7:30: consumers[0].pattern.detail.game[1].prefix",
	    "prefix", "pattern operator error at its exact column");
	check_pattern_error("      detail:\n"
	    "        game: [{exists: \"true\"}]\n",
	    "{\"detail\": {\"game\": [{\"exists\": \"true\"}]}}",
	    "t.conf:7:25: consumers[0].pattern.detail.game[0].exists",
	    "exists", "quoted true stays a string in a pattern");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: http://h/\n    pattern: [a]\n"),
	    "t.conf:5:14: consumers[0].pattern: must be a mapping",
	    "pattern must be a mapping");
	is_str(errors_of("secret_file: secret\nconsumers:\n"
	    "  - name: a\n    url: http://h/\n    pattern:\n"
	    "      detail: {pace_ms: [{numeric: [\"<\", 1e999]}]}\n"),
	    "t.conf:6:42: consumers[0].pattern.detail.pace_ms[0].numeric[1]: "
	    "number out of range", "infinite number refused");
}

static void
test_files(void)
{
	struct config_errors errs = { NULL, 0 };
	struct config *cfg;
	unsigned char buf[SERVER_SECRET_LEN + 1];

	memset(buf, 7, sizeof(buf));
	write_file("loose", secret_bytes, sizeof(secret_bytes), 0644);
	is_str(errors_of("secret_file: loose\n"),
	    "t.conf:1:14: secret_file: mode 0644 lets group or others in; "
	    "chmod 600 it", "secret file of mode 0644 refused");
	write_file("loose", secret_bytes, sizeof(secret_bytes), 0620);
	is_str(errors_of("secret_file: loose\n"),
	    "t.conf:1:14: secret_file: mode 0620 lets group or others in; "
	    "chmod 600 it", "group-writable secret file refused");
	unlink("loose");
	write_file("long", buf, sizeof(buf), 0600);
	is_str(errors_of("secret_file: long\n"),
	    "t.conf:1:14: secret_file: must hold exactly 32 bytes, not 33",
	    "secret file of 33 bytes refused");
	unlink("long");
	write_file("empty", buf, 0, 0600);
	is_str(errors_of("secret_file: empty\n"),
	    "t.conf:1:14: secret_file: must hold exactly 32 bytes, not 0",
	    "empty secret file refused");
	unlink("empty");
	is_str(errors_of("secret_file: nosuch\n"),
	    "t.conf:1:14: secret_file: cannot open: No such file or directory",
	    "missing secret file");
	if (mkdir("dir", 0700) == -1)
		fatal("mkdir dir");
	is_str(errors_of("secret_file: dir\n"),
	    "t.conf:1:14: secret_file: not a regular file",
	    "directory as secret file");
	rmdir("dir");

	write_file("w.conf", "secret_file: secret\n", 20, 0666);
	cfg = config_load("w.conf", &errs);
	ok(cfg == NULL, "config writable by others refused");
	is_str(join_errors(&errs),
	    "w.conf:0:0: mode 0666 lets others write it; chmod o-w it",
	    "whole-file error has line 0");
	config_free(cfg);
	unlink("w.conf");

	cfg = config_load("nosuch.conf", &errs);
	ok(cfg == NULL && errs.n == 2, "errors appended to what errs held");
	is_str(errs.v[1].msg, "cannot open: No such file or directory",
	    "missing config file");
	config_errors_free(&errs);
	ok(errs.n == 0 && errs.v == NULL, "config_errors_free empties errs");
}

static void
test_log(void)
{
	struct config_errors errs = { NULL, 0 };
	char text[1024];
	FILE *f;
	size_t n;
	int saved, fd;

	write_conf("t.conf", "secret_file: secret\nconsumers:\n"
	    "  - {name: a, url: \"http://h/\", budget_ms: 0}\n");
	write_file("w.conf", "x: 1\n", 5, 0646);
	config_load("t.conf", &errs);
	config_load("w.conf", &errs);

	fflush(stderr);
	saved = dup(2);
	if ((fd = open("log.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		fatal("open log.txt");
	dup2(fd, 2);
	close(fd);
	unsetenv("JOURNAL_STREAM");
	log_init(0);
	config_errors_log(&errs);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	config_errors_free(&errs);

	if ((f = fopen("log.txt", "r")) == NULL)
		fatal("fopen log.txt");
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	ok(strstr(text, "warning: t.conf:3:44: consumers[0].budget_ms: must "
	    "be between 1 and 60000\n") != NULL,
	    "config_errors_log writes file:line:col: key: problem");
	ok(strstr(text, "warning: w.conf: mode 0646 lets others write it; "
	    "chmod o-w it\n") != NULL,
	    "config_errors_log writes file: problem for the whole file");
	unlink("log.txt");
	unlink("w.conf");
}

/* The shipped example must stay a valid configuration. */
static void
test_example(const char *srcdir)
{
	char path[PATH_MAX], line[512], text[16384];
	struct config *cfg;
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/conf/ctr.conf", srcdir);
	if ((f = fopen(path, "r")) == NULL) {
		ok(0, "example %s readable", path);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL && n < sizeof(text) - 600)
		n += snprintf(text + n, sizeof(text) - n, "%s",
		    strncmp(line, "secret_file:", 12) == 0 ?
		    "secret_file: secret\n" : line);
	fclose(f);
	cfg = load_ok(text);
	ok(cfg != NULL && cfg->nproducers > 0 && cfg->nconsumers > 0,
	    "conf/ctr.conf loads");
	config_free(cfg);
}

int
main(void)
{
	char srcdir[PATH_MAX], here[] = __FILE__;
	const char *env;
	int fd;

	util_init();
	log_init(0);
	if ((env = getenv("CTR_SRCDIR")) != NULL)
		snprintf(srcdir, sizeof(srcdir), "%s", env);
	else if (realpath(dirname(here), srcdir) != NULL)
		strncat(srcdir, "/..", sizeof(srcdir) - strlen(srcdir) - 1);
	else
		fatal("realpath %s", __FILE__);

	if (mkdtemp(tmpdir) == NULL || chdir(tmpdir) == -1)
		fatal("mkdtemp");
	if ((fd = open("/dev/urandom", O_RDONLY)) == -1 ||
	    read(fd, secret_bytes, sizeof(secret_bytes)) !=
	    (ssize_t)sizeof(secret_bytes))
		fatal("/dev/urandom");
	close(fd);
	write_file("secret", secret_bytes, sizeof(secret_bytes), 0600);

	test_full();
	test_defaults();
	test_relative_paths();
	test_numbers();
	test_structure();
	test_many_errors();
	test_error_cap();
	test_producers();
	test_consumers();
	test_stream();
	test_patterns();
	test_files();
	test_log();
	test_example(srcdir);

	unlink("secret");
	unlink("t.conf");
	if (chdir("/") == -1 || rmdir(tmpdir) == -1)
		fatal("rmdir %s", tmpdir);
	return done();
}
