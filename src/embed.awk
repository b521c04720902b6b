# Write a text file as a C array, so that ctrd carries its web page
# without any tool beyond awk.  Run under LC_ALL=C so that every byte is
# one character:
#	LC_ALL=C awk -v name=page_html -v from=src/page.html \
#	    -f src/embed.awk src/page.html >page_html.c
# The literals stay within 79 columns because the generated file may
# land in src/, where the style check reads every .c file.  Every byte
# comes through unchanged, except that a last line without a newline
# gets one.

BEGIN {
	for (i = 1; i < 256; i++)
		code[sprintf("%c", i)] = i
	print "/* " name ", made from " from " by embed.awk: do not edit. */"
	print "#include \"autoconf.h\""
	print ""
	print "#include <stddef.h>"
	print ""
	print "#include \"page.h\""
	print ""
	print "const char " name "[] ="
}

# One byte as it may appear inside a C string literal.  "?" is escaped
# because -std=c17 turns "??x" sequences into trigraphs.
function esc(c) {
	if (c == "\\")
		return "\\\\"
	if (c == "\"")
		return "\\\""
	if (c == "?")
		return "\\?"
	if (c == "\t")
		return "\\t"
	if (code[c] < 32 || code[c] > 126)
		return sprintf("\\%03o", code[c])
	return c
}

# Each line, with its newline, as literals of at most 68 characters.
{
	out = ""
	n = length($0)
	for (i = 1; i <= n + 1; i++) {
		e = i <= n ? esc(substr($0, i, 1)) : "\\n"
		if (length(out) + length(e) > 68) {
			print "\t\"" out "\""
			out = ""
		}
		out = out e
	}
	print "\t\"" out "\""
}

END {
	if (NR == 0)
		print "\t\"\""
	print "\t;"
	print "const size_t " name "_len = sizeof(" name ") - 1;"
}
