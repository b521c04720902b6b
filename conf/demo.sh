#!/bin/sh
# make demo: run ctrd in the foreground on loopback with the demo config
# and a local sink, post a few events, and print the curl line to post
# more.  Ctrl-C stops everything this script started.
set -eu
builddir=${1:-.}
srcdir=${2:-.}
port=${CTRD_DEMO_PORT:-8080}
sink_port=${CTRD_DEMO_SINK_PORT:-9081}
dir=$builddir/demo-run
ctrctl=$builddir/ctrctl
ctrd=$builddir/ctrd

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

"$ctrctl" sink --listen "127.0.0.1:$sink_port" --secret "$whsec" &
sink_pid=$!
ctrd_pid=
cleanup() {
	[ -n "$ctrd_pid" ] && kill "$ctrd_pid" 2>/dev/null
	kill "$sink_pid" 2>/dev/null
	wait 2>/dev/null
}
trap cleanup EXIT INT TERM

"$ctrd" -f -c "$dir/ctr.conf" &
ctrd_pid=$!
i=0
until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null; do
	i=$((i + 1))
	[ $i -lt 50 ] || { echo "ctrd did not start" >&2; exit 1; }
	sleep 0.1
done

post() {
	curl -s -H "Authorization: Bearer $key" \
	    -H 'Content-Type: application/json' \
	    --data "$1" "http://127.0.0.1:$port/v1/events"
	echo
}
post '{"type":"speedrun.start","source":"livesplit","detail":{"game":"Super Mario 64","category":"16 Star"}}'
post '{"type":"speedrun.split","source":"livesplit","detail":{"game":"Super Mario 64","category":"16 Star","split":"Bob-omb Battlefield","pace":"-0:00:01.250"}}'
post '{"type":"speedrun.split","source":"livesplit","detail":{"game":"Super Mario 64","category":"16 Star","split":"Whomp'"'"'s Fortress","pace":"+0:00:00.480"}}'

cat <<MSG

ctrd is serving on http://127.0.0.1:$port; each delivery to the sink is
printed above as one "event=..." line.  Post another event with:

  curl -H "Authorization: Bearer \$(cat $dir/key)" \\
       -H 'Content-Type: application/json' \\
       --data '{"type":"speedrun.split","source":"livesplit","detail":{"game":"Super Mario 64","category":"16 Star","split":"BitDW","pace":"-0:00:02.000"}}' \\
       http://127.0.0.1:$port/v1/events

Metrics: curl http://127.0.0.1:$port/metrics    Stop: Ctrl-C
MSG
wait "$ctrd_pid"
