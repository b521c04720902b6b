#!/bin/sh
# make demo: run ctrd in the foreground on loopback with the demo config
# and a local sink, post a few events, and print the curl line to post
# more.  Ctrl-C stops everything this script started and exits 0.
# CTRD_DEMO_PORT and CTRD_DEMO_SINK_PORT choose the two ports.
set -eu
builddir=${1:-.}
srcdir=${2:-.}
port=${CTRD_DEMO_PORT:-8080}
sink_port=${CTRD_DEMO_SINK_PORT:-9081}
dir=$builddir/demo-run
ctrctl=$builddir/ctrctl
ctrd=$builddir/ctrd

# Set before any trap can fire: cleanup reads them.
sink_pid=
ctrd_pid=

# Every step on its own and none allowed to fail: under set -e a kill of
# a process that is already gone (the sink stops on Ctrl-C by itself)
# would end the cleanup there and leave the rest running.  ctrd goes
# first, with SIGTERM, so that it can drain its deliveries to the sink;
# a second Ctrl-C while it drains ends the script at once.
cleanup() {
	set +e
	trap - INT TERM
	if [ -n "$ctrd_pid" ]; then
		kill "$ctrd_pid" 2>/dev/null
		wait "$ctrd_pid" 2>/dev/null
	fi
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
	wait 2>/dev/null
	ctrd_pid=
	sink_pid=
}
trap cleanup EXIT
trap 'exit 0' INT
trap 'exit 143' TERM

die() {
	echo "demo: $*" >&2
	exit 1
}

# Run a program in the background with its standard error shown and
# copied to log, so that the script can wait for the program's own
# "listening on" line; $! is the program's pid, not tee's.  tee ends when
# the program closes the pipe.
spawn() {
	log=$1
	shift
	rm -f "$log" "$log.pipe"
	mkfifo "$log.pipe"
	tee "$log" <"$log.pipe" >&2 &
	"$@" 2>"$log.pipe" &
}

# Wait for pid to log the line that says it listens.  A health check on
# the port would not do: with the port taken, it answers for whatever
# server holds the port while ours has exited.
await() {
	pid=$1 log=$2 what=$3 var=$4 p=$5
	i=0
	until grep -q "listening on" "$log" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null ||
		    die "$what exited at start-up (is 127.0.0.1:$p in use?" \
		    "set $var to another port)"
		i=$((i + 1))
		[ $i -lt 100 ] || die "$what did not start within 10 s"
		sleep 0.1
	done
}

rm -rf "$dir"
mkdir -p "$dir"
"$ctrctl" secret-gen "$dir/secret" >/dev/null
out=$("$ctrctl" keygen -s "$dir/secret" demo-runner)
key=$(printf '%s\n' "$out" | grep '^ctr_')
hash=$(printf '%s\n' "$out" | sed -n 's/.*key_hash: //p')
whsec="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
sed -e "s|@PORT@|$port|" -e "s|@SINK_PORT@|$sink_port|" \
    -e "s|@DIR@|$dir|g" -e "s|@KEY_HASH@|$hash|" -e "s|@WHSEC@|$whsec|" \
    "$srcdir/conf/demo.conf" >"$dir/ctr.conf"
printf '%s\n' "$key" >"$dir/key"
chmod 600 "$dir/key"

spawn "$dir/sink.log" "$ctrctl" sink --listen "127.0.0.1:$sink_port" \
    --secret "$whsec"
sink_pid=$!
await "$sink_pid" "$dir/sink.log" "the sink" CTRD_DEMO_SINK_PORT \
    "$sink_port"
spawn "$dir/ctrd.log" "$ctrd" -f -c "$dir/ctr.conf"
ctrd_pid=$!
await "$ctrd_pid" "$dir/ctrd.log" ctrd CTRD_DEMO_PORT "$port"

post() {
	curl -s -w '\n' -H "Authorization: Bearer $key" \
	    -H 'Content-Type: application/json' \
	    --data "$1" "http://127.0.0.1:$port/v1/events"
}
post '{"type":"speedrun.start","source":"livesplit","detail":{"game":"Super Mario 64","category":"16 Star"}}'
post '{"type":"speedrun.split","source":"livesplit","detail":{"game":"Super Mario 64","category":"16 Star","split":"Bob-omb Battlefield","pace":"-0:00:01.250"}}'
post '{"type":"speedrun.split","source":"livesplit","detail":{"game":"Super Mario 64","category":"16 Star","split":"Whomp'"'"'s Fortress","pace":"+0:00:00.480"}}'

cat <<MSG

ctrd is serving on http://127.0.0.1:$port (CTRD_DEMO_PORT) and delivers
to the sink on 127.0.0.1:$sink_port (CTRD_DEMO_SINK_PORT); each delivery
is printed above as one "event=..." line.  Post another event with:

  curl -H "Authorization: Bearer \$(cat $dir/key)" \\
       -H 'Content-Type: application/json' \\
       --data '{"type":"speedrun.split","source":"livesplit","detail":{"game":"Super Mario 64","category":"16 Star","split":"BitDW","pace":"-0:00:02.000"}}' \\
       http://127.0.0.1:$port/v1/events

Metrics: curl http://127.0.0.1:$port/metrics    Stop: Ctrl-C
Other ports: CTRD_DEMO_PORT=8180 CTRD_DEMO_SINK_PORT=9181 make demo
MSG
# Ctrl-C reaches ctrd and the sink too, and they stop; the INT trap makes
# it a clean end.  Anything else that ends ctrd is a failure.
if wait "$ctrd_pid"; then
	st=0
else
	st=$?
fi
ctrd_pid=
die "ctrd exited by itself (status $st); its log is $dir/ctrd.log"
