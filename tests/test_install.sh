# make install into a scratch DESTDIR: everything lands, the unit names
# the installed paths, and a second install keeps the operator's
# ctr.conf (it used to overwrite it).  TAP.
set -u
b=${CTR_BUILDDIR:-.}
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
n=0 bad=0
check() {	# check NAME COMMAND...
	name=$1; shift
	n=$((n + 1))
	if "$@" >/dev/null 2>&1; then
		echo "ok $n - $name"
	else
		bad=$((bad + 1)); echo "not ok $n - $name"
	fi
}
inst() { make -s -C "$b" install DESTDIR="$d" >/dev/null 2>&1; }

check "make install into a DESTDIR succeeds" inst
sbin=$(find "$d" -path '*/sbin/ctrd' | head -n 1)
conf=$(find "$d" -path '*/ctrd/ctr.conf' | head -n 1)
unit=$(find "$d" -name ctrd.service | head -n 1)
check "ctrd, ctrctl, the unit and the man pages are installed" \
    test -x "$sbin" -a -n "$(find "$d" -path '*/bin/ctrctl')" \
    -a -f "$unit" -a -n "$(find "$d" -name ctr.conf.5)"
check "the unit's ExecStart names the installed ctrd" \
    grep -q "^ExecStart=${sbin#$d}" "$unit"
check "ctr.conf and ctr.conf.example are installed" \
    test -f "$conf" -a -f "$conf.example"
echo "# the operator's own line" >>"$conf"
check "a second make install succeeds" inst
check "a second make install keeps the operator's ctr.conf" \
    grep -q "the operator's own line" "$conf"
make -s -C "$b" uninstall DESTDIR="$d" >/dev/null 2>&1
check "make uninstall leaves an edited ctr.conf in place" test -f "$conf"
check "make uninstall removes the example and the binaries" \
    test ! -e "$conf.example" -a ! -e "$sbin"
echo "1..$n"
[ $bad -eq 0 ]
