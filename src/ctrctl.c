/* ctrctl: the operator's tool: secrets, keys, config checks; the event
 * tools live in post.c, replay.c and sink.c. */
#include "autoconf.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "ctrctl.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#define DEFAULT_SECRET	SYSCONFDIR "/ctrd/secret"

void
ctrctl_usage(void)
{
	fprintf(stderr,
	    "usage: ctrctl secret-gen FILE\n"
	    "       ctrctl keygen [-s secret_file] NAME\n"
	    "       ctrctl hash [-s secret_file] < key\n"
	    "       ctrctl check CONF\n"
	    "       ctrctl send [-u URL] [-k KEYFILE] TYPE "
	    "[key=value | key:=json ...]\n"
	    "       ctrctl send [-u URL] [-k KEYFILE] -f EVENT.json\n"
	    "       ctrctl replay [-u URL] [-k KEYFILE] [--speed N] "
	    "[--run N]\n"
	    "                     [--legacy] [--producer NAME] [--dry-run] "
	    "FILE.lss\n"
	    "       ctrctl sink --listen ADDR:PORT [--secret whsec_...]\n"
	    "                   [--status N | --status-seq N,N,...] "
	    "[--delay-ms N]\n"
	    "                   [--count N] [--json]\n");
	exit(2);
}

static int
secret_gen(int argc, char *argv[])
{
	unsigned char secret[SERVER_SECRET_LEN];
	int fd;

	if (argc != 2)
		ctrctl_usage();
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
	char shown[4 * NAME_CHARS_MAX];
	const char *path = secret_option(&argc, &argv);

	if (argc != 2)
		ctrctl_usage();
	/* Before anything is made: a key for a name that ctr.conf refuses
	 * would be shown once and never be usable. */
	if (!name_is_valid(argv[1])) {
		fprintf(stderr, "ctrctl: keygen: \"%s\" is not a producer "
		    "name: 1 to %d letters, digits, '_', '.' or '-', "
		    "starting with a letter or digit\n", log_escape(shown,
		    sizeof(shown), argv[1], strlen(argv[1])), NAME_CHARS_MAX);
		return 2;
	}
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
		ctrctl_usage();
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
		ctrctl_usage();
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
		ctrctl_usage();
	if (strcmp(argv[1], "secret-gen") == 0)
		return secret_gen(argc - 1, argv + 1);
	if (strcmp(argv[1], "keygen") == 0)
		return keygen(argc - 1, argv + 1);
	if (strcmp(argv[1], "hash") == 0)
		return hash(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return check(argc - 1, argv + 1);
	if (strcmp(argv[1], "send") == 0)
		return post_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "replay") == 0)
		return replay_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "sink") == 0)
		return sink_main(argc - 1, argv + 1);
	ctrctl_usage();
}
