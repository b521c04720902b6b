/* ctrd: command line, daemon life cycle, signals, and systemd notification. */
#include "autoconf.h"

#include <sys/signalfd.h>
#include <sys/epoll.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif
#include <sodium.h>

#include "config.h"
#include "deliver.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "stream.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#define DEFAULT_CONF	SYSCONFDIR "/ctrd/ctr.conf"

static const char	*conf_path = DEFAULT_CONF;
static int		 sigfd = -1;
static struct loop_watch *sigwatch;
static int64_t		 drain_until = -1;	/* mono ms, while stopping */

static void
notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: ctrd [-fnv] [-c file]\n"
	    "  -c file  configuration (default %s)\n"
	    "  -f       stay in the foreground and log to stderr\n"
	    "  -n       check the configuration and exit\n"
	    "  -v       log debug messages too\n", DEFAULT_CONF);
	exit(2);
}

/* Load and check a configuration and open its dead-letter file; on any
 * problem log everything wrong and return NULL. */
static struct config *
load(int *dlfd)
{
	struct config_errors errs = { 0 };
	struct config *cf;

	if ((cf = config_load(conf_path, &errs)) == NULL) {
		config_errors_log(&errs);
		log_warnx("%s: %zu error%s", conf_path, errs.n,
		    errs.n == 1 ? "" : "s");
		config_errors_free(&errs);
		return NULL;
	}
	config_errors_free(&errs);
	if (dlfd == NULL)
		return cf;		/* -n: check, open nothing */
	if ((*dlfd = deliver_open_dead_letter(cf->dead_letter_file)) == -1) {
		log_warn("dead_letter_file %s", cf->dead_letter_file);
		config_free(cf);
		return NULL;
	}
	return cf;
}

static void
reload(void)
{
	const struct config *old = fanout_config(fanout_current());
	struct config *cf;
	char buf[64];
	int dlfd;

	snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%lld",
	    (long long)mono_ms() * 1000);
	notify(buf);
	if ((cf = load(&dlfd)) == NULL) {
		log_warnx("reload failed: keeping the running configuration");
		notify("READY=1\nSTATUS=reload failed; kept the old "
		    "configuration");
		return;
	}
	if (strcmp(cf->listen_host, old->listen_host) != 0 ||
	    (cf->listen_port != old->listen_port && cf->listen_port != 0))
		log_warnx("listen changed: takes effect at restart only");
	/* libmicrohttpd takes these once, when it starts. */
	if (cf->max_connections != old->max_connections ||
	    cf->max_connections_per_ip != old->max_connections_per_ip ||
	    cf->connection_timeout_s != old->connection_timeout_s)
		log_warnx("max_connections, max_connections_per_ip and "
		    "connection_timeout_s changed: they take effect at "
		    "restart only");
	log_info("reloaded %s: %zu producers, %zu consumers", conf_path,
	    cf->nproducers, cf->nconsumers);
	fanout_install(cf, dlfd);
	notify("READY=1\nSTATUS=serving");
}

static void
stop(void)
{
	const struct config *cf = fanout_config(fanout_current());

	if (drain_until >= 0)
		return;
	notify("STOPPING=1");
	log_info("stopping: draining %zu deliveries (at most %u ms)",
	    deliver_pending(), cf->drain_ms);
	http_quiesce();
	drain_until = mono_ms() + cf->drain_ms;
}

static void
on_signal(int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			reload();
			break;
		case SIGTERM:
		case SIGINT:
			stop();
			break;
		}
	}
}

static int64_t
drain_next(void *arg)
{
	/* Poll while draining: the exit condition is not an fd event. */
	return drain_until < 0 ? -1 : mono_ms() + 10;
}

static void
drain_check(void *arg)
{
	if (drain_until < 0)
		return;
	if (deliver_pending() == 0 || mono_ms() >= drain_until)
		loop_stop();
}

static void
signals_init(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	if ((sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	sigwatch = loop_add(sigfd, EPOLLIN, on_signal, NULL);
}

int
main(int argc, char *argv[])
{
	struct config *cf;
	int ch, foreground = 0, check_only = 0, verbose = 0, dlfd;

	while ((ch = getopt(argc, argv, "c:fnv")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	log_init(verbose);
	util_init();
	if (sodium_init() == -1)
		fatalx("libsodium failed to initialise");
	if ((cf = load(check_only ? NULL : &dlfd)) == NULL)
		exit(1);
	if (check_only) {
		printf("configuration OK\n");
		config_free(cf);
		exit(0);
	}
	log_buffer();
	loop_init();
	signals_init();
	deliver_init();
	stream_init();
	fanout_install(cf, dlfd);
	if (http_start(cf) == -1)
		exit(1);
	loop_hook(drain_next, drain_check, NULL);
	/* Bound and ready before going to the background, so that a bad
	 * address is reported on the terminal that started us. */
	if (!foreground) {
		if (daemon(0, 0) == -1)
			fatal("daemon");
		log_to_syslog();
	}
	notify("READY=1\nSTATUS=serving");
	log_info("ctrd %s ready: %zu producers, %zu consumers",
	    PACKAGE_VERSION, cf->nproducers, cf->nconsumers);

	loop_run();

	if (deliver_pending() > 0)
		log_warnx("drain time is up: %zu deliveries dead-lettered "
		    "as shutdown", deliver_pending());
	deliver_abandon();
	http_stop();
	stream_free();
	deliver_free();
	loop_del(sigwatch);
	close(sigfd);
	loop_free();
	metrics_free();
	log_info("stopped");
	return 0;
}
