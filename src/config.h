/* ctr.conf: the daemon's whole configuration, parsed into one immutable
 * struct config that is built whole and swapped whole on reload. */
#ifndef CTRD_CONFIG_H
#define CTRD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define KEY_HASH_LEN		32	/* keyed BLAKE2b-256 */
#define SERVER_SECRET_LEN	32
#define PRODUCER_KEYS_MAX	4	/* key_hash entries, for rotation */

struct pattern;

struct producer_conf {
	char		*name;
	unsigned char	 key_hash[PRODUCER_KEYS_MAX][KEY_HASH_LEN];
	size_t		 nkeys;
	char		**sources;	/* globs; nsources == 0 allows any */
	size_t		 nsources;
	char		**types;	/* globs; ntypes == 0 allows any */
	size_t		 ntypes;
	unsigned	 rate_limit;	/* events a second; 0: none */
	unsigned	 rate_burst;	/* bucket size; 0: 2 * rate_limit */
};

enum consumer_kind {
	CONSUMER_WEBHOOK,
	CONSUMER_DISCORD,
};

struct header_conf {
	char	*name;
	char	*value;
};

struct consumer_conf {
	char			*name;
	enum consumer_kind	 kind;
	char			*url;
	struct header_conf	*headers;
	size_t			 nheaders;
	unsigned char		*secret;	/* whsec_ decoded, or NULL */
	size_t			 secret_len;
	unsigned		 budget_ms;
	unsigned		 max_in_flight;
	unsigned		 circuit_breaker; /* 0: never opens */
	unsigned		 queue_max;
	struct pattern		*pattern;	/* NULL matches every event */
	char			**types;	/* globs; ntypes == 0: any */
	size_t			 ntypes;
	/* kind: discord only; NULL when not set */
	char			*username;
	char			*avatar_url;
	char			*thread_id;
};

enum stream_access {
	STREAM_PUBLIC,		/* anyone may subscribe */
	STREAM_TOKEN,		/* a token from tokens is required */
};

/* A token that may open the stream, kept only as a keyed hash. */
struct stream_token {
	char		*name;
	unsigned char	 hash[KEY_HASH_LEN];
	char		**producers;	/* globs; nproducers == 0: any */
	size_t		 nproducers;
};

/* The stream section: the live Server-Sent Events feed. */
struct stream_conf {
	enum stream_access	 access;
	struct stream_token	*tokens;
	size_t			 ntokens;
	char			**cors_origins;	/* "*", or origins */
	size_t			 ncors_origins;
	unsigned		 ring_events;	/* kept for resuming */
	unsigned		 ring_age_s;
	unsigned		 keepalive_s;
	unsigned		 retry_ms;
	unsigned		 max_subscribers;
	unsigned		 max_subscribers_per_ip; /* 0: no limit */
	size_t			 backlog_max;	/* unsent bytes a subscriber */
};

struct config {
	char			*path;
	uint64_t		 generation;	/* counts loads, from 1 */
	char			*listen_host;	/* numeric address */
	unsigned		 listen_port;	/* 0: pick one */
	char			*secret_file;
	unsigned char		 server_secret[SERVER_SECRET_LEN];
	char			*dead_letter_file;
	size_t			 body_max;
	size_t			 entry_max;
	unsigned		 json_depth_max;
	unsigned		 queue_max;	/* waiting, all consumers */
	unsigned		 overload_busy_pct;	/* 100: never refuse */
	unsigned		 max_connections;
	unsigned		 max_connections_per_ip;
	unsigned		 connection_timeout_s;
	unsigned		 drain_ms;	/* SIGTERM: longest wait */
	struct producer_conf	*producers;
	size_t			 nproducers;
	struct consumer_conf	*consumers;
	size_t			 nconsumers;
	struct stream_conf	 stream;
};

/*
 * One problem found in a configuration file; line and col count from 1,
 * and are both 0 when the problem is with the file as a whole (cannot be
 * opened, writable by others).
 */
struct config_error {
	char	*file;
	int	 line;
	int	 col;
	char	*msg;		/* "key: problem" */
};

struct config_errors {
	struct config_error	*v;
	size_t			 n;
};

/*
 * Parse the file at path.  Returns a new config, or NULL with every problem
 * found appended to errs (the parser keeps going after an error so that one
 * run reports all of them).  The caller owns the result and frees it with
 * config_free, and frees errs with config_errors_free.
 */
struct config	*config_load(const char *path, struct config_errors *errs);
void		 config_free(struct config *);
void		 config_errors_free(struct config_errors *);
/* Write each error as "file:line:col: key: problem" through log_warnx
 * ("file: problem" when line is 0). */
void		 config_errors_log(const struct config_errors *);

#endif
