/* openloop: a constant-rate event generator that stamps each event. */
#define _GNU_SOURCE	/* memmem */

#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/*
 * Every event has an intended send time, start + i / rate, fixed before
 * the run.  Its stamp and both of its latencies are taken from that time
 * rather than from when it actually left: if the server stalls and the
 * generator falls behind, the wait counts against the server, as it
 * would for a real producer (no coordinated omission).
 */

#define CONNS_MAX	1024
#define DEPTH_MAX	64
#define READ_MAX	65536
#define EVENTS_MAX	256
#define STAMP_DIGITS	19
#define SECONDS_MAX	3600

/* A realistic LiveSplit split, the same as bench/post.lua sends. */
static const char body_head[] =
    "{\"type\":\"speedrun.split\",\"source\":\"livesplit\","
    "\"detail\":{\"game\":\"Super Mario 64\",\"category\":\"16 Star\","
    "\"split\":\"Bob-omb Battlefield\",\"split_index\":1,"
    "\"pace\":\"-0:00:05.000\",\"segment_time\":\"0:01:02.345\","
    "\"attempt\":1234,\"sent_ns\":\"";
static const char body_tail[] = "\"}}";

struct conn {
	int		 fd;
	int		 up;		/* connected */
	char		 in[READ_MAX];
	size_t		 inlen;
	char		*out;
	size_t		 outlen;
	size_t		 outoff;
	size_t		 outcap;
	int64_t		 sent[DEPTH_MAX];	/* intended times, in order */
	int		 head;
	int		 n;
};

static struct sockaddr_in addr;
static struct conn	*conns;
static int		 nconns, depth = 1, epfd, verbose;
static char		*request;	/* the whole request, stamp zeroed */
static size_t		 reqlen, stampoff;
static double		 rate;
static uint64_t		 total, due, next_send;
static int64_t		 start_mono, start_real;
static int64_t		*lat;		/* ingest latency of each answer */
static uint64_t		 nlat;
static uint64_t		 n2xx, n503, n503ra, nother, nerrors, nlate;
static int64_t		 late_max;
static uint64_t		 ok_per_s[SECONDS_MAX], rej_per_s[SECONDS_MAX];
static int64_t		 last_answer;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: openloop -p port -r rate (-d seconds | -n "
	    "count) [-c conns] [-D depth]\n"
	    "                [-P path] [-w grace_s] [-v]\n"
	    "the API key is read from $BENCH_KEY\n");
	exit(2);
}

static int64_t
intended(uint64_t i)
{
	return start_mono + (int64_t)((double)i * 1e9 / rate);
}

static void
watch(struct conn *c, uint32_t events, int op)
{
	struct epoll_event ev = { 0 };

	ev.events = events;
	ev.data.ptr = c;
	if (epoll_ctl(epfd, op, c->fd, &ev) == -1)
		die("epoll_ctl");
}

static void
conn_open(struct conn *c)
{
	int one = 1;

	c->up = 0;
	c->inlen = c->outlen = c->outoff = 0;
	c->head = c->n = 0;
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		die("socket");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) == -1 &&
	    errno != EINPROGRESS)
		die("connect");
	watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
}

/* Whatever the connection still owed is lost; open a fresh one. */
static void
conn_reset(struct conn *c)
{
	nerrors += c->n;
	close(c->fd);
	conn_open(c);
}

static int
flush_out(struct conn *c)
{
	ssize_t n;

	while (c->outoff < c->outlen) {
		n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;
		c->outoff += n;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	watch(c, EPOLLIN | (c->outlen > 0 ? EPOLLOUT : 0), EPOLL_CTL_MOD);
	return 0;
}

static void
send_event(struct conn *c, uint64_t i, int64_t now)
{
	int64_t when = intended(i), stamp = start_real + (when - start_mono);
	char *p;
	int d;

	if (c->outcap - c->outlen < reqlen) {
		c->outcap = c->outlen + reqlen * DEPTH_MAX;
		c->out = xrealloc(c->out, c->outcap);
	}
	p = c->out + c->outlen;
	memcpy(p, request, reqlen);
	for (d = STAMP_DIGITS - 1; d >= 0; d--, stamp /= 10)
		p[stampoff + d] = '0' + stamp % 10;
	c->outlen += reqlen;
	c->sent[(c->head + c->n) % DEPTH_MAX] = when;
	c->n++;
	if (now - when > late_max)
		late_max = now - when;
	if (now - when > 1000000)
		nlate++;
}

/* Hand every event that is due to a connection with room for it. */
static void
dispatch(void)
{
	static int rr;
	struct conn *c;
	int64_t now = clock_ns(CLOCK_MONOTONIC);
	int i, tried, sent;

	while (next_send < due) {
		sent = 0;
		for (tried = 0; tried < nconns && next_send < due; tried++) {
			c = &conns[rr];
			rr = (rr + 1) % nconns;
			if (!c->up || c->n >= depth)
				continue;
			send_event(c, next_send++, now);
			sent = 1;
		}
		if (!sent)
			break;
	}
	for (i = 0; i < nconns; i++)
		if (conns[i].up && conns[i].outlen > conns[i].outoff &&
		    flush_out(&conns[i]) == -1)
			conn_reset(&conns[i]);
}

static void
answered(int status, int retry_after, int64_t now)
{
	int64_t sec = (now - start_mono) / 1000000000;

	if (sec < 0)
		sec = 0;
	if (sec >= SECONDS_MAX)
		sec = SECONDS_MAX - 1;
	if (status >= 200 && status <= 299) {
		n2xx++;
		ok_per_s[sec]++;
	} else if (status == 503) {
		n503++;
		n503ra += retry_after;
		rej_per_s[sec]++;
	} else
		nother++;
	last_answer = now;
}

/* Take every complete response; returns -1 if the stream is broken. */
static int
parse(struct conn *c, int64_t now)
{
	const char *hend, *v;
	size_t off = 0, hlen, clen, left;
	int status, close_after = 0;

	while ((hend = memmem(c->in + off, c->inlen - off, "\r\n\r\n",
	    4)) != NULL) {
		left = c->inlen - off;
		hlen = hend + 4 - (c->in + off);
		if (hlen < 12 || strncmp(c->in + off, "HTTP/1.", 7) != 0)
			return -1;
		status = atoi(c->in + off + 9);
		v = header(c->in + off, hlen, "Content-Length");
		clen = v != NULL ? strtoul(v, NULL, 10) : 0;
		if (hlen + clen > READ_MAX)
			return -1;
		if (left < hlen + clen)
			break;
		if (c->n == 0)
			return -1;	/* an answer to nothing we asked */
		lat[nlat++] = now - c->sent[c->head];
		c->head = (c->head + 1) % DEPTH_MAX;
		c->n--;
		answered(status, header(c->in + off, hlen, "Retry-After") !=
		    NULL, now);
		v = header(c->in + off, hlen, "Connection");
		if (v != NULL && strncasecmp(v, "close", 5) == 0)
			close_after = 1;
		off += hlen + clen;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	return close_after ? -1 : 0;
}

static int
on_readable(struct conn *c)
{
	ssize_t n;

	for (;;) {
		n = read(c->fd, c->in + c->inlen, READ_MAX - c->inlen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		c->inlen += n;
		if (parse(c, clock_ns(CLOCK_MONOTONIC)) == -1)
			return -1;
	}
}

static void
on_conn(struct conn *c, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (!c->up) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err,
		    &len) == -1 || err != 0) {
			errno = err;
			die("connect");
		}
		c->up = 1;
		watch(c, EPOLLIN, EPOLL_CTL_MOD);
		return;
	}
	if ((events & EPOLLOUT && flush_out(c) == -1) ||
	    (events & (EPOLLIN | EPOLLHUP | EPOLLERR) &&
	    on_readable(c) == -1))
		conn_reset(c);
}

/* Wake at the intended time of the next event not yet due. */
static void
arm(int tfd)
{
	struct itimerspec its = { 0 };
	int64_t when;

	if (due >= total)
		return;
	when = intended(due);
	its.it_value.tv_sec = when / 1000000000;
	its.it_value.tv_nsec = when % 1000000000;
	if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == -1)
		die("timerfd_settime");
}

static void
on_timer(int tfd)
{
	uint64_t ticks, upto;
	int64_t now = clock_ns(CLOCK_MONOTONIC);

	if (read(tfd, &ticks, sizeof(ticks)) == -1 && errno != EAGAIN)
		die("read timerfd");
	upto = (uint64_t)((double)(now - start_mono) * rate / 1e9) + 1;
	while (upto < total && intended(upto) <= now)
		upto++;		/* rounding must never hold one back */
	due = upto < total ? upto : total;
	arm(tfd);
	dispatch();
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_ms(double q)
{
	uint64_t i;

	if (nlat == 0)
		return -1;
	i = (uint64_t)(q * nlat + 0.999999);
	if (i < 1)
		i = 1;
	if (i > nlat)
		i = nlat;
	return lat[i - 1] / 1e6;
}

static void
report(int64_t end)
{
	double secs = (double)(end - start_mono) / 1e9;
	uint64_t unanswered = 0, s, last;
	int i;

	for (i = 0; i < nconns; i++)
		unanswered += conns[i].n;
	qsort(lat, nlat, sizeof(*lat), cmp64);
	printf("offered=%llu sent=%llu ok=%llu s503=%llu "
	    "s503_retry_after=%llu other=%llu errors=%llu unanswered=%llu\n",
	    (unsigned long long)total, (unsigned long long)next_send,
	    (unsigned long long)n2xx, (unsigned long long)n503,
	    (unsigned long long)n503ra, (unsigned long long)nother,
	    (unsigned long long)nerrors, (unsigned long long)unanswered);
	printf("rate=%.1f elapsed_s=%.3f ok_per_s=%.1f late_sends=%llu "
	    "late_max_ms=%.3f cpu_s=%.3f\n", rate, secs,
	    secs > 0 ? n2xx / secs : 0, (unsigned long long)nlate,
	    late_max / 1e6, cpu_seconds());
	printf("ingest_count=%llu ingest_p50_ms=%.3f ingest_p99_ms=%.3f "
	    "ingest_p999_ms=%.3f ingest_max_ms=%.3f\n",
	    (unsigned long long)nlat, pct_ms(0.50), pct_ms(0.99),
	    pct_ms(0.999), pct_ms(1.0));
	if (verbose) {
		last = (uint64_t)(secs + 1);
		for (s = 0; s < last && s < SECONDS_MAX; s++)
			printf("second=%llu ok=%llu s503=%llu\n",
			    (unsigned long long)s,
			    (unsigned long long)ok_per_s[s],
			    (unsigned long long)rej_per_s[s]);
	}
	fflush(stdout);
}

static void
build_request(const char *path, const char *key)
{
	size_t blen = strlen(body_head) + STAMP_DIGITS + strlen(body_tail);
	int n;

	n = snprintf(NULL, 0, "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
	    "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n%s", path, ntohs(addr.sin_port), key,
	    blen, body_head);
	request = xrealloc(NULL, n + STAMP_DIGITS + strlen(body_tail) + 1);
	snprintf(request, n + 1, "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
	    "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n%s", path, ntohs(addr.sin_port), key,
	    blen, body_head);
	stampoff = n;
	memset(request + n, '0', STAMP_DIGITS);
	strcpy(request + n + STAMP_DIGITS, body_tail);
	reqlen = strlen(request);
}

int
main(int argc, char *argv[])
{
	struct epoll_event evs[EVENTS_MAX], ev = { 0 };
	const char *path = "/v1/events", *key;
	double seconds = 0, grace = 5;
	int64_t sched_end, now;
	int ch, i, n, tfd, up;

	progname = "openloop";

	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	nconns = 8;
	while ((ch = getopt(argc, argv, "D:P:c:d:n:p:r:vw:")) != -1) {
		switch (ch) {
		case 'D':
			depth = atoi(optarg);
			break;
		case 'P':
			path = optarg;
			break;
		case 'c':
			nconns = atoi(optarg);
			break;
		case 'd':
			seconds = strtod(optarg, NULL);
			break;
		case 'n':
			total = strtoull(optarg, NULL, 10);
			break;
		case 'p':
			addr.sin_port = htons((uint16_t)atoi(optarg));
			break;
		case 'r':
			rate = strtod(optarg, NULL);
			break;
		case 'v':
			verbose = 1;
			break;
		case 'w':
			grace = strtod(optarg, NULL);
			break;
		default:
			usage();
		}
	}
	if (total == 0)
		total = (uint64_t)(rate * seconds);
	if (optind != argc || addr.sin_port == 0 || rate <= 0 ||
	    total == 0 || nconns < 1 || nconns > CONNS_MAX || depth < 1 ||
	    depth > DEPTH_MAX)
		usage();
	if ((key = getenv("BENCH_KEY")) == NULL)
		usage();
	build_request(path, key);
	lat = xrealloc(NULL, total * sizeof(*lat));

	/* Wake-ups a few microseconds apart must not be merged. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK |
	    TFD_CLOEXEC)) == -1)
		die("epoll_create1");
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);
	conns = xrealloc(NULL, nconns * sizeof(*conns));
	memset(conns, 0, nconns * sizeof(*conns));
	for (i = 0; i < nconns; i++)
		conn_open(&conns[i]);

	/* Connect everything first, so that no event waits on a
	 * handshake that a long-lived producer would not make. */
	for (up = 0; up < nconns; ) {
		if ((n = epoll_wait(epfd, evs, EVENTS_MAX, 5000)) <= 0)
			die("connect timed out");
		for (i = 0; i < n; i++)
			if (evs[i].data.ptr != NULL) {
				on_conn(evs[i].data.ptr, evs[i].events);
				up++;
			}
	}

	/* The first event 10 ms from now; the two clocks read together
	 * turn each intended time into its realtime stamp. */
	start_mono = clock_ns(CLOCK_MONOTONIC) + 10000000;
	start_real = clock_ns(CLOCK_REALTIME) + 10000000;
	sched_end = intended(total - 1);
	arm(tfd);
	for (;;) {
		now = clock_ns(CLOCK_MONOTONIC);
		if (next_send == total && nlat + nerrors >= total)
			break;
		if (now > sched_end + (int64_t)(grace * 1e9))
			break;
		if ((n = epoll_wait(epfd, evs, EVENTS_MAX, 100)) == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				on_timer(tfd);
			else
				on_conn(evs[i].data.ptr, evs[i].events);
		}
		/* An answer frees a slot that a late event may take. */
		if (next_send < due)
			dispatch();
	}
	report(last_answer > 0 ? last_answer : clock_ns(CLOCK_MONOTONIC));
	return 0;
}
