/* Event patterns in the EventBridge syntax: compiled once, matched fast. */
#ifndef CTRD_PATTERN_H
#define CTRD_PATTERN_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct pattern;

/*
 * Compile a pattern given as a JSON object.  On error returns NULL, writes
 * a message to err (like "prefix: expects a string") and, when bad is not
 * NULL, points *bad at the offending JSON item so the caller can report
 * its position.  The result does not refer to json afterwards.
 */
struct pattern	*pattern_compile(const cJSON *json, const cJSON **bad,
		    char *err, size_t errlen);

/* Returns 1 if the event (an envelope object) matches, else 0. */
int		 pattern_match(const struct pattern *, const cJSON *event);

void		 pattern_free(struct pattern *);

#endif
