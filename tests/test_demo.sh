#!/bin/sh
# make demo (conf/demo.sh) on ports picked here: it posts three events that
# reach its sink, Ctrl-C ends it with 0 and leaves nothing running, and a
# port taken by another server makes it fail, posting nothing there.  TAP.
set -u
ctrd=${CTRD:-./ctrd}
ctrctl=${CTRCTL:-./ctrctl}
src=${CTR_SRCDIR:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ctrd-demo-test.XXXXXX")
n=0
failed=0
demo_sh="sh"
demo_pid=
groups=
holder_pid=

ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $demo_sh: $2"
	else
		failed=$((failed + 1))
		echo "not ok $n - $demo_sh: $2"
		[ -z "${3-}" ] || printf '%s\n' "$3" | sed 's/^/#   /'
	fi
}

# Only what this script started: each demo's process group (whatever a
# demo left running is still in it), and the holder.
finish() {
	for g in $groups; do
		kill -KILL "-$g" 2>/dev/null
	done
	[ -z "$holder_pid" ] || kill "$holder_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap finish EXIT

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# A server that holds port $1, answers 200 to everything, and notes each
# POST in $tmp/held-posts: what a demo must never mistake for its ctrd.
# Its files come in the environment, so that leftovers does not see it.
hold_port() {
	rm -f "$tmp/held-posts" "$tmp/held-up"
	HELD_POSTS=$tmp/held-posts HELD_UP=$tmp/held-up python3 -c '
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def answer(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def do_GET(self):
        self.answer()
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(os.environ["HELD_POSTS"], "a") as f:
            f.write("POST %s\n" % self.path)
        self.answer()
s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
open(os.environ["HELD_UP"], "w").close()
s.serve_forever()' "$1" &
	holder_pid=$!
	until_true 50 test -e "$tmp/held-up"
}

unhold() {
	kill "$holder_pid"
	wait "$holder_pid" 2>/dev/null
	holder_pid=
}

# Run "$@" every 0.1 s until it succeeds, at most $1 times.
until_true() {
	tries=$1
	shift
	while ! "$@"; do
		tries=$((tries - 1))
		[ $tries -gt 0 ] || return 1
		sleep 0.1
	done
}

# The demo in a process group of its own, with SIGINT at its default as
# under make in a terminal (a background job would start with it ignored,
# and a shell cannot trap a signal ignored at entry).  setsid execs, so
# $demo_pid is the demo's shell and the group's id.
start_demo() {
	CTRD_DEMO_PORT=$1 CTRD_DEMO_SINK_PORT=$2 setsid env \
	    --default-signal=INT "$demo_sh" "$src/conf/demo.sh" "$tmp" \
	    "$src" >"$tmp/out" 2>&1 &
	demo_pid=$!
	groups="$groups $demo_pid"
}

# Gone or a zombie; the shell may not have reaped it yet.
demo_ended() {
	st=$(ps -o stat= -p "$demo_pid")
	[ -z "$st" ] || [ "${st#Z}" != "$st" ]
}

# Wait up to $1 tenths of a second for the demo to end; rc is its exit
# status, or 255 if it is still going (finish kills it then).
demo_end() {
	rc=255
	if until_true "$1" demo_ended; then
		wait "$demo_pid"
		rc=$?
		demo_pid=
	fi
}

# Three deliveries that the sink checked, and the closing message.
delivered() {
	[ "$(grep -o 'signature=ok' "$tmp/out" | wc -l)" -ge 3 ] &&
	    grep -q 'Stop: Ctrl-C' "$tmp/out"
}

# What the demo started and left running: every process it runs names
# $tmp (the binaries are linked there, the logs are under it).
leftovers() {
	pgrep -af -- "$tmp/"
}

if ! env --default-signal=INT true 2>/dev/null || ! command -v setsid \
    >/dev/null || ! command -v python3 >/dev/null; then
	echo "1..0 # SKIP needs env --default-signal, setsid and python3"
	exit 0
fi
ln -s "$(cd "$(dirname "$ctrd")" && pwd)/$(basename "$ctrd")" "$tmp/ctrd"
ln -s "$(cd "$(dirname "$ctrctl")" && pwd)/$(basename "$ctrctl")" \
    "$tmp/ctrctl"
port=$(free_port)
sink_port=$(free_port)
while [ "$sink_port" = "$port" ]; do
	sink_port=$(free_port)
done

# Every case, with the demo run by the shell $demo_sh.
cases() {
	# A run, then Ctrl-C.
	start_demo "$port" "$sink_port"
	until_true 100 delivered
	ok $? "the demo posts three events and its sink checks all three" \
	    "$(cat "$tmp/out")"
	[ "$(grep -o '"accepted":1,' "$tmp/out" | wc -l)" -eq 3 ]
	ok $? "ctrd accepts each of the three posts"
	grep -q "127.0.0.1:$port (CTRD_DEMO_PORT)" "$tmp/out" &&
	    grep -q "127.0.0.1:$sink_port (CTRD_DEMO_SINK_PORT)" "$tmp/out"
	ok $? "the closing message names both ports and their variables"
	[ "$(ps -o pgid= -p "$demo_pid" | tr -d ' ')" = "$demo_pid" ]
	ok $? "the demo runs in a process group of its own, as under make"
	kill -INT "-$demo_pid"
	demo_end 100
	[ "$rc" = 0 ]
	ok $? "Ctrl-C ends the demo with exit 0" \
	    "exit $rc; $(tail -n 5 "$tmp/out")"
	left=$(leftovers)
	[ -z "$left" ]
	ok $? "after Ctrl-C nothing that it started runs" "$left"
	! curl -s -o /dev/null "http://127.0.0.1:$port/healthz" &&
	    ! curl -s -o /dev/null "http://127.0.0.1:$sink_port/"
	ok $? "after Ctrl-C both ports are free"

	# ctrd's port taken by a server that answers 200.
	hold_port "$port"
	start_demo "$port" "$sink_port"
	demo_end 100
	[ "$rc" = 1 ]
	ok $? "with its port taken ctrd cannot start; the demo exits 1" \
	    "exit $rc; $(cat "$tmp/out")"
	grep -q "is 127.0.0.1:$port in use? set CTRD_DEMO_PORT" "$tmp/out"
	ok $? "it names the port and CTRD_DEMO_PORT" "$(cat "$tmp/out")"
	[ ! -e "$tmp/held-posts" ]
	ok $? "nothing is posted to the server that holds the port" \
	    "$(cat "$tmp/held-posts" 2>/dev/null)"
	left=$(leftovers)
	[ -z "$left" ]
	ok $? "the sink that it had started is stopped" "$left"
	unhold

	# The sink's port taken.
	hold_port "$sink_port"
	start_demo "$port" "$sink_port"
	demo_end 100
	[ "$rc" = 1 ] && grep -q \
	    "is 127.0.0.1:$sink_port in use? set CTRD_DEMO_SINK_PORT" \
	    "$tmp/out"
	ok $? "with the sink's port taken it exits 1 and names the variable" \
	    "exit $rc; $(cat "$tmp/out")"
	left=$(leftovers)
	[ -z "$left" ]
	ok $? "and leaves nothing running" "$left"
	unhold

	# SIGTERM, as make sends when it is killed.
	start_demo "$port" "$sink_port"
	until_true 100 delivered
	kill -TERM "-$demo_pid"
	demo_end 100
	left=$(leftovers)
	[ "$rc" = 143 ] && [ -z "$left" ]
	ok $? "SIGTERM ends it with 143 and stops what it started" \
	    "exit $rc; $left"
}

# make demo runs the script with configure's shell, often bash; sh is
# its own #! line.
for demo_sh in sh bash; do
	if command -v "$demo_sh" >/dev/null; then
		cases
	fi
done
echo "1..$n"
[ $failed -eq 0 ]
