/* sink: a fast benchmark webhook receiver that times each stamped event. */
#define _GNU_SOURCE	/* memmem, accept4 */

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
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

#define READ_CHUNK	65536
#define REQUEST_MAX	(1024 * 1024)	/* ctrd's envelopes are far smaller */
#define EVENTS_MAX	256
#define STAMP_KEY	"\"sent_ns\":\""

struct conn {
	int		 fd;
	char		*in;
	size_t		 inlen;
	size_t		 incap;
	char		*out;
	size_t		 outlen;
	size_t		 outoff;
	int		 closing;	/* close once out is written */
};

/* One stamped request: its stamp groups the copies of one event. */
struct sample {
	int64_t		 stamp;
	int64_t		 latency;
};

static struct sample	*samples;
static size_t		 nsamples, capsamples;
static uint64_t		 nrequests, nunstamped, nbad;
static const char	*reply;
static size_t		 replylen;
static int		 hang;
static int		 epfd;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: sink [-H] [-g copies] [-n count] "
	    "[-s status] [-l addr:port]\n");
	exit(2);
}

static void
record(const char *body, size_t len, int64_t now)
{
	const char *p, *end = body + len;
	int64_t stamp = 0;

	p = memmem(body, len, STAMP_KEY, sizeof(STAMP_KEY) - 1);
	if (p != NULL)
		for (p += sizeof(STAMP_KEY) - 1; p < end && *p >= '0' &&
		    *p <= '9'; p++)
			stamp = stamp * 10 + (*p - '0');
	/* wrk's static body carries a zero stamp: count it, time nothing. */
	if (stamp == 0) {
		nunstamped++;
		return;
	}
	if (nsamples == capsamples) {
		capsamples = capsamples ? capsamples * 2 : 65536;
		samples = xrealloc(samples, capsamples * sizeof(*samples));
	}
	samples[nsamples].stamp = stamp;
	samples[nsamples].latency = now - stamp;
	nsamples++;
}

static void
queue_out(struct conn *c, const char *data, size_t len)
{
	c->out = xrealloc(c->out, c->outlen + len);
	memcpy(c->out + c->outlen, data, len);
	c->outlen += len;
}

static void
conn_close(struct conn *c)
{
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Flush replies; returns -1 if the connection is done with. */
static int
flush_out(struct conn *c)
{
	struct epoll_event ev = { 0 };
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
	if (c->outoff == c->outlen) {
		c->outoff = c->outlen = 0;
		if (c->closing)
			return -1;
	}
	/* Ask for EPOLLOUT only while a reply is stuck, to spare a
	 * syscall per request in the usual case. */
	ev.events = EPOLLIN | (c->outlen > 0 ? EPOLLOUT : 0);
	ev.data.ptr = c;
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
	return 0;
}

/* Take every complete request in the input; returns -1 on a bad one. */
static int
parse(struct conn *c, int64_t now)
{
	const char *hend, *v;
	size_t off = 0, hlen, clen, total;

	while ((hend = memmem(c->in + off, c->inlen - off, "\r\n\r\n",
	    4)) != NULL) {
		hlen = hend + 4 - (c->in + off);
		v = header(c->in + off, hlen, "Content-Length");
		clen = v != NULL ? strtoul(v, NULL, 10) : 0;
		if (clen > REQUEST_MAX) {
			nbad++;
			return -1;
		}
		total = hlen + clen;
		if (c->inlen - off < total)
			break;
		nrequests++;
		record(c->in + off + hlen, clen, now);
		v = header(c->in + off, hlen, "Connection");
		if (v != NULL && strncasecmp(v, "close", 5) == 0)
			c->closing = 1;
		if (!hang)
			queue_out(c, reply, replylen);
		off += total;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	return 0;
}

static int
on_readable(struct conn *c)
{
	size_t room;
	ssize_t n;
	int64_t now;

	for (;;) {
		if (c->incap - c->inlen < READ_CHUNK) {
			if (c->incap > REQUEST_MAX + READ_CHUNK)
				return -1;
			c->incap = c->incap ? c->incap * 2 : READ_CHUNK * 2;
			c->in = xrealloc(c->in, c->incap);
		}
		room = c->incap - c->inlen;
		n = read(c->fd, c->in + c->inlen, room);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;
		c->inlen += n;
		/* The arrival time: when the bytes were taken in, before
		 * any of this process's own work on them. */
		now = clock_ns(CLOCK_REALTIME);
		if (parse(c, now) == -1)
			return -1;
		if ((size_t)n < room)
			break;		/* a short read: the socket is empty */
	}
	if (hang)
		return 0;
	return flush_out(c);
}

static void
on_accept(int lfd)
{
	struct epoll_event ev = { 0 };
	struct conn *c;
	int fd, one = 1;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = xrealloc(NULL, sizeof(*c));
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
			die("epoll_ctl");
	}
}

static int
cmp_latency(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_stamp(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;

	if (x->stamp != y->stamp)
		return x->stamp < y->stamp ? -1 : 1;
	return x->latency < y->latency ? -1 : x->latency > y->latency;
}

/* Nearest-rank percentile of a sorted array. */
static double
pct_ms(const int64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return -1;
	i = (size_t)(q * n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1] / 1e6;
}

static void
print_dist(const char *prefix, int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_latency);
	printf("%s_count=%zu %s_p50_ms=%.3f %s_p99_ms=%.3f %s_p999_ms=%.3f "
	    "%s_max_ms=%.3f\n", prefix, n, prefix, pct_ms(v, n, 0.50),
	    prefix, pct_ms(v, n, 0.99), prefix, pct_ms(v, n, 0.999),
	    prefix, pct_ms(v, n, 1.0));
}

/*
 * With copies > 1 every event is expected that many times (once per
 * consumer); an event's latency is then that of its last copy, the one
 * that a fan-out goal is about.
 */
static void
report(size_t copies)
{
	int64_t *lat;
	size_t i, j, nlast = 0, incomplete = 0;

	lat = xrealloc(NULL, (nsamples + 1) * sizeof(*lat));
	for (i = 0; i < nsamples; i++)
		lat[i] = samples[i].latency;
	printf("requests=%llu unstamped=%llu bad=%llu cpu_s=%.3f\n",
	    (unsigned long long)nrequests, (unsigned long long)nunstamped,
	    (unsigned long long)nbad, cpu_seconds());
	print_dist("delivery", lat, nsamples);
	if (copies > 1) {
		qsort(samples, nsamples, sizeof(*samples), cmp_stamp);
		for (i = 0; i < nsamples; i = j) {
			for (j = i; j < nsamples &&
			    samples[j].stamp == samples[i].stamp; j++)
				;
			if (j - i == copies)
				lat[nlast++] = samples[j - 1].latency;
			else
				incomplete++;
		}
		printf("events=%zu incomplete=%zu\n", nlast + incomplete,
		    incomplete);
		print_dist("last", lat, nlast);
	}
	fflush(stdout);
	free(lat);
}

static int
listen_on(const char *spec)
{
	struct sockaddr_in sin = { 0 };
	socklen_t len = sizeof(sin);
	char host[64];
	const char *colon;
	int fd, one = 1;

	if ((colon = strrchr(spec, ':')) == NULL ||
	    (size_t)(colon - spec) >= sizeof(host))
		usage();
	snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		usage();
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 4096) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		die(spec);
	/* The harness asks for port 0 and reads the real one here. */
	printf("listening %s %u\n", host, ntohs(sin.sin_port));
	fflush(stdout);
	return fd;
}

static const char *
reply_for(int status)
{
	static char buf[128];

	if (status == 204)
		return "HTTP/1.1 204 No Content\r\n\r\n";
	snprintf(buf, sizeof(buf), "HTTP/1.1 %d Sink\r\n"
	    "Content-Length: 0\r\n\r\n", status);
	return buf;
}

int
main(int argc, char *argv[])
{
	struct epoll_event evs[EVENTS_MAX], ev = { 0 };
	const char *listen_spec = "127.0.0.1:0";
	unsigned long long stop_after = 0;
	size_t copies = 1;
	sigset_t set;
	int ch, i, n, lfd, sfd, status = 204, done = 0;

	progname = "sink";

	while ((ch = getopt(argc, argv, "Hg:l:n:s:")) != -1) {
		switch (ch) {
		case 'H':
			hang = 1;
			break;
		case 'g':
			copies = strtoul(optarg, NULL, 10);
			break;
		case 'l':
			listen_spec = optarg;
			break;
		case 'n':
			stop_after = strtoull(optarg, NULL, 10);
			break;
		case 's':
			status = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || status < 200 || status > 599 || copies < 1)
		usage();
	reply = reply_for(status);
	replylen = strlen(reply);

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC)) == -1)
		die("signalfd");
	lfd = listen_on(listen_spec);
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	/* The two listening descriptors are told apart by their data. */
	ev.events = EPOLLIN;
	ev.data.ptr = &lfd;
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.ptr = &sfd;
	epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);

	while (!done) {
		if ((n = epoll_wait(epfd, evs, EVENTS_MAX, -1)) == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == &lfd)
				on_accept(lfd);
			else if (evs[i].data.ptr == &sfd)
				done = 1;
			else if ((evs[i].events & EPOLLOUT &&
			    flush_out(evs[i].data.ptr) == -1) ||
			    (evs[i].events & (EPOLLIN | EPOLLHUP |
			    EPOLLERR) && on_readable(evs[i].data.ptr) == -1))
				conn_close(evs[i].data.ptr);
		}
		if (stop_after > 0 && nrequests >= stop_after)
			done = 1;
	}
	report(copies);
	return 0;
}
