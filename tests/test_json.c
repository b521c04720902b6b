/* Unit tests for json.c: what the strict parser accepts, and how it says
 * what it refuses. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "util.h"
#include "tap.h"

#define DEPTH	32
#define ENTRY	65536

static struct json_error jerr;

static cJSON *
parse_n(const char *s, size_t len, unsigned depth, size_t entry_max)
{
	memset(&jerr, 0, sizeof(jerr));
	return json_parse_strict(s, len, depth, entry_max, &jerr);
}

/* Accepted, and cJSON's compact form of it is want. */
static void
good(const char *doc, const char *want, const char *name)
{
	cJSON *j;
	char *out = NULL;

	j = parse_n(doc, strlen(doc), DEPTH, ENTRY);
	if (j != NULL)
		out = cJSON_PrintUnformatted(j);
	is_str(out, want, "accepts %s", name);
	if (j == NULL)
		printf("#   error: %s\n", jerr.message);
	free(out);
	cJSON_Delete(j);
}

/* Refused as invalid_json with exactly the message want. */
static void
bad_n(const char *doc, size_t len, unsigned depth, const char *want,
    const char *name)
{
	cJSON *j;

	j = parse_n(doc, len, depth, ENTRY);
	ok(j == NULL && jerr.code != NULL &&
	    strcmp(jerr.code, "invalid_json") == 0 && jerr.status == 400,
	    "refuses %s as invalid_json, 400", name);
	is_str(j == NULL ? jerr.message : "(accepted)", want,
	    "message for %s says where", name);
	cJSON_Delete(j);
}

static void
bad(const char *doc, const char *want, const char *name)
{
	bad_n(doc, strlen(doc), DEPTH, want, name);
}

/* "[[[...1...]]]" nested n deep. */
static char *
nested(size_t n)
{
	char *s = xmalloc(2 * n + 2);
	size_t i;

	for (i = 0; i < n; i++) {
		s[i] = '[';
		s[n + 1 + i] = ']';
	}
	s[n] = '1';
	s[2 * n + 1] = '\0';
	return s;
}

static void
test_valid(void)
{
	cJSON *j;
	const char *doc;

	good("{\"a\":1}", "{\"a\":1}", "a small object");
	good(" \t\r\n[1, 2 ,\n3]\r\n", "[1,2,3]",
	    "the four white space characters");
	good("\"text\"", "\"text\"", "a string at top level");
	good("-0", "-0", "minus zero");
	good("0", "0", "zero");
	good("[1.5,-2e3,3E+2,4e-1,0.25]", "[1.5,-2000,300,0.4,0.25]",
	    "fractions and exponents");
	good("[true,false,null]", "[true,false,null]", "the literals");
	good("{}", "{}", "an empty object");
	good("[]", "[]", "an empty array");
	good("{\"a\":1,\"A\":2,\"ab\":3,\"b\":{\"a\":4}}",
	    "{\"a\":1,\"A\":2,\"ab\":3,\"b\":{\"a\":4}}",
	    "keys differing in case, length, or object");
	good("[{\"a\":1},{\"a\":2}]", "[{\"a\":1},{\"a\":2}]",
	    "the same key in sibling objects");
	good("{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":2}}",
	    "{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":2}}",
	    "the same key at different depths");
	good("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\\"\\\\/\\b\\f\\n\\r\\t\"",
	    "every short escape");
	good("\"\x7f\"", "\"\x7f\"", "DEL, which JSON does not escape");

	doc = "\"Pok\\u00e9mon \\ud83d\\ude00 \xe6\x97\xa5\xe6\x9c\xac\"";
	j = parse_n(doc, strlen(doc), DEPTH, ENTRY);
	ok(j != NULL && cJSON_IsString(j) && strcmp(j->valuestring,
	    "Pok\xc3\xa9mon \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac") == 0,
	    "decodes \\u escapes and surrogate pairs to UTF-8");
	cJSON_Delete(j);

	doc = "[1234567890123456789012345678901234567890123456789012345678"
	    "90123]";
	j = parse_n(doc, strlen(doc), DEPTH, ENTRY);
	ok(j != NULL, "accepts a number of 63 characters");
	cJSON_Delete(j);

	doc = "{\"a\":1} trailing";
	j = parse_n(doc, 7, DEPTH, ENTRY);
	ok(j != NULL, "parses only len bytes, not up to a NUL");
	cJSON_Delete(j);
}

static void
test_syntax(void)
{
	char buf[128];

	bad("", "line 1, column 1: empty input", "empty input");
	bad(" \n  ", "line 2, column 3: empty input", "only white space");
	bad("{\"a\":1} x", "line 1, column 9: unexpected 'x' after the "
	    "value", "trailing garbage");
	bad("1 2", "line 1, column 3: unexpected '2' after the value",
	    "two values");
	bad("{}{}", "line 1, column 3: unexpected '{' after the value",
	    "two objects");
	bad_n("[1]\0", 4, DEPTH, "line 1, column 4: unexpected byte 0x00 "
	    "after the value", "a NUL after the value");
	bad("[1]\f", "line 1, column 4: unexpected byte 0x0c after the "
	    "value", "form feed, which is not JSON white space");
	bad("\xef\xbb\xbf{}", "line 1, column 1: expected a value, found "
	    "byte 0xef", "a byte-order mark");
	bad("01", "line 1, column 1: leading zero in number", "01");
	bad("[-01]", "line 1, column 2: leading zero in number", "-01");
	bad("00", "line 1, column 1: leading zero in number", "00");
	bad("1.", "line 1, column 3: expected a digit after '.', found the "
	    "end of the input", "1.");
	bad("-", "line 1, column 2: expected a digit, found the end of the "
	    "input", "a lone minus");
	bad("[1e]", "line 1, column 4: expected a digit in exponent, found "
	    "']'", "an empty exponent");
	bad(".5", "line 1, column 1: expected a value, found '.'", ".5");
	bad("+1", "line 1, column 1: expected a value, found '+'", "+1");
	bad("[NaN]", "line 1, column 2: expected a value, found 'N'", "NaN");
	bad("-Infinity", "line 1, column 2: expected a digit, found 'I'",
	    "-Infinity");
	bad("[1e400]", "line 1, column 2: number out of range", "1e400");
	snprintf(buf, sizeof(buf), "[%s]", "12345678901234567890123456789"
	    "01234567890123456789012345678901234");
	bad(buf, "line 1, column 2: number longer than 63 characters",
	    "a 64-character number cJSON would cut short");
	bad("tru", "line 1, column 1: invalid literal (expected true)",
	    "tru");
	bad("[nul]", "line 1, column 2: invalid literal (expected null)",
	    "nul");
	bad("True", "line 1, column 1: expected a value, found 'T'", "True");
	bad("[1,]", "line 1, column 4: expected a value, found ']'",
	    "a trailing comma in an array");
	bad("{\"a\":1,}", "line 1, column 8: expected a string key, found "
	    "'}'", "a trailing comma in an object");
	bad("{\"a\" 1}", "line 1, column 6: expected ':' after key, found "
	    "'1'", "a missing colon");
	bad("[1 2]", "line 1, column 4: expected ',' or ']' in array, found "
	    "'2'", "a missing comma in an array");
	bad("{\"a\":1 \"b\":2}", "line 1, column 8: expected ',' or '}' in "
	    "object, found '\"'", "a missing comma in an object");
	bad("{1:2}", "line 1, column 2: expected a string key, found '1'",
	    "a number as key");
	bad("{'a':1}", "line 1, column 2: expected a string key, found "
	    "'''", "single quotes");
	bad("[", "line 1, column 2: expected a value, found the end of the "
	    "input", "an unclosed array");
	bad("{", "line 1, column 2: expected a string key, found the end "
	    "of the input", "an unclosed object");
	bad("[1,\n  2,\n  x]", "line 3, column 3: expected a value, found "
	    "'x'", "an error on the third line");
}

static void
test_strings(void)
{
	bad("\"abc", "line 1, column 1: unterminated string",
	    "an unterminated string");
	bad("[\"a\nb\"]", "line 1, column 4: control character 0x0a in "
	    "string (escape it)", "a raw newline in a string");
	bad("\"a\tb\"", "line 1, column 3: control character 0x09 in string "
	    "(escape it)", "a raw tab in a string");
	bad("\"\\x\"", "line 1, column 2: invalid escape: backslash before "
	    "'x'", "\\x");
	bad("\"\\'\"", "line 1, column 2: invalid escape: backslash before "
	    "'''", "\\'");
	bad("\"\\u12\"", "line 1, column 2: \\u must be followed by four "
	    "hex digits", "a short \\u escape");
	bad("\"\\u00g0\"", "line 1, column 2: \\u must be followed by four "
	    "hex digits", "a \\u escape with a non-hex digit");
	bad("\"\\u0000\"", "line 1, column 2: \\u0000 is not allowed in "
	    "strings", "\\u0000");
	bad("{\"k\\u0000\":1}", "line 1, column 4: \\u0000 is not allowed "
	    "in strings", "\\u0000 in a key");
	bad("\"\\ud800\"", "line 1, column 2: unpaired surrogate \\ud800",
	    "a lone high surrogate");
	bad("\"\\uDBFFx\"", "line 1, column 2: unpaired surrogate \\udbff",
	    "a high surrogate followed by text");
	bad("\"\\ud800\\u0041\"", "line 1, column 2: unpaired surrogate "
	    "\\ud800", "a high surrogate followed by a non-surrogate");
	bad("\"\\udc00\"", "line 1, column 2: unpaired surrogate \\udc00",
	    "a lone low surrogate");
	bad("\"\\udc00\\ud800\"", "line 1, column 2: unpaired surrogate "
	    "\\udc00", "a surrogate pair in the wrong order");
	bad("\"\xff\"", "line 1, column 2: invalid UTF-8", "byte 0xff");
	bad("\"\xc0\xaf\"", "line 1, column 2: invalid UTF-8",
	    "an overlong encoding");
	bad("\"\xed\xa0\x80\"", "line 1, column 2: invalid UTF-8",
	    "an encoded surrogate");
	bad("\"\xe6\x97\"", "line 1, column 2: invalid UTF-8",
	    "a truncated sequence");
	bad("\"\xf4\x90\x80\x80\"", "line 1, column 2: invalid UTF-8",
	    "a code point above U+10FFFF");
	bad("\"ok\x80\"", "line 1, column 4: invalid UTF-8",
	    "a stray continuation byte");
	bad("\xc3\xa9", "line 1, column 1: expected a value, found byte "
	    "0xc3", "UTF-8 outside a string");
	bad("[\"\xc3\xa9\xc3\xa9\", x]", "line 1, column 8: expected a "
	    "value, found 'x'", "columns counting characters, not bytes");
}

static void
test_duplicates(void)
{
	char *doc;
	size_t i, n, len;
	cJSON *j;

	bad("{\"a\":1,\"a\":2}", "line 1, column 8: duplicate key \"a\"",
	    "a duplicate key");
	bad("{\"a\":1,\"\\u0061\":2}", "line 1, column 8: duplicate key "
	    "\"a\"", "\"a\" and \"\\u0061\" as the same key");
	bad("{\"\\u00e9\":1,\"\xc3\xa9\":2}", "line 1, column 13: duplicate "
	    "key \"\\xc3\\xa9\"", "an escaped and a raw \"\xc3\xa9\"");
	bad("{\"\\n\":1,\"\\u000a\":2}", "line 1, column 9: duplicate key "
	    "\"\\x0a\"", "\"\\n\" and \"\\u000a\", shown escaped");
	bad("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}", "line 1, column "
	    "19: duplicate key \"\\xf0\\x9f\\x98\\x80\"",
	    "a surrogate pair and its raw UTF-8");
	bad("{\"b\":1,\"a\":1,\"a\":2,\"b\":2}", "line 1, column 14: "
	    "duplicate key \"a\"", "the first duplicate in the text");
	bad("{\n  \"x\": 1,\n  \"x\": 2\n}", "line 3, column 3: duplicate "
	    "key \"x\"", "a duplicate on another line");
	bad("{\"a\":{\"b\":1,\"b\":2}}", "line 1, column 13: duplicate key "
	    "\"b\"", "a duplicate in a nested object");
	bad("{\"a\":{\"a\":1},\"b\":{\"a\":2},\"a\":3}", "line 1, column 26: "
	    "duplicate key \"a\"", "a duplicate after nested objects");
	bad("{\"\xc3\xa9\":1,\"\xc3\xa9\":2}", "line 1, column 8: duplicate "
	    "key \"\\xc3\\xa9\"", "a column counted in characters");

	/* 20000 distinct keys, then one of them again. */
	n = 20000;
	doc = xmalloc(n * 16 + 32);
	len = 0;
	doc[len++] = '{';
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(doc + len, "%s\"k%zu\":%zu",
		    i ? ",\n" : "", i, i);
	memcpy(doc + len, "}", 2);
	j = parse_n(doc, len + 1, DEPTH, 0);
	ok(j != NULL && cJSON_GetArraySize(j) == (int)n,
	    "accepts an object of 20000 distinct keys");
	cJSON_Delete(j);
	len += (size_t)sprintf(doc + len, ",\"k17\":0}");
	j = parse_n(doc, len, DEPTH, 0);
	ok(j == NULL, "finds a duplicate among 20000 keys");
	is_str(jerr.message, "line 20000, column 16: duplicate key \"k17\"",
	    "names the line of the late duplicate");
	cJSON_Delete(j);
	free(doc);
}

static void
test_depth(void)
{
	char *doc;
	cJSON *j;

	j = parse_n("[[[1]]]", 7, 3, ENTRY);
	ok(j != NULL, "accepts nesting exactly at the limit");
	cJSON_Delete(j);
	bad_n("[[[[1]]]]", 9, 3, "line 1, column 4: nesting deeper than 3 "
	    "levels", "arrays nested past the limit");
	bad_n("{\"a\":{\"b\":{\"c\":{}}}}", 20, 3, "line 1, column 16: "
	    "nesting deeper than 3 levels", "objects nested past the limit");
	j = parse_n("\"s\"", 3, 0, ENTRY);
	ok(j != NULL, "depth 0 still accepts a scalar");
	cJSON_Delete(j);
	bad_n("[]", 2, 0, "line 1, column 1: nesting deeper than 0 levels",
	    "depth 0 refuses a container");

	doc = nested(100);
	j = parse_n(doc, strlen(doc), 100, 0);
	ok(j != NULL, "accepts 100 levels when allowed");
	cJSON_Delete(j);
	free(doc);

	/* cJSON stops at its own limit: the scan must refuse first, with a
	 * message, whatever max_depth says. */
	doc = nested(5000);
	j = parse_n(doc, strlen(doc), 100000, 0);
	ok(j == NULL && strcmp(jerr.message, "line 1, column 1001: nesting "
	    "deeper than 1000 levels") == 0,
	    "caps the depth at cJSON's limit (%s)", jerr.message);
	cJSON_Delete(j);
	free(doc);
}

static void
test_entries(void)
{
	const char *doc;
	char *big;
	size_t i, len;
	cJSON *j;

	doc = "[{\"a\":\"12345678\"},{\"a\":\"123456789\"}]";
	j = parse_n(doc, strlen(doc), DEPTH, 16);
	ok(j == NULL && jerr.code != NULL &&
	    strcmp(jerr.code, "entry_too_large") == 0 && jerr.status == 413,
	    "refuses an array element over entry_max as entry_too_large, 413");
	is_str(jerr.message, "line 1, column 19: array element 2 is 17 "
	    "bytes, more than the 16 allowed", "says which element and size");
	ok(jerr.offset == 18, "offset points at the element (%zu)",
	    jerr.offset);
	cJSON_Delete(j);

	doc = "[ {\"a\":\"12345678\"}\n,\t{\"a\":\"12345678\"} ]";
	j = parse_n(doc, strlen(doc), DEPTH, 16);
	ok(j != NULL, "measures elements without the space around them");
	cJSON_Delete(j);

	doc = "{\"a\":\"123456789\"}";
	j = parse_n(doc, strlen(doc), DEPTH, 16);
	ok(j == NULL && jerr.status == 413 &&
	    strcmp(jerr.message, "line 1, column 1: entry is 17 bytes, more "
	    "than the 16 allowed") == 0,
	    "refuses a single object over entry_max");
	cJSON_Delete(j);

	doc = "[[1,2,3,4,5,6,7,8,9]]";
	j = parse_n(doc, strlen(doc), DEPTH, 16);
	ok(j == NULL && jerr.status == 413,
	    "measures a nested array as one element");
	cJSON_Delete(j);

	doc = "[{\"a\":\"12345678\",\"b\":x}]";
	j = parse_n(doc, strlen(doc), DEPTH, 16);
	ok(j == NULL && jerr.status == 400,
	    "reports bad JSON inside an oversized element as invalid_json");
	cJSON_Delete(j);

	doc = "{\"a\":\"123456789\"}";
	j = parse_n(doc, strlen(doc), DEPTH, 0);
	ok(j != NULL, "entry_max 0 sets no limit");
	cJSON_Delete(j);

	/* Ten entries of nearly 64 KiB each: the size a full body has. */
	big = xmalloc(10 * 65600 + 16);
	len = 0;
	big[len++] = '[';
	for (i = 0; i < 10; i++) {
		if (i > 0)
			big[len++] = ',';
		len += (size_t)sprintf(big + len, "{\"detail\":\"");
		memset(big + len, 'x', 65500);
		len += 65500;
		len += (size_t)sprintf(big + len, "\"}");
	}
	big[len++] = ']';
	j = parse_n(big, len, DEPTH, ENTRY);
	ok(j != NULL && cJSON_GetArraySize(j) == 10,
	    "accepts ten entries just under 64 KiB");
	cJSON_Delete(j);
	big[len - 4] = '\x01';
	j = parse_n(big, len, DEPTH, ENTRY);
	ok(j == NULL && strcmp(jerr.message, "line 1, column 655138: "
	    "control character 0x01 in string (escape it)") == 0,
	    "finds one bad byte at the end of 640 KiB (%s)", jerr.message);
	cJSON_Delete(j);
	free(big);
}

/* Parse strictly, print with json_print, compare with the expected text. */
static void
round_trip(const char *in, const char *want, const char *what)
{
	struct json_error err;
	cJSON *j;
	char *out;
	size_t len = 0;

	j = json_parse_strict(in, strlen(in), 32, 65536, &err);
	if (!ok(j != NULL, "%s: parses", what)) {
		printf("#   %s\n", err.message);
		return;
	}
	out = json_print(j, &len);
	is_str(out, want, "%s: prints exactly", what);
	ok(len == strlen(out), "%s: length is right", what);
	free(out);
	cJSON_Delete(j);
}

static void
test_print(void)
{
	/* cJSON's own printer turned these into 9.00719925474099e+15, 1e+16,
	 * 0.3 and an infinity: a producer's numbers must arrive unchanged. */
	round_trip("{\"a\":9007199254740991}", "{\"a\":9007199254740991}",
	    "the largest exact integer");
	round_trip("[9999999999999998]", "[9999999999999998]",
	    "an even integer past 2^53");
	round_trip("[0.30000000000000004]", "[0.30000000000000004]",
	    "a double that 15 digits round away");
	round_trip("[1.7976931348623157e308]", "[1.7976931348623157e+308]",
	    "the largest double");
	round_trip("[-0.5, 0.1, 1e-7, 123456.789]",
	    "[-0.5,0.1,1e-07,123456.789]",
	    "short decimals stay short");
	round_trip("[-42, 0, 1e3]", "[-42,0,1000]", "integers");
	round_trip("{\"s\":\"a\\\"b\\\\c\\n\\t\\u0001\u00e9\"}",
	    "{\"s\":\"a\\\"b\\\\c\\n\\t\\u0001\u00e9\"}",
	    "strings are escaped, UTF-8 kept");
	round_trip("{\"x\":[true,false,null,{}],\"y\":[]}",
	    "{\"x\":[true,false,null,{}],\"y\":[]}",
	    "literals, nesting and empty containers");
}

int
main(void)
{
	util_init();
	test_valid();
	test_syntax();
	test_strings();
	test_duplicates();
	test_depth();
	test_entries();
	test_print();
	ok(json_is_number("-0.5e3") && json_is_number("0") &&
	    json_is_number("12E+2"), "json_is_number accepts JSON numbers");
	ok(!json_is_number("007") && !json_is_number("+1") &&
	    !json_is_number(".5") && !json_is_number("1.") &&
	    !json_is_number("1e") && !json_is_number(""),
	    "json_is_number refuses what JSON does not allow");
	return done();
}
