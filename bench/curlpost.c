/* curlpost: the least libcurl can spend on ctrd's deliveries.
 *
 * Usage: curlpost -u URL [-c CONNS] [-d SECONDS]
 *
 * POSTs an envelope-sized body with ctrd's headers to URL over CONNS
 * keep-alive connections (default 16, ctrd's max_in_flight) for SECONDS
 * (default 2), through one libcurl multi handle as ctrd does, with every
 * easy handle set up once and only re-added between transfers, then
 * prints "transfers=N seconds=S cpu_s=C".  bench/run measures it beside
 * ctrd: what a delivery costs in libcurl alone on this machine, which no
 * fan-out built on it can beat. */
#define _POSIX_C_SOURCE 200809L

#include <unistd.h>

#include <curl/curl.h>

#include "common.h"

#define CONNS_MAX	256

static const char body[] =
    "{\"id\":\"01KBHQ3V8Y1ZQ5W4X2N6M7P9RT\",\"seq\":1,"
    "\"type\":\"speedrun.split\",\"source\":\"livesplit\","
    "\"producer\":\"bench\",\"time\":\"2026-12-03T21:48:17.123Z\","
    "\"detail\":{\"game\":\"Super Mario 64\",\"category\":\"16 Star\","
    "\"split\":\"Bob-omb Battlefield\",\"split_index\":1,"
    "\"pace\":\"-0:00:05.000\",\"pace_ms\":-5000,"
    "\"segment_time\":\"0:01:02.345\",\"segment_time_ms\":62345,"
    "\"attempt\":1234,\"sent_ns\":\"0000000000000000000\"}}";

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p; (void)arg;
	return size * n;
}

int
main(int argc, char *argv[])
{
	CURL *easy[CONNS_MAX];
	struct curl_slist *h = NULL;
	const char *url = NULL;
	CURLM *multi;
	CURLMsg *msg;
	CURL *e;
	int64_t end;
	long done = 0;
	double c0, t0;
	int conns = 16, secs = 2, ch, i, running, left;

	progname = "curlpost";
	while ((ch = getopt(argc, argv, "c:d:u:")) != -1) {
		switch (ch) {
		case 'c':
			conns = atoi(optarg);
			break;
		case 'd':
			secs = atoi(optarg);
			break;
		case 'u':
			url = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (url == NULL || conns < 1 || conns > CONNS_MAX || secs < 1)
		goto usage;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	h = curl_slist_append(h, "User-Agent: ctrd/0.1.0");
	h = curl_slist_append(h, "webhook-id: 01KBHQ3V8Y1ZQ5W4X2N6M7P9RT");
	h = curl_slist_append(h, "webhook-timestamp: 1764798497");
	h = curl_slist_append(h, "webhook-signature: v1,"
	    "K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=");
	if ((multi = curl_multi_init()) == NULL)
		die("curl_multi_init");
	for (i = 0; i < conns; i++) {
		if ((easy[i] = curl_easy_init()) == NULL)
			die("curl_easy_init");
		curl_easy_setopt(easy[i], CURLOPT_URL, url);
		curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(easy[i], CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(sizeof(body) - 1));
		curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
		curl_multi_add_handle(multi, easy[i]);
	}
	c0 = cpu_seconds();
	t0 = clock_ns(CLOCK_MONOTONIC) / 1e9;
	end = clock_ns(CLOCK_MONOTONIC) + (int64_t)secs * 1000000000;
	for (;;) {
		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			if (msg->data.result != CURLE_OK) {
				fprintf(stderr, "curlpost: %s\n",
				    curl_easy_strerror(msg->data.result));
				return 1;
			}
			done++;
			/* msg does not survive the removal */
			e = msg->easy_handle;
			curl_multi_remove_handle(multi, e);
			if (clock_ns(CLOCK_MONOTONIC) < end)
				curl_multi_add_handle(multi, e);
		}
		if (running == 0 && clock_ns(CLOCK_MONOTONIC) >= end)
			break;
		curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	printf("transfers=%ld seconds=%.3f cpu_s=%.3f\n", done,
	    clock_ns(CLOCK_MONOTONIC) / 1e9 - t0, cpu_seconds() - c0);
	for (i = 0; i < conns; i++) {
		curl_multi_remove_handle(multi, easy[i]);
		curl_easy_cleanup(easy[i]);
	}
	curl_multi_cleanup(multi);
	curl_slist_free_all(h);
	curl_global_cleanup();
	return 0;

usage:
	fprintf(stderr, "usage: curlpost -u URL [-c CONNS] [-d SECONDS]\n");
	return 2;
}
