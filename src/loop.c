/* The one event loop: epoll over file descriptors, plus timer hooks. */
#include "autoconf.h"

#include <sys/epoll.h>

#include <errno.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "util.h"

#define LOOP_EVENTS	256
#define LOOP_HOOKS	8
#define LOAD_WINDOW_US	100000	/* busy share measured over 100 ms */

struct loop_watch {
	int		 fd;
	int		 dead;
	void		(*cb)(int, uint32_t, void *);
	void		*arg;
	struct loop_watch *next_dead;
};

struct loop_hook {
	int64_t		(*next)(void *);
	void		(*run)(void *);
	void		*arg;
};

static int		 epfd = -1;
static int		 running;
static struct loop_hook	 hooks[LOOP_HOOKS];
static int		 nhooks;
/* Watches deleted during a dispatch round: freed once the round is over,
 * since a later event of the same round may still point at them. */
static struct loop_watch *graveyard;
/* Time the loop spent working, not waiting, in the current window, and
 * the smoothed share of the windows before. */
static int64_t		 win_start, win_busy, turn_start;
static double		 load;

void
loop_init(void)
{
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
}

struct loop_watch *
loop_add(int fd, uint32_t events, void (*cb)(int, uint32_t, void *),
    void *arg)
{
	struct epoll_event ev = { 0 };
	struct loop_watch *w;

	w = xcalloc(1, sizeof(*w));
	w->fd = fd;
	w->cb = cb;
	w->arg = arg;
	ev.events = events;
	ev.data.ptr = w;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		fatal("epoll_ctl add fd %d", fd);
	return w;
}

void
loop_mod(struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = { 0 };

	ev.events = events;
	ev.data.ptr = w;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, w->fd, &ev) == -1)
		fatal("epoll_ctl mod fd %d", w->fd);
}

void
loop_del(struct loop_watch *w)
{
	/* The fd may already be closed (and so gone from the set). */
	if (epoll_ctl(epfd, EPOLL_CTL_DEL, w->fd, NULL) == -1 &&
	    errno != EBADF && errno != ENOENT)
		log_warn("epoll_ctl del fd %d", w->fd);
	w->dead = 1;
	w->next_dead = graveyard;
	graveyard = w;
}

void
loop_hook(int64_t (*next)(void *), void (*run)(void *), void *arg)
{
	if (nhooks == LOOP_HOOKS)
		fatalx("loop_hook: too many hooks");
	hooks[nhooks].next = next;
	hooks[nhooks].run = run;
	hooks[nhooks].arg = arg;
	nhooks++;
}

static int
wait_ms(void)
{
	int64_t when, soonest = -1, now;
	int i;

	for (i = 0; i < nhooks; i++) {
		when = hooks[i].next(hooks[i].arg);
		if (when >= 0 && (soonest < 0 || when < soonest))
			soonest = when;
	}
	if (soonest < 0)
		return -1;
	now = mono_ms();
	if (soonest <= now)
		return 0;
	return soonest - now > 60000 ? 60000 : (int)(soonest - now);
}

static void
bury(void)
{
	struct loop_watch *w;

	while ((w = graveyard) != NULL) {
		graveyard = w->next_dead;
		free(w);
	}
}

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Account a turn's work, from its wake-up to now, to the load. */
static void
account(void)
{
	int64_t now = mono_us(), span, k;

	win_busy += now - turn_start;
	if ((span = now - win_start) >= LOAD_WINDOW_US) {
		/* Half the weight on the last window: about 200 ms of
		 * memory, so one slow turn does not make an overload.  A
		 * long sleep counts as the idle windows it spanned. */
		for (k = span / LOAD_WINDOW_US; k > 1 && load > 0.001; k--)
			load *= 0.5;
		load = 0.5 * load + 0.5 * ((double)win_busy / (double)span);
		win_start = now;
		win_busy = 0;
	}
}

double
loop_load(void)
{
	int64_t now = mono_us(), span = now - win_start;
	double cur;

	/* The window under way counts as soon as it says more: a loop that
	 * goes from idle to flat out is seen within 25 ms, not after the
	 * smoothed share has caught up. */
	if (span >= LOAD_WINDOW_US / 4) {
		cur = (double)(win_busy + now - turn_start) / (double)span;
		if (cur > load)
			return cur < 1.0 ? cur : 1.0;
	}
	return load;
}

void
loop_run(void)
{
	struct epoll_event evs[LOOP_EVENTS];
	struct loop_watch *w;
	int i, n;

	running = 1;
	win_start = turn_start = mono_us();
	while (running) {
		/* What the last turn logged goes out in one write, before
		 * the loop may sleep. */
		log_flush();
		account();
		n = epoll_wait(epfd, evs, LOOP_EVENTS, wait_ms());
		turn_start = mono_us();
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fatal("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			w = evs[i].data.ptr;
			if (!w->dead)
				w->cb(w->fd, evs[i].events, w->arg);
		}
		for (i = 0; i < nhooks; i++)
			hooks[i].run(hooks[i].arg);
		bury();
	}
}

void
loop_stop(void)
{
	running = 0;
}

void
loop_free(void)
{
	bury();
	if (epfd != -1)
		close(epfd);
	epfd = -1;
	nhooks = 0;
}
