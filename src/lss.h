/* LiveSplit splits files (.lss): what a replay needs from them. */
#ifndef CTRD_LSS_H
#define CTRD_LSS_H

#include <stddef.h>
#include <stdint.h>

/* Times are .NET ticks (100 ns); LSS_NONE where the file has no time. */
#define LSS_NONE	INT64_MIN
#define LSS_TICKS_MS	10000

/* One attempt's time for one segment (<SegmentHistory><Time id="N">).
 * An entry with no time is a split the attempt skipped. */
struct lss_time {
	long		 id;
	int64_t		 real;
	int64_t		 game;
};

struct lss_segment {
	char		*name;		/* as in the file, blanks trimmed */
	int64_t		 pb_real;	/* "Personal Best" split time */
	int64_t		 pb_game;
	int64_t		 best_real;	/* BestSegmentTime */
	int64_t		 best_game;
	struct lss_time	*history;
	size_t		 nhistory;
};

/* <AttemptHistory><Attempt id="N">: a final time, or none for a reset. */
struct lss_attempt {
	long		 id;
	int64_t		 real;
	int64_t		 game;
};

struct lss {
	char			*version;	/* <Run version="1.7.0"> */
	char			*game;
	char			*category;
	int64_t			 offset;	/* the timer's start value */
	long			 attempt_count;	/* <AttemptCount> as written */
	struct lss_attempt	*attempts;
	size_t			 nattempts;
	struct lss_segment	*segments;
	size_t			 nsegments;
};

/*
 * Read a splits file with libxml2: UTF-8 with or without a byte-order
 * mark, any line endings, format versions 1.6 and later.  Elements the
 * replay does not use are ignored; a time that is not TimeSpan text is an
 * error.  Returns a new struct lss, owned by the caller (lss_free), or NULL
 * after printing "path:line: problem" lines on stderr.
 */
struct lss	*lss_load(const char *path);
void		 lss_free(struct lss *);

/* The history entry of attempt id for seg, or NULL if it has none. */
const struct lss_time *lss_history(const struct lss_segment *seg, long id);

/* The final-time record of attempt id, or NULL if AttemptHistory lacks
 * it (AttemptCount and the history need not agree). */
const struct lss_attempt *lss_attempt(const struct lss *, long id);

/*
 * Parse .NET TimeSpan text, "[-][d.]hh:mm:ss[.fffffff]", into ticks.
 * Returns 0, or -1 if s is not exactly such text.
 */
int		 lss_parse_timespan(const char *s, int64_t *ticks);

/*
 * Write ticks as .NET's TimeSpan.ToString() does: "-00:00:01.2500000",
 * days as "1.02:03:04", no fraction when it is zero.  buf needs 32 bytes.
 */
void		 lss_fmt_timespan(char *buf, size_t len, int64_t ticks);

/* Milliseconds in ticks, truncated toward zero, as ctrd truncates. */
int64_t		 lss_ticks_ms(int64_t ticks);

#endif
