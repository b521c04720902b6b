# The manual pages are clean under mandoc -Tlint.  TAP: one check a page;
# skipped, and said so, where mandoc is not installed.
src=${CTR_SRCDIR:-.}
mandoc=${MANDOC:-mandoc}
n=0 bad=0
for f in "$src"/man/*.[0-9]; do
	n=$((n + 1))
	if [ "$mandoc" = no ] || ! command -v "$mandoc" >/dev/null 2>&1; then
		echo "ok $n - ${f#$src/} # SKIP mandoc is not installed"
		continue
	fi
	out=$("$mandoc" -Tlint -Wwarning "$f" 2>&1)
	if [ -z "$out" ]; then
		echo "ok $n - ${f#$src/}: mandoc -Tlint is clean"
	else
		bad=$((bad + 1))
		echo "not ok $n - ${f#$src/}: mandoc -Tlint is clean"
		printf '%s\n' "$out" | head -n 20 | sed 's/^/#   /'
	fi
done
echo "1..$n"
[ $bad -eq 0 ]
