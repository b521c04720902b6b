/* mhd204: the least a libmicrohttpd server can do with ctrd's requests.
 *
 * Usage: mhd204 PORTFILE
 *
 * Listens on 127.0.0.1, on a port the system picks (written to PORTFILE),
 * with libmicrohttpd in the mode ctrd uses it (one thread, epoll), reads
 * each POST's body and answers 204, until SIGTERM.  bench/run measures it
 * beside nginx: what no ctrd built on this library can exceed, so that
 * ctrd's own cost is told apart from the library's. */
#define _POSIX_C_SOURCE 200809L

#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <signal.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common.h"

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **state)
{
	static int started;
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)cls; (void)url; (void)method; (void)version; (void)upload;
	if (*state == NULL) {		/* headers only, so far */
		*state = &started;
		return MHD_YES;
	}
	if (*upload_size > 0) {		/* a piece of the body: consumed */
		*upload_size = 0;
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, 204, r);
	MHD_destroy_response(r);
	return ret;
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct MHD_Daemon *d;
	FILE *f;
	int fd, one = 1;

	progname = "mhd204";
	if (argc != 2) {
		fprintf(stderr, "usage: mhd204 PORTFILE\n");
		return 2;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 1024) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		die("listen");
	d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL,
	    on_request, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, 1024, MHD_OPTION_END);
	if (d == NULL)
		die("MHD_start_daemon");
	if ((f = fopen(argv[1], "w")) == NULL)
		die(argv[1]);
	fprintf(f, "%d\n", ntohs(sin.sin_port));
	fclose(f);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	while (!stop)
		pause();
	MHD_stop_daemon(d);
	return 0;
}
