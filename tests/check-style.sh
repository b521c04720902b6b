# Every C source line fits in 79 columns (tabs at 8) and has no trailing
# white space.  TAP: one check per file.
src=${CTR_SRCDIR:-.}
n=0 bad=0
for f in "$src"/src/*.c "$src"/src/*.h "$src"/tests/*.c "$src"/tests/*.h \
    "$src"/bench/*.c "$src"/bench/*.h; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	long=$(expand "$f" | awk 'length > 79 { print FILENAME ":" NR }' \
	    FILENAME="${f#$src/}" | head -n 5)
	trail=$(grep -n '[[:space:]]$' "$f" | head -n 5)
	if [ -z "$long" ] && [ -z "$trail" ]; then
		echo "ok $n - ${f#$src/}: lines within 79 columns, no trailing space"
	else
		bad=$((bad + 1))
		echo "not ok $n - ${f#$src/}: lines within 79 columns, no trailing space"
		printf '%s\n' $long | sed 's/^/#   over 79: /'
		[ -n "$trail" ] && printf '%s\n' "$trail" | sed 's/^/#   trailing: /'
	fi
done
echo "1..$n"
[ $bad -eq 0 ]
