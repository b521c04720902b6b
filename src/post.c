/* Posting events to ctrd with libcurl, and ctrctl send. */
#include "autoconf.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "ctrctl.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#define REPLY_MAX	(1024 * 1024)	/* more of a reply is dropped */
#define FILE_MAX	(4 * 1024 * 1024)
#define TIMEOUT_MS	10000L
#define CONNECT_MS	3000L
#define BUSY_TRIES	5	/* attempts while ctrd answers 503 */
#define BUSY_WAIT_MAX	10	/* longest Retry-After waited for, s */

struct poster {
	CURL			*curl;
	struct curl_slist	*headers;
	char			*url;
	char			 error[CURL_ERROR_SIZE];
};

struct reply {
	char	*buf;
	size_t	 len;
	long	 retry_after;	/* seconds, or -1 */
};

int
post_key(const char *keyfile, char *buf, size_t len)
{
	struct stat st;
	const char *env;
	ssize_t n;
	int fd;

	if (keyfile != NULL) {
		if ((fd = open(keyfile, O_RDONLY | O_CLOEXEC)) == -1 ||
		    fstat(fd, &st) == -1) {
			fprintf(stderr, "ctrctl: %s: %s\n", keyfile,
			    strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		if ((st.st_mode & 077) != 0) {
			fprintf(stderr, "ctrctl: %s: readable or writable by "
			    "group or others; chmod 600 it\n", keyfile);
			close(fd);
			return -1;
		}
		n = read(fd, buf, len - 1);
		close(fd);
		if (n < 0) {
			fprintf(stderr, "ctrctl: %s: %s\n", keyfile,
			    strerror(errno));
			return -1;
		}
		buf[n] = '\0';
	} else if ((env = getenv("CTR_KEY")) != NULL)
		snprintf(buf, len, "%s", env);
	else {
		fprintf(stderr, "ctrctl: no API key: set CTR_KEY or give "
		    "-k KEYFILE\n");
		return -1;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!keys_format_ok(buf, strlen(buf))) {
		fprintf(stderr, "ctrctl: %s: not an API key (ctr_ and 43 "
		    "characters of base64url)\n",
		    keyfile != NULL ? keyfile : "CTR_KEY");
		sodium_memzero(buf, len);
		return -1;
	}
	return 0;
}

static size_t
on_reply(char *data, size_t size, size_t nmemb, void *arg)
{
	struct reply *r = arg;
	size_t n = size * nmemb, keep = n;

	if (r->len + keep > REPLY_MAX)
		keep = REPLY_MAX - r->len;
	if (keep > 0) {
		r->buf = xrealloc(r->buf, r->len + keep + 1);
		memcpy(r->buf + r->len, data, keep);
		r->len += keep;
		r->buf[r->len] = '\0';
	}
	return n;
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct reply *r = arg;
	size_t n = size * nmemb;
	int64_t ms;

	/* In whole seconds, a fraction rounded up. */
	if ((ms = retry_after_header(data, n)) >= 0)
		r->retry_after = (long)((ms + 999) / 1000);
	return n;
}

struct poster *
post_open(const char *url, const char *key, int legacy)
{
	static int curl_ready;
	struct poster *p;
	char h[320];

	if (!curl_ready && curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		fatalx("libcurl failed to initialise");
	curl_ready = 1;
	p = xcalloc(1, sizeof(*p));
	if ((p->curl = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	p->url = xstrdup(url);
	snprintf(h, sizeof(h), legacy ? "x-producer-key: %s" :
	    "Authorization: Bearer %s", key);
	/* XXX: libcurl keeps its own copy of this header and frees it
	 * without wiping it; the key stays in freed memory until reused. */
	p->headers = curl_slist_append(p->headers, h);
	sodium_memzero(h, sizeof(h));
	p->headers = curl_slist_append(p->headers,
	    "Content-Type: application/json");
	p->headers = curl_slist_append(p->headers, "Expect:");
	if (p->headers == NULL)
		fatalx("curl_slist_append failed");
	curl_easy_setopt(p->curl, CURLOPT_URL, p->url);
	curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, p->headers);
	curl_easy_setopt(p->curl, CURLOPT_USERAGENT,
	    "ctrctl/" PACKAGE_VERSION);
	curl_easy_setopt(p->curl, CURLOPT_ERRORBUFFER, p->error);
	curl_easy_setopt(p->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
	curl_easy_setopt(p->curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_MS);
	curl_easy_setopt(p->curl, CURLOPT_WRITEFUNCTION, on_reply);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(p->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(p->curl, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	return p;
}

int
post_body(struct poster *p, const char *body, size_t len, char **reply)
{
	struct reply r;
	CURLcode rc;
	long status;
	int tries = 0;

again:
	memset(&r, 0, sizeof(r));
	r.retry_after = -1;
	status = 0;
	p->error[0] = '\0';
	curl_easy_setopt(p->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(p->curl, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)len);
	curl_easy_setopt(p->curl, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(p->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(p->curl, CURLOPT_HEADERDATA, &r);
	rc = curl_easy_perform(p->curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &status);
	/* A busy ctrd, or one that holds this producer to its rate, says
	 * when to come back: wait that long and send the same body again,
	 * a few times; nothing of it was accepted. */
	if (rc == CURLE_OK && (status == 503 || status == 429) &&
	    r.retry_after >= 0 &&
	    r.retry_after <= BUSY_WAIT_MAX && ++tries < BUSY_TRIES) {
		fprintf(stderr, "ctrctl: %s: %ld, retrying in %ld s\n",
		    p->url, status, r.retry_after);
		free(r.buf);
		sleep((unsigned)r.retry_after);
		goto again;
	}
	if (rc != CURLE_OK || status < 100) {
		fprintf(stderr, "ctrctl: %s: %s\n", p->url,
		    p->error[0] != '\0' ? p->error : rc != CURLE_OK ?
		    curl_easy_strerror(rc) : "no HTTP answer");
		free(r.buf);
		return -1;
	}
	*reply = r.buf != NULL ? r.buf : xstrdup("");
	return (int)status;
}

void
post_close(struct poster *p)
{
	if (p == NULL)
		return;
	curl_easy_cleanup(p->curl);
	curl_slist_free_all(p->headers);
	free(p->url);
	free(p);
}

/* A value from the command line: key:=JSON is taken as JSON; key=text
 * is a number or boolean when it reads as one, else a string. */
static cJSON *
arg_value(const char *text, int raw)
{
	struct json_error err;
	cJSON *v;

	if (raw) {
		if ((v = json_parse_strict(text, strlen(text), 32, 0,
		    &err)) == NULL)
			fprintf(stderr, "ctrctl: \"%s\": %s\n", text,
			    err.message);
		return v;
	}
	/* A number exactly as written, unless it would not fit a double:
	 * ctrd would refuse 1e999 as a number, so it goes as text. */
	if (json_is_number(text) && isfinite(strtod(text, NULL)))
		return cJSON_CreateRaw(text);
	if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
		return cJSON_CreateBool(text[0] == 't');
	return cJSON_CreateString(text);
}

/* Add key: v to obj; -1 (v freed) if key is there already, which ctrd
 * would refuse as a duplicate key anyway. */
static int
set_member(cJSON *obj, const char *key, cJSON *v)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL) {
		fprintf(stderr, "ctrctl: %s: given more than once\n", key);
		cJSON_Delete(v);
		return -1;
	}
	cJSON_AddItemToObject(obj, key, v);
	return 0;
}

/* The native event TYPE with detail from key=value arguments; NULL after
 * a message for a malformed argument. */
static char *
event_from_args(const char *type, int argc, char *argv[])
{
	cJSON *ev, *detail, *v;
	char *key, *eq, *out = NULL;
	int i, raw, set;

	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "type", type);
	detail = cJSON_AddObjectToObject(ev, "detail");
	for (i = 0; i < argc; i++) {
		if ((eq = strchr(argv[i], '=')) == NULL || eq == argv[i] ||
		    (eq == argv[i] + 1 && argv[i][0] == ':')) {
			fprintf(stderr, "ctrctl: \"%s\": expected key=value "
			    "or key:=json\n", argv[i]);
			goto fail;
		}
		raw = eq[-1] == ':';
		key = xstrndup(argv[i], (size_t)(eq - argv[i]) - raw);
		v = arg_value(eq + 1, raw);
		if (v == NULL) {
			free(key);
			goto fail;
		}
		/* source and time belong to the envelope, not to detail. */
		set = set_member(strcmp(key, "source") == 0 ||
		    strcmp(key, "time") == 0 ? ev : detail, key, v);
		free(key);
		if (set == -1)
			goto fail;
	}
	out = cJSON_PrintUnformatted(ev);

fail:
	cJSON_Delete(ev);
	return out;
}

/* The whole of path, or standard input for "-"; NULL after a message. */
static char *
read_event_file(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "ctrctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = xmalloc(FILE_MAX + 1);
	n = fread(buf, 1, FILE_MAX + 1, f);
	if (ferror(f) || n > FILE_MAX) {
		fprintf(stderr, "ctrctl: %s: %s\n", path, ferror(f) ?
		    strerror(errno) : "larger than 4 MiB");
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
		*len = n;
	}
	if (f != stdin)
		fclose(f);
	return buf;
}

/* Returns 1 if a reply's "failed" count is above 0. */
static int
some_failed(const char *reply)
{
	cJSON *o = cJSON_Parse(reply);
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "failed");
	int failed = cJSON_IsNumber(f) && f->valuedouble > 0;

	cJSON_Delete(o);
	return failed;
}

int
post_main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 }
	};
	const char *url = CTRCTL_URL, *keyfile = NULL, *file = NULL;
	struct poster *p;
	char key[256], *body, *reply;
	size_t len = 0;
	int c, status, failed;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+u:k:f:", opts, NULL)) != -1)
		switch (c) {
		case 'u':
			url = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		default:
			ctrctl_usage();
		}
	argc -= optind;
	argv += optind;
	if ((file != NULL) != (argc == 0))
		ctrctl_usage();

	if (file != NULL)
		body = read_event_file(file, &len);
	else if ((body = event_from_args(argv[0], argc - 1,
	    argv + 1)) != NULL)
		len = strlen(body);
	if (body == NULL)
		return 2;
	if (post_key(keyfile, key, sizeof(key)) == -1) {
		free(body);
		return 2;
	}
	p = post_open(url, key, 0);
	sodium_memzero(key, sizeof(key));
	status = post_body(p, body, len, &reply);
	post_close(p);
	free(body);
	if (status == -1)
		return 2;
	fputs(reply, stdout);
	if (*reply == '\0' || reply[strlen(reply) - 1] != '\n')
		putchar('\n');
	/* A 202 can still refuse some events of a batch. */
	failed = some_failed(reply);
	free(reply);
	return status >= 200 && status <= 299 && !failed ? 0 : 1;
}
