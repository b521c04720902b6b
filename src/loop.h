/* The one event loop: epoll over file descriptors, plus timer hooks. */
#ifndef CTRD_LOOP_H
#define CTRD_LOOP_H

#include <stdint.h>

struct loop_watch;

/*
 * Watch fd for events (EPOLLIN, EPOLLOUT); cb runs from loop_run with the
 * events seen.  Returns a handle that stays valid until loop_del.
 */
struct loop_watch *loop_add(int fd, uint32_t events,
		    void (*cb)(int fd, uint32_t events, void *arg), void *arg);
void		 loop_mod(struct loop_watch *, uint32_t events);
/* Stop watching; safe from inside any callback.  Does not close fd. */
void		 loop_del(struct loop_watch *);

/*
 * Register a timer hook: before each wait the loop asks next(arg) for the
 * monotonic time (mono_ms) at which it wants to run, or -1 for never, and
 * after each wait it calls run(arg), which does whatever is due.
 */
void		 loop_hook(int64_t (*next)(void *), void (*run)(void *),
		    void *arg);

void		 loop_init(void);
/* Run until loop_stop; then return.  Hooks run after every wake-up. */
void		 loop_run(void);
void		 loop_stop(void);
/* Share of the last few hundred milliseconds the loop spent working
 * rather than waiting, from 0 to 1: near 1, ctrd is the bottleneck. */
double		 loop_load(void);
/* Release the loop's resources after loop_run has returned. */
void		 loop_free(void);

#endif
