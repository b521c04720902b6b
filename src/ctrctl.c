/* ctrctl: the operator's tool: secrets, keys, config checks, a test sink. */
#include "autoconf.h"

#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <sodium.h>

#include "config.h"
#include "keys.h"
#include "log.h"
#include "sign.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#define DEFAULT_SECRET	SYSCONFDIR "/ctrd/secret"
#define SINK_BODY_MAX	(1024 * 1024)

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: ctrctl secret-gen FILE\n"
	    "       ctrctl keygen [-s secret_file] NAME\n"
	    "       ctrctl hash [-s secret_file] < key\n"
	    "       ctrctl check CONF\n"
	    "       ctrctl sink --listen ADDR:PORT [--secret whsec_...]\n"
	    "                   [--status N] [--delay-ms N] [--count N]\n");
	exit(2);
}

static int
secret_gen(int argc, char *argv[])
{
	unsigned char secret[SERVER_SECRET_LEN];
	int fd;

	if (argc != 2)
		usage();
	/* O_EXCL: a server secret is never replaced by accident; every key
	 * hash in ctr.conf depends on it. */
	fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1) {
		fprintf(stderr, "ctrctl: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	randombytes_buf(secret, sizeof(secret));
	if (write(fd, secret, sizeof(secret)) != sizeof(secret) ||
	    fsync(fd) == -1 || close(fd) == -1) {
		fprintf(stderr, "ctrctl: %s: %s\n", argv[1], strerror(errno));
		sodium_memzero(secret, sizeof(secret));
		unlink(argv[1]);
		return 1;
	}
	sodium_memzero(secret, sizeof(secret));
	printf("wrote a new server secret to %s (mode 0600)\n", argv[1]);
	return 0;
}

static int
read_secret(const char *path, unsigned char secret[SERVER_SECRET_LEN])
{
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		fprintf(stderr, "ctrctl: %s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		fprintf(stderr, "ctrctl: %s: readable or writable by group "
		    "or others; chmod 600 it\n", path);
		close(fd);
		return -1;
	}
	n = read(fd, secret, SERVER_SECRET_LEN);
	close(fd);
	if (n != SERVER_SECRET_LEN || st.st_size != SERVER_SECRET_LEN) {
		fprintf(stderr, "ctrctl: %s: must hold exactly %d bytes\n",
		    path, SERVER_SECRET_LEN);
		return -1;
	}
	return 0;
}

static const char *
secret_option(int *argc, char ***argv)
{
	const char *path = DEFAULT_SECRET;

	if (*argc >= 3 && strcmp((*argv)[1], "-s") == 0) {
		path = (*argv)[2];
		*argc -= 2;
		*argv += 2;
	}
	return path;
}

static int
keygen(int argc, char *argv[])
{
	unsigned char secret[SERVER_SECRET_LEN], hash[KEY_HASH_LEN];
	char key[KEY_LEN + 1], hex[2 * KEY_HASH_LEN + 1];
	const char *path = secret_option(&argc, &argv);

	if (argc != 2)
		usage();
	if (read_secret(path, secret) == -1)
		return 1;
	keys_generate(key, sizeof(key));
	keys_hash(secret, key, strlen(key), hash);
	keys_hash_hex(hash, hex, sizeof(hex));
	printf("# API key for producer \"%s\"; it is shown only now.\n"
	    "# Give it to the producer; ctrd keeps only its hash.\n"
	    "%s\n\n"
	    "# Paste under producers: in ctr.conf, then reload ctrd:\n"
	    "  - name: %s\n"
	    "    key_hash: %s\n", argv[1], key, argv[1], hex);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(secret, sizeof(secret));
	return 0;
}

static int
hash(int argc, char *argv[])
{
	unsigned char secret[SERVER_SECRET_LEN], h[KEY_HASH_LEN];
	char key[256], hex[2 * KEY_HASH_LEN + 1];
	const char *path = secret_option(&argc, &argv);
	size_t n;

	if (argc != 1)
		usage();
	if (read_secret(path, secret) == -1)
		return 1;
	if (fgets(key, sizeof(key), stdin) == NULL) {
		fprintf(stderr, "ctrctl: no key on standard input\n");
		return 1;
	}
	n = strcspn(key, "\r\n");
	key[n] = '\0';
	if (!keys_format_ok(key, n)) {
		fprintf(stderr, "ctrctl: not an API key (ctr_ + 43 "
		    "characters of base64url)\n");
		return 1;
	}
	keys_hash(secret, key, n, h);
	keys_hash_hex(h, hex, sizeof(hex));
	printf("%s\n", hex);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(secret, sizeof(secret));
	return 0;
}

static int
check(int argc, char *argv[])
{
	struct config_errors errs = { 0 };
	struct config *cf;
	size_t i;

	if (argc != 2)
		usage();
	if ((cf = config_load(argv[1], &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			if (errs.v[i].line == 0)	/* the whole file */
				fprintf(stderr, "%s: %s\n", errs.v[i].file,
				    errs.v[i].msg);
			else
				fprintf(stderr, "%s:%d:%d: %s\n",
				    errs.v[i].file, errs.v[i].line,
				    errs.v[i].col, errs.v[i].msg);
		fprintf(stderr, "%s: %zu error%s\n", argv[1], errs.n,
		    errs.n == 1 ? "" : "s");
		config_errors_free(&errs);
		return 1;
	}
	printf("%s: configuration OK: %zu producers, %zu consumers\n",
	    argv[1], cf->nproducers, cf->nconsumers);
	config_free(cf);
	config_errors_free(&errs);
	return 0;
}

/* The sink: a webhook receiver for trying ctrd out and for tests. */
struct sink {
	unsigned char	*secret;
	size_t		 secretlen;
	unsigned	 status;
	unsigned	 delay_ms;
	long		 count;		/* stop after this many; -1 never */
	long		 seen;
};

struct sink_req {
	char	*buf;
	size_t	 len;
	int	 overflow;
};

static volatile sig_atomic_t sink_done;

static void
on_stop_signal(int sig)
{
	sink_done = 1;
}

/* Print one line for a delivery: what arrived, how late, and whether
 * its signature holds. */
static void
sink_print(struct sink *s, struct MHD_Connection *conn, struct sink_req *r)
{
	const char *id, *ts, *sig, *verdict = "unsigned";
	const cJSON *type, *producer, *time_, *seq;
	struct tm tm = { 0 };
	cJSON *env;
	double ms = -1, frac = 0;
	char *end;
	int64_t t;

	id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-id");
	ts = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "webhook-timestamp");
	sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "webhook-signature");
	if (s->secret != NULL) {
		verdict = "BAD";
		if (id != NULL && ts != NULL && sig != NULL) {
			t = strtoll(ts, &end, 10);
			if (*end == '\0' && sign_verify(s->secret,
			    s->secretlen, id, t, r->buf, r->len, sig))
				verdict = "ok";
		}
	}
	env = cJSON_ParseWithLength(r->buf, r->len);
	type = cJSON_GetObjectItem(env, "type");
	producer = cJSON_GetObjectItem(env, "producer");
	time_ = cJSON_GetObjectItem(env, "time");
	seq = cJSON_GetObjectItem(env, "seq");
	if (cJSON_IsString(time_)) {
		end = strptime(time_->valuestring, "%Y-%m-%dT%H:%M:%S", &tm);
		if (end != NULL && *end == '.')
			frac = strtod(end, NULL);
		if (end != NULL)
			ms = (double)now_ms() - ((double)timegm(&tm) + frac) *
			    1000.0;
	}
	printf("event=%s type=%s producer=%s seq=%.0f signature=%s "
	    "latency_ms=%.0f bytes=%zu\n", id != NULL ? id : "-",
	    cJSON_IsString(type) ? type->valuestring : "-",
	    cJSON_IsString(producer) ? producer->valuestring : "-",
	    cJSON_IsNumber(seq) ? seq->valuedouble : -1.0, verdict, ms,
	    r->len);
	if (getenv("CTRCTL_SINK_BODIES") != NULL)
		printf("%.*s\n", (int)r->len, r->buf);
	fflush(stdout);
	cJSON_Delete(env);
}

static enum MHD_Result
sink_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *data,
    size_t *size, void **con_cls)
{
	struct sink *s = cls;
	struct sink_req *r = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	struct timespec ts;

	if (r == NULL) {
		*con_cls = xcalloc(1, sizeof(*r));
		return MHD_YES;
	}
	if (*size > 0) {
		if (r->len + *size > SINK_BODY_MAX)
			r->overflow = 1;
		else {
			r->buf = xrealloc(r->buf, r->len + *size + 1);
			memcpy(r->buf + r->len, data, *size);
			r->len += *size;
		}
		*size = 0;
		return MHD_YES;
	}
	if (r->buf == NULL)
		r->buf = xstrdup("");
	sink_print(s, conn, r);
	if (s->delay_ms > 0) {
		ts.tv_sec = s->delay_ms / 1000;
		ts.tv_nsec = (long)(s->delay_ms % 1000) * 1000000;
		nanosleep(&ts, NULL);
	}
	resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(conn, s->status, resp);
	MHD_destroy_response(resp);
	if (s->count > 0 && ++s->seen >= s->count)
		sink_done = 1;
	return ret;
}

static void
sink_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct sink_req *r = *con_cls;

	if (r != NULL) {
		free(r->buf);
		free(r);
	}
	*con_cls = NULL;
}

static int
sink(int argc, char *argv[])
{
	struct sink s = { NULL, 0, 204, 0, -1, 0 };
	struct sockaddr_in sin = { 0 };
	struct MHD_Daemon *d;
	const char *listen_at = NULL, *secret = NULL, *colon;
	unsigned char raw[128];
	size_t rawlen;
	int i;

	for (i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--listen") == 0)
			listen_at = argv[++i];
		else if (strcmp(argv[i], "--secret") == 0)
			secret = argv[++i];
		else if (strcmp(argv[i], "--status") == 0)
			s.status = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--delay-ms") == 0)
			s.delay_ms = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--count") == 0)
			s.count = atol(argv[++i]);
		else
			usage();
	}
	if (listen_at == NULL || (colon = strrchr(listen_at, ':')) == NULL ||
	    s.status < 100 || s.status > 599)
		usage();
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	{
		char host[64];

		snprintf(host, sizeof(host), "%.*s", (int)(colon - listen_at),
		    listen_at);
		if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
			fprintf(stderr, "ctrctl: %s: not an IPv4 address\n",
			    host);
			return 2;
		}
	}
	if (secret != NULL) {
		if (strncmp(secret, "whsec_", 6) != 0 ||
		    sodium_base642bin(raw, sizeof(raw), secret + 6,
		    strlen(secret + 6), NULL, &rawlen, NULL,
		    sodium_base64_VARIANT_ORIGINAL) != 0) {
			fprintf(stderr, "ctrctl: --secret: expects whsec_ "
			    "and base64\n");
			return 2;
		}
		s.secret = raw;
		s.secretlen = rawlen;
	}
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_EPOLL, 0, NULL, NULL, sink_request, &s,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_NOTIFY_COMPLETED, sink_completed, NULL,
	    MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "ctrctl: cannot listen on %s\n", listen_at);
		return 1;
	}
	signal(SIGINT, on_stop_signal);
	signal(SIGTERM, on_stop_signal);
	fprintf(stderr, "ctrctl sink: listening on %s\n", listen_at);
	while (!sink_done)
		usleep(50000);
	MHD_stop_daemon(d);
	return 0;
}

int
main(int argc, char *argv[])
{
	util_init();
	log_init(0);
	if (sodium_init() == -1) {
		fprintf(stderr, "ctrctl: libsodium failed to initialise\n");
		return 1;
	}
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "secret-gen") == 0)
		return secret_gen(argc - 1, argv + 1);
	if (strcmp(argv[1], "keygen") == 0)
		return keygen(argc - 1, argv + 1);
	if (strcmp(argv[1], "hash") == 0)
		return hash(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return check(argc - 1, argv + 1);
	if (strcmp(argv[1], "sink") == 0)
		return sink(argc - 1, argv + 1);
	usage();
}
