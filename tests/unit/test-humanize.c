/*
 * test-humanize.c - Check suite for the reply translator
 * (src/proto/humanize.c): the exact text of every reply type, nesting and
 * its indentation, redis-cli's escaping, both line endings, every
 * truncation of every reply and of a stream of them ("need more", nothing
 * appended), malformed replies, the nesting limit, a 65,536-item array, a
 * 1 MiB bulk, -ENOMEM and -EINVAL.
 *
 * The expected texts are what redis-cli 7.0.15 prints (redis-cli --no-raw,
 * against a server that sends the input bytes), except where humanize.h
 * says otherwise: control bytes in unquoted text are escaped, line breaks
 * in a verbatim string or blob error become the output's line ending, and
 * the types that redis-cli 7.0 cannot show (blob errors, big numbers, "nan"
 * doubles, pushes, attributes) have forms of our own.
 *
 * Inputs are read from malloc'd copies of exactly their length (so ASan
 * reports any read past the end) and again ending right before an
 * inaccessible page (so an overread faults even without ASan). The suite
 * also replays the fuzzer's seed corpus and every saved crasher through the
 * fuzz target itself (fuzz/fuzz-humanize.c is linked in), found under
 * $AKV_SOURCE_ROOT.
 */
#include <check.h>

#include "runsuite.h"

#include "replay.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/humanize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct bytes {
    const char *p;
    size_t n;
};

/* A byte string given by a literal, embedded NULs included. */
/* clang-format off */
#define B(s) {(s), sizeof(s) - 1}
/* clang-format on */

/* A reply and its text with "\n" line endings (AKV_HUMANIZE_LF); the
 * default's text is the same with "\r\n". */
struct valid_case {
    struct bytes in;
    struct bytes want;
};

static const struct valid_case valid[] = {
    /* Status and errors: the text, control bytes escaped. */
    {B("+OK\r\n"), B("OK\n")},
    {B("+\r\n"), B("\n")},
    {B("+h\xc3\xa9llo\tw\xc3\xb6rld\r\n"), B("h\xc3\xa9llo\tw\xc3\xb6rld\n")},
    {B("+a\x1b[31mb\x7f\0c\\\r\n"), B("a\\x1b[31mb\\x7f\\x00c\\\n")},
    {B("-ERR unknown command 'foo'\r\n"), B("(error) ERR unknown command 'foo'\n")},
    {B("-\r\n"), B("(error) \n")},
    {B("!21\r\nSYNTAX invalid syntax\r\n"), B("(error) SYNTAX invalid syntax\n")},
    {B("!5\r\na\r\nb\x01\r\n"), B("(error) a\nb\\x01\n")},
    /* Numbers. */
    {B(":5\r\n"), B("(integer) 5\n")},
    {B(":0\r\n"), B("(integer) 0\n")},
    {B(":-12\r\n"), B("(integer) -12\n")},
    {B(":9223372036854775807\r\n"), B("(integer) 9223372036854775807\n")},
    {B(":-9223372036854775808\r\n"), B("(integer) -9223372036854775808\n")},
    {B(",0.5\r\n"), B("(double) 0.5\n")},
    {B(",3\r\n"), B("(double) 3\n")},
    {B(",1e-07\r\n"), B("(double) 1e-07\n")},
    {B(",-1.5E+10\r\n"), B("(double) -1.5E+10\n")},
    {B(",.5\r\n"), B("(double) .5\n")},
    {B(",5.\r\n"), B("(double) 5.\n")},
    {B(",+2\r\n"), B("(double) +2\n")},
    {B(",inf\r\n"), B("(double) inf\n")},
    {B(",-inf\r\n"), B("(double) -inf\n")},
    {B(",nan\r\n"), B("(double) nan\n")},
    {B(",-NaN\r\n"), B("(double) -NaN\n")},
    {B("(3492890328409238509324850943850943825024385\r\n"),
     B("(big number) 3492890328409238509324850943850943825024385\n")},
    {B("(-1\r\n"), B("(big number) -1\n")},
    {B("(0\r\n"), B("(big number) 0\n")},
    {B("#t\r\n"), B("(true)\n")},
    {B("#f\r\n"), B("(false)\n")},
    /* Nulls. */
    {B("$-1\r\n"), B("(nil)\n")},
    {B("*-1\r\n"), B("(nil)\n")},
    {B("_\r\n"), B("(nil)\n")},
    /* Bulk strings, quoted with redis-cli's escapes. */
    {B("$5\r\nshape\r\n"), B("\"shape\"\n")},
    {B("$0\r\n\r\n"), B("\"\"\n")},
    {B("$11\r\nhello world\r\n"), B("\"hello world\"\n")},
    {B("$2\r\n\r\n\r\n"), B("\"\\r\\n\"\n")},
    {B("$12\r\na\"b\\c\n\r\t\a\b\x01\x7f\r\n"), B("\"a\\\"b\\\\c\\n\\r\\t\\a\\b\\x01\\x7f\"\n")},
    {B("$6\r\n\xc3\xa9\xff\0 ~\r\n"), B("\"\\xc3\\xa9\\xff\\x00 ~\"\n")},
    {B("$3\r\n$1\n\r\n"), B("\"$1\\n\"\n")},
    /* Verbatim strings: the text without its format, line breaks kept. */
    {B("=15\r\ntxt:Some string\r\n"), B("Some string\n")},
    {B("=4\r\ntxt:\r\n"), B("\n")},
    {B("=11\r\nmkd:a\nb\r\nc\x01\r\n"), B("a\nb\nc\\x01\n")},
    {B("=6\r\ntxt:\ra\r\n"), B("\\x0da\n")},
    /* Arrays, sets and pushes. */
    {B("*0\r\n"), B("(empty array)\n")},
    {B("~0\r\n"), B("(empty set)\n")},
    {B(">0\r\n"), B("(empty push)\n")},
    {B("%0\r\n"), B("(empty hash)\n")},
    {B("*2\r\n$1\r\na\r\n$1\r\nb\r\n"), B("1) \"a\"\n2) \"b\"\n")},
    {B("*3\r\n:1\r\n$-1\r\n*0\r\n"), B("1) (integer) 1\n2) (nil)\n3) (empty array)\n")},
    {B("~2\r\n$1\r\na\r\n$1\r\nb\r\n"), B("1~ \"a\"\n2~ \"b\"\n")},
    {B(">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n"), B("1) \"invalidate\"\n2) 1) \"key\"\n")},
    /* Nesting: continuation lines indented to the item's text. */
    {B("*2\r\n*2\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*1\r\n:1\r\n"),
     B("1) 1) \"key\"\n   2) \"value\"\n2) 1) (integer) 1\n")},
    {B("*1\r\n*1\r\n*2\r\n+a\r\n+b\r\n"), B("1) 1) 1) a\n      2) b\n")},
    {B("*2\r\n*2\r\n*2\r\n:1\r\n:2\r\n:3\r\n+x\r\n"),
     B("1) 1) 1) (integer) 1\n      2) (integer) 2\n   2) (integer) 3\n2) x\n")},
    {B("*2\r\n~1\r\n+a\r\n*0\r\n"), B("1) 1~ a\n2) (empty array)\n")},
    /* Numbers right-aligned to the widest. */
    {B("*10\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n:7\r\n:8\r\n:9\r\n*2\r\n:1\r\n:2\r\n"),
     B(" 1) (integer) 1\n 2) (integer) 2\n 3) (integer) 3\n 4) (integer) 4\n 5) (integer) 5\n"
       " 6) (integer) 6\n 7) (integer) 7\n 8) (integer) 8\n 9) (integer) 9\n"
       "10) 1) (integer) 1\n    2) (integer) 2\n")},
    {B("*10\r\n*2\r\n:1\r\n:2\r\n+b\r\n+c\r\n+d\r\n+e\r\n+f\r\n+g\r\n+h\r\n+i\r\n+j\r\n"),
     B(" 1) 1) (integer) 1\n    2) (integer) 2\n 2) b\n 3) c\n 4) d\n 5) e\n 6) f\n 7) g\n"
       " 8) h\n 9) i\n10) j\n")},
    /* Maps: "n# key => value"; a value of several lines on lines of its
     * own, indented like the items; a key's lines before its " => ". */
    {B("%2\r\n+k1\r\n:1\r\n+k2\r\n*2\r\n:1\r\n:2\r\n"),
     B("1# k1 => (integer) 1\n2# k2 => \n   1) (integer) 1\n   2) (integer) 2\n")},
    {B("%1\r\n+k\r\n*0\r\n"), B("1# k => (empty array)\n")},
    {B("%1\r\n+k\r\n*1\r\n*2\r\n:1\r\n:2\r\n"),
     B("1# k => \n   1) 1) (integer) 1\n      2) (integer) 2\n")},
    {B("%1\r\n+k\r\n%2\r\n+a\r\n+b\r\n+c\r\n+d\r\n"), B("1# k => \n   1# a => b\n   2# c => d\n")},
    {B("%1\r\n+k\r\n%1\r\n+a\r\n*2\r\n:1\r\n:2\r\n"),
     B("1# k => \n   1# a => \n      1) (integer) 1\n      2) (integer) 2\n")},
    {B("*1\r\n%2\r\n+k\r\n*2\r\n:1\r\n:2\r\n+k2\r\n+v\r\n"),
     B("1) 1# k => \n      1) (integer) 1\n      2) (integer) 2\n   2# k2 => v\n")},
    {B("*2\r\n%1\r\n*2\r\n:1\r\n:2\r\n*2\r\n:3\r\n:4\r\n:5\r\n"),
     B("1) 1# 1) (integer) 1\n      2) (integer) 2 => \n      1) (integer) 3\n"
       "      2) (integer) 4\n2) (integer) 5\n")},
    {B("%1\r\n+k\r\n%1\r\n*2\r\n:1\r\n:2\r\n+v\r\n"),
     B("1# k => 1# 1) (integer) 1\n      2) (integer) 2 => v\n")},
    {B("%1\r\n+k\r\n*1\r\n%1\r\n+a\r\n~2\r\n+x\r\n+y\r\n"),
     B("1# k => \n   1) 1# a => \n         1~ x\n         2~ y\n")},
    {B("%1\r\n*1\r\n*1\r\n:1\r\n*1\r\n*1\r\n:2\r\n"),
     B("1# 1) 1) (integer) 1 => 1) 1) (integer) 2\n")},
    /* Line breaks in a text do not move a value to a line of its own. */
    {B("%1\r\n+k\r\n=7\r\ntxt:a\nb\r\n"), B("1# k => a\nb\n")},
    {B("%1\r\n+k\r\n*1\r\n=7\r\ntxt:a\nb\r\n"), B("1# k => 1) a\nb\n")},
    {B("%1\r\n=7\r\ntxt:a\nb\r\n+v\r\n"), B("1# a\nb => v\n")},
    {B("*1\r\n%1\r\n$1\r\na\r\n$1\r\nb\r\n"), B("1) 1# \"a\" => \"b\"\n")},
    {B("%1\r\n*2\r\n:1\r\n:2\r\n+v\r\n"), B("1# 1) (integer) 1\n   2) (integer) 2 => v\n")},
    {B("%1\r\n+k\r\n%1\r\n+a\r\n+b\r\n"), B("1# k => 1# a => b\n")},
    {B("%10\r\n+a\r\n:1\r\n+b\r\n:2\r\n+c\r\n:3\r\n+d\r\n:4\r\n+e\r\n:5\r\n"
       "+f\r\n:6\r\n+g\r\n:7\r\n+h\r\n:8\r\n+i\r\n:9\r\n+j\r\n*1\r\n:10\r\n"),
     B(" 1# a => (integer) 1\n 2# b => (integer) 2\n 3# c => (integer) 3\n"
       " 4# d => (integer) 4\n 5# e => (integer) 5\n 6# f => (integer) 6\n"
       " 7# g => (integer) 7\n 8# h => (integer) 8\n 9# i => (integer) 9\n"
       "10# j => 1) (integer) 10\n")},
    /* Attributes: checked, not shown, not counted as items. */
    {B("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
       "*2\r\n:2039123\r\n:9543892\r\n"),
     B("1) (integer) 2039123\n2) (integer) 9543892\n")},
    {B("*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\na\r\n$1\r\nb\r\n"), B("1) \"a\"\n2) \"b\"\n")},
    {B("|0\r\n|1\r\n+a\r\n+b\r\n:1\r\n"), B("(integer) 1\n")},
    {B("%1\r\n+k\r\n|1\r\n+x\r\n*1\r\n+y\r\n+v\r\n"), B("1# k => v\n")},
};

#define NVALID (sizeof valid / sizeof valid[0])

static const struct bytes invalid[] = {
    /* Not a reply. */
    B("?"),
    B("?\r\n"),
    B("OK\r\n"),
    B("\r\n"),
    B(" +OK\r\n"),
    B("\0"),
    /* CR or LF inside a line. */
    B("+a\nb\r\n"),
    B("+a\rb\r\n"),
    B("-a\nb\r\n"),
    B("+OK\r\r\n"),
    B("$1\rx"),
    /* Integers. */
    B(":\r\n"),
    B(":abc\r\n"),
    B(":01\r\n"),
    B(":-0\r\n"),
    B(":-\r\n"),
    B(":+1\r\n"),
    B(": 1\r\n"),
    B(":1 \r\n"),
    B(":9223372036854775808\r\n"),
    B(":-9223372036854775809\r\n"),
    B(":18446744073709551616\r\n"),
    B(":1234567890123456789012345678901234567890"),
    /* Lengths and bulks. */
    B("$-2\r\n"),
    B("$01\r\n"),
    B("$\r\n"),
    B("$x\r\n"),
    B("$-0\r\n"),
    B("$9223372036854775808\r\n"),
    B("$99999999999999999999999\r\n"),
    B("$1\r\nab\r\n"),
    B("$1\r\na\rx"),
    B("$1\r\na\n\r\n"),
    B("!-1\r\n"),
    B("=-1\r\n"),
    B("=3\r\ntxt\r\n"),
    B("=4\r\ntxtx\r\n"),
    B("=0\r\n\r\n"),
    /* Aggregates. */
    B("*-2\r\n"),
    B("*01\r\n"),
    B("~-1\r\n"),
    B("%-1\r\n"),
    B(">-1\r\n"),
    B("|-1\r\n"),
    B("*1\r\n?"),
    B("*2\r\n:1\r\n:x\r\n"),
    B("%1\r\n+a\r\n?\r\n"),
    B("|1\r\n+a\r\n?\r\n"),
    B("|1\r\n+a\r\n+b\r\n?"),
    /* The other RESP3 scalars. */
    B("_x\r\n"),
    B("_ \r\n"),
    B("#x\r\n"),
    B("#\r\n"),
    B("#tt\r\n"),
    B("#T\r\n"),
    B(",\r\n"),
    B(",abc\r\n"),
    B(",1.2.3\r\n"),
    B(",1e\r\n"),
    B(",1e+\r\n"),
    B(",-\r\n"),
    B(",.\r\n"),
    B(",infinity\r\n"),
    B(", 1\r\n"),
    B(",0x10\r\n"),
    B("(\r\n"),
    B("(12a\r\n"),
    B("(-\r\n"),
    B("(+1\r\n"),
};

#define NINVALID (sizeof invalid / sizeof invalid[0])

/* The literal s with every "\n" made "\r\n": the default's text, with
 * room for a few more bytes. */
static char *crlf_of(struct bytes s, size_t *n)
{
    char *out = malloc(2 * s.n + 8);
    size_t i, k = 0;

    ck_assert(out);
    for (i = 0; i < s.n; i++) {
        if (s.p[i] == '\n')
            out[k++] = '\r';
        out[k++] = s.p[i];
    }
    *n = k;
    return out;
}

#define MARK "mark>"
#define MARK_LEN (sizeof MARK - 1)

/* An output buffer that already holds MARK, which every call must keep. */
static void out_init(struct akv_buf *b)
{
    akv_buf_init(b);
    ck_assert_int_eq(akv_buf_append(b, MARK, MARK_LEN), 0);
}

/* Asserts that b holds MARK then exactly want[0..n). */
static void expect_out(const struct akv_buf *b, const char *want, size_t n, const char *what)
{
    ck_assert_msg(b->len == MARK_LEN + n && memcmp(b->p + MARK_LEN, want, n) == 0,
                  "%s: got \"%.*s\", want \"%.*s\"", what, (int)(b->len - MARK_LEN),
                  b->p + MARK_LEN, (int)n, want);
    ck_assert(memcmp(b->p, MARK, MARK_LEN) == 0);
}

/* One call on a copy of in[0..len) held in exactly len malloc'd bytes. */
static long run_exact(const char *in, size_t len, struct akv_buf *out, unsigned flags, int many)
{
    char *copy = malloc(len ? len : 1);
    long r;

    ck_assert(copy);
    if (len)
        memcpy(copy, in, len);
    r = many ? akv_humanize_run_many(copy, len, out, flags)
             : akv_humanize_run(copy, len, out, flags);
    free(copy);
    return r;
}

START_TEST(test_valid)
{
    const struct valid_case *c = &valid[_i];
    struct akv_buf out;
    size_t crlf_n;
    char *crlf = crlf_of(c->want, &crlf_n);
    char *more = malloc(c->in.n + 5);
    long r;

    out_init(&out);
    r = run_exact(c->in.p, c->in.n, &out, AKV_HUMANIZE_LF, 0);
    ck_assert_msg(r == (long)c->in.n, "case %d: %ld", _i, r);
    expect_out(&out, c->want.p, c->want.n, "LF");
    out.len = MARK_LEN;
    ck_assert_int_eq(run_exact(c->in.p, c->in.n, &out, 0, 0), (long)c->in.n);
    expect_out(&out, crlf, crlf_n, "CRLF");

    /* A reply followed by another: only the first is taken, or both. */
    ck_assert(more);
    memcpy(more, c->in.p, c->in.n);
    memcpy(more + c->in.n, "+X\r\n", 4);
    out.len = MARK_LEN;
    ck_assert_int_eq(run_exact(more, c->in.n + 4, &out, AKV_HUMANIZE_LF, 0), (long)c->in.n);
    expect_out(&out, c->want.p, c->want.n, "then another");
    out.len = MARK_LEN;
    ck_assert_int_eq(run_exact(more, c->in.n + 4, &out, 0, 1), (long)c->in.n + 4);
    memcpy(crlf + crlf_n, "X\r\n", 3);
    expect_out(&out, crlf, crlf_n + 3, "many");
    /* ... and a third one cut short is left for later. */
    out.len = MARK_LEN;
    ck_assert_int_eq(run_exact(more, c->in.n + 3, &out, 0, 1), (long)c->in.n);
    expect_out(&out, crlf, crlf_n, "many, cut");

    free(more);
    free(crlf);
    akv_buf_fini(&out);
}
END_TEST

START_TEST(test_truncations)
{
    const struct valid_case *c = &valid[_i];
    struct akv_buf out;
    size_t k;

    out_init(&out);
    for (k = 0; k < c->in.n; k++) {
        ck_assert_msg(run_exact(c->in.p, k, &out, AKV_HUMANIZE_LF, 0) == 0, "case %d at %zu", _i,
                      k);
        ck_assert_int_eq(run_exact(c->in.p, k, &out, 0, 1), 0);
        ck_assert_uint_eq(out.len, MARK_LEN);
    }
    akv_buf_fini(&out);
}
END_TEST

/* The same, with the input ending right before a PROT_NONE page. */
START_TEST(test_guard_page)
{
    const struct valid_case *c = &valid[_i];
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t room = (c->in.n + page - 1) / page * page;
    char *map = mmap(NULL, room + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *end = map + room;
    struct akv_buf out;
    size_t k;

    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(mprotect(end, page, PROT_NONE), 0);
    out_init(&out);
    for (k = 0; k <= c->in.n; k++) {
        memcpy(end - k, c->in.p, k);
        ck_assert_int_eq(akv_humanize_run_many(end - k, k, &out, AKV_HUMANIZE_LF),
                         k == c->in.n ? (long)k : 0);
    }
    expect_out(&out, c->want.p, c->want.n, "guard page");
    akv_buf_fini(&out);
    munmap(map, room + page);
}
END_TEST

START_TEST(test_invalid)
{
    const struct bytes *c = &invalid[_i];
    struct akv_buf out;
    char *after = malloc(c->n + 5);
    long r;

    out_init(&out);
    r = run_exact(c->p, c->n, &out, AKV_HUMANIZE_LF, 0);
    ck_assert_msg(r == -EPROTO, "invalid case %d: %ld", _i, r);
    ck_assert_int_eq(run_exact(c->p, c->n, &out, 0, 1), -EPROTO);
    ck_assert_uint_eq(out.len, MARK_LEN);

    /* After a good reply, the good one is translated and the bad one is
     * left for the next call, which reports it. */
    ck_assert(after);
    memcpy(after, "+OK\r\n", 5);
    memcpy(after + 5, c->p, c->n);
    ck_assert_int_eq(run_exact(after, c->n + 5, &out, AKV_HUMANIZE_LF, 1), 5);
    expect_out(&out, "OK\n", 3, "good then bad");
    ck_assert_int_eq(run_exact(after + 5, c->n, &out, AKV_HUMANIZE_LF, 1), -EPROTO);
    expect_out(&out, "OK\n", 3, "bad alone");
    free(after);
    akv_buf_fini(&out);
}
END_TEST

/* All the valid replies back to back: at every length, the replies that
 * are whole are translated and nothing of the next. */
START_TEST(test_stream_truncations)
{
    size_t total = 0, i, k;
    size_t ends[NVALID], text_ends[NVALID];
    struct akv_buf out;
    char *stream, *text;

    for (i = 0; i < NVALID; i++)
        total += valid[i].in.n;
    stream = malloc(total);
    text = malloc(total * 8);
    ck_assert(stream && text);
    for (i = 0, k = 0; i < NVALID; i++) {
        memcpy(stream + k, valid[i].in.p, valid[i].in.n);
        k += valid[i].in.n;
        ends[i] = k;
        memcpy(text + (i ? text_ends[i - 1] : 0), valid[i].want.p, valid[i].want.n);
        text_ends[i] = (i ? text_ends[i - 1] : 0) + valid[i].want.n;
    }

    out_init(&out);
    for (k = 0; k <= total; k++) {
        size_t whole = 0, n = 0;
        long r;

        for (i = 0; i < NVALID && ends[i] <= k; i++) {
            whole = ends[i];
            n = text_ends[i];
        }
        out.len = MARK_LEN;
        r = run_exact(stream, k, &out, AKV_HUMANIZE_LF, 1);
        ck_assert_msg(r == (long)whole, "at %zu: %ld, want %zu", k, r, whole);
        expect_out(&out, text, n, "stream");
    }
    akv_buf_fini(&out);
    free(stream);
    free(text);
}
END_TEST

/* The stream as a client receives it, in pieces of random sizes: an input
 * buffer that each call consumes from. */
START_TEST(test_chunked_stream)
{
    size_t total = 0, n = 0, off = 0, i;
    struct akv_buf in, out;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char *stream, *text;

    for (i = 0; i < NVALID; i++)
        total += valid[i].in.n;
    stream = malloc(total);
    text = malloc(total * 8);
    ck_assert(stream && text);
    for (i = 0; i < NVALID; i++) {
        memcpy(stream + off, valid[i].in.p, valid[i].in.n);
        off += valid[i].in.n;
        memcpy(text + n, valid[i].want.p, valid[i].want.n);
        n += valid[i].want.n;
    }

    akv_buf_init(&in);
    out_init(&out);
    off = 0;
    while (off < total) {
        size_t piece;
        long r;

        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        piece = 1 + (size_t)(seed % 40);
        if (piece > total - off)
            piece = total - off;
        ck_assert_int_eq(akv_buf_append(&in, stream + off, piece), 0);
        off += piece;
        r = akv_humanize_run_many(in.p, in.len, &out, AKV_HUMANIZE_LF);
        ck_assert_int_ge(r, 0);
        akv_buf_consume(&in, (size_t)r);
    }
    ck_assert_uint_eq(in.len, 0);
    expect_out(&out, text, n, "chunked");
    akv_buf_fini(&in);
    akv_buf_fini(&out);
    free(stream);
    free(text);
}
END_TEST

/* n aggregates of one item each, around ":1". */
static char *nested(size_t n, const char *inner, size_t *len)
{
    size_t m = strlen(inner);
    char *s = malloc(4 * n + m);
    size_t i;

    ck_assert(s);
    for (i = 0; i < n; i++)
        memcpy(s + 4 * i, "*1\r\n", 4);
    memcpy(s + 4 * n, inner, m);
    *len = 4 * n + m;
    return s;
}

START_TEST(test_depth)
{
    struct akv_buf out;
    size_t len, i, k;
    char *s;
    char want[64 * 3 + 16];

    /* AKV_HUMANIZE_DEPTH_MAX arrays in one another. */
    out_init(&out);
    s = nested(AKV_HUMANIZE_DEPTH_MAX, ":1\r\n", &len);
    ck_assert_int_eq(run_exact(s, len, &out, AKV_HUMANIZE_LF, 0), (long)len);
    for (i = 0, k = 0; i < AKV_HUMANIZE_DEPTH_MAX; i++, k += 3)
        memcpy(want + k, "1) ", 3);
    memcpy(want + k, "(integer) 1\n", 12);
    expect_out(&out, want, k + 12, "deepest");
    free(s);

    /* One more is refused; its prefixes are still "need more" until the
     * header that goes too deep is whole. */
    out.len = MARK_LEN;
    s = nested(AKV_HUMANIZE_DEPTH_MAX + 1, ":1\r\n", &len);
    ck_assert_int_eq(run_exact(s, len, &out, AKV_HUMANIZE_LF, 0), -EPROTO);
    for (k = 0; k < 4 * AKV_HUMANIZE_DEPTH_MAX + 4; k++)
        ck_assert_int_eq(run_exact(s, k, &out, AKV_HUMANIZE_LF, 0), 0);
    ck_assert_int_eq(run_exact(s, 4 * AKV_HUMANIZE_DEPTH_MAX + 4, &out, 0, 0), -EPROTO);
    ck_assert_uint_eq(out.len, MARK_LEN);
    free(s);

    /* Attributes count: one as the deepest aggregate is accepted, one
     * deeper is not, nor one whose contents go deeper. */
    s = nested(AKV_HUMANIZE_DEPTH_MAX - 1, "|1\r\n+a\r\n+b\r\n:1\r\n", &len);
    ck_assert_int_eq(run_exact(s, len, &out, AKV_HUMANIZE_LF, 0), (long)len);
    free(s);
    out.len = MARK_LEN;
    s = nested(AKV_HUMANIZE_DEPTH_MAX, "|1\r\n+a\r\n+b\r\n:1\r\n", &len);
    ck_assert_int_eq(run_exact(s, len, &out, AKV_HUMANIZE_LF, 0), -EPROTO);
    free(s);
    s = nested(AKV_HUMANIZE_DEPTH_MAX - 1, "|1\r\n+a\r\n*0\r\n:1\r\n", &len);
    ck_assert_int_eq(run_exact(s, len, &out, AKV_HUMANIZE_LF, 0), -EPROTO);
    free(s);
    /* A deep map: its values too. */
    s = nested(AKV_HUMANIZE_DEPTH_MAX - 1, "%1\r\n+k\r\n*0\r\n", &len);
    ck_assert_int_eq(run_exact(s, len, &out, AKV_HUMANIZE_LF, 0), -EPROTO);
    free(s);
    ck_assert_uint_eq(out.len, MARK_LEN);
    akv_buf_fini(&out);
}
END_TEST

START_TEST(test_big_array)
{
    enum { N = 65536 };
    struct akv_buf in, out, want;
    char line[64];
    size_t i, k;
    int n;

    akv_buf_init(&in);
    akv_buf_init(&want);
    out_init(&out);
    ck_assert_int_eq(akv_buf_append(&in, "*65536\r\n", 8), 0);
    for (i = 0; i < N; i++) {
        n = snprintf(line, sizeof line, ":%zu\r\n", i * 7919);
        ck_assert_int_eq(akv_buf_append(&in, line, (size_t)n), 0);
        n = snprintf(line, sizeof line, "%5zu) (integer) %zu\r\n", i + 1, i * 7919);
        ck_assert_int_eq(akv_buf_append(&want, line, (size_t)n), 0);
    }
    ck_assert_int_eq(akv_humanize_run(in.p, in.len, &out, 0), (long)in.len);
    expect_out(&out, want.p, want.len, "65536 items");

    /* Cut anywhere, it is "need more" and nothing is appended. */
    for (k = 0; k < in.len; k += 4099) {
        ck_assert_int_eq(akv_humanize_run(in.p, k, &out, 0), 0);
        ck_assert_uint_eq(out.len, MARK_LEN + want.len);
    }
    ck_assert_int_eq(akv_humanize_run(in.p, in.len - 1, &out, 0), 0);

    /* The same inside a two-item array: every item line but the first
     * indented by the outer "1) ". */
    in.len = 0;
    out.len = MARK_LEN;
    ck_assert_int_eq(akv_buf_append(&in, "*2\r\n*65536\r\n", 12), 0);
    for (i = 0; i < N; i++)
        ck_assert_int_eq(akv_buf_append(&in, "$1\r\nx\r\n", 7), 0);
    ck_assert_int_eq(akv_buf_append(&in, "_\r\n", 3), 0);
    ck_assert_int_eq(akv_humanize_run(in.p, in.len, &out, AKV_HUMANIZE_LF), (long)in.len);
    want.len = 0;
    for (i = 0; i < N; i++) {
        n = snprintf(line, sizeof line, "%s%5zu) \"x\"\n", i ? "   " : "1) ", i + 1);
        ck_assert_int_eq(akv_buf_append(&want, line, (size_t)n), 0);
    }
    ck_assert_int_eq(akv_buf_append(&want, "2) (nil)\n", 9), 0);
    expect_out(&out, want.p, want.len, "nested 65536 items");

    akv_buf_fini(&in);
    akv_buf_fini(&out);
    akv_buf_fini(&want);
}
END_TEST

/* redis-cli's quoting, written out independently of the module. */
static size_t repr(char *out, const unsigned char *s, size_t n)
{
    size_t i, k = 0;

    out[k++] = '"';
    for (i = 0; i < n; i++) {
        switch (s[i]) {
        case '"':
        case '\\':
            out[k++] = '\\';
            out[k++] = (char)s[i];
            break;
        case '\n':
            k += (size_t)sprintf(out + k, "\\n");
            break;
        case '\r':
            k += (size_t)sprintf(out + k, "\\r");
            break;
        case '\t':
            k += (size_t)sprintf(out + k, "\\t");
            break;
        case '\a':
            k += (size_t)sprintf(out + k, "\\a");
            break;
        case '\b':
            k += (size_t)sprintf(out + k, "\\b");
            break;
        default:
            if (s[i] >= 0x20 && s[i] <= 0x7e)
                out[k++] = (char)s[i];
            else
                k += (size_t)sprintf(out + k, "\\x%02x", s[i]);
        }
    }
    out[k++] = '"';
    return k;
}

START_TEST(test_big_bulk)
{
    enum { N = 1 << 20 };
    unsigned char *payload = malloc(N);
    char *want = malloc(4 * N + 8);
    struct akv_buf in, out;
    char head[32];
    size_t i, n;

    ck_assert(payload && want);
    for (i = 0; i < N; i++)
        payload[i] = (unsigned char)(i * 131 + (i >> 8));
    akv_buf_init(&in);
    out_init(&out);
    n = (size_t)snprintf(head, sizeof head, "$%d\r\n", N);
    ck_assert_int_eq(akv_buf_append(&in, head, n), 0);
    ck_assert_int_eq(akv_buf_append(&in, payload, N), 0);
    ck_assert_int_eq(akv_buf_append(&in, "\r\n", 2), 0);
    n = repr(want, payload, N);
    want[n++] = '\r';
    want[n++] = '\n';
    ck_assert_int_eq(akv_humanize_run(in.p, in.len, &out, 0), (long)in.len);
    expect_out(&out, want, n, "1 MiB bulk");
    ck_assert_int_eq(akv_humanize_run(in.p, in.len - 1, &out, 0), 0);
    ck_assert_int_eq(akv_humanize_run(in.p, in.len - 2, &out, 0), 0);
    ck_assert_uint_eq(out.len, MARK_LEN + n);
    akv_buf_fini(&in);
    akv_buf_fini(&out);
    free(payload);
    free(want);
}
END_TEST

START_TEST(test_enomem)
{
    /* A buffer that cannot grow by a single reply: the reservation fails
     * before anything is written, and the buffer is left alone. */
    struct akv_buf out = {.p = NULL, .len = SIZE_MAX - 2, .cap = SIZE_MAX - 2};

    ck_assert_int_eq(akv_humanize_run("+OK\r\n", 5, &out, 0), -ENOMEM);
    ck_assert_int_eq(akv_humanize_run_many("+OK\r\n+OK\r\n", 10, &out, 0), -ENOMEM);
    ck_assert_int_eq(akv_humanize_run("*2\r\n:1\r\n:2\r\n", 12, &out, AKV_HUMANIZE_LF), -ENOMEM);
    ck_assert(out.p == NULL && out.len == SIZE_MAX - 2 && out.cap == SIZE_MAX - 2);
    /* "Need more" and errors come first: nothing to reserve yet. */
    ck_assert_int_eq(akv_humanize_run("+OK\r", 4, &out, 0), 0);
    ck_assert_int_eq(akv_humanize_run("?", 1, &out, 0), -EPROTO);
}
END_TEST

START_TEST(test_einval)
{
    struct akv_buf out;

    out_init(&out);
    ck_assert_int_eq(akv_humanize_run("+OK\r\n", 5, &out, 2), -EINVAL);
    ck_assert_int_eq(akv_humanize_run_many("+OK\r\n", 5, &out, ~0u), -EINVAL);
    ck_assert_int_eq(akv_humanize_run("+OK\r\n", 5, NULL, 0), -EINVAL);
    ck_assert_int_eq(akv_humanize_run_many("+OK\r\n", 5, NULL, 0), -EINVAL);
    ck_assert_int_eq(akv_humanize_run(NULL, 5, &out, 0), -EINVAL);
    ck_assert_int_eq(akv_humanize_run_many(NULL, 5, &out, 0), -EINVAL);
    /* No bytes: "need more", from any pointer. */
    ck_assert_int_eq(akv_humanize_run(NULL, 0, &out, 0), 0);
    ck_assert_int_eq(akv_humanize_run_many(NULL, 0, &out, 0), 0);
    ck_assert_int_eq(akv_humanize_run_many("", 0, &out, AKV_HUMANIZE_LF), 0);
    ck_assert_uint_eq(out.len, MARK_LEN);
    akv_buf_fini(&out);
}
END_TEST

/* An empty output buffer grows as needed; text is appended after what it
 * holds. */
START_TEST(test_appends)
{
    struct akv_buf out;

    akv_buf_init(&out);
    ck_assert_int_eq(akv_humanize_run(":1\r\n", 4, &out, 0), 4);
    ck_assert_int_eq(akv_humanize_run_many("+a\r\n_\r\n", 7, &out, AKV_HUMANIZE_LF), 7);
    ck_assert_uint_eq(out.len, 21);
    ck_assert(memcmp(out.p, "(integer) 1\r\na\n(nil)\n", 21) == 0);
    akv_buf_fini(&out);
}
END_TEST

/* The fuzz target itself checks the invariants and aborts, failing the
 * test, if one breaks. */
static void replay_one(const uint8_t *data, size_t len, void *arg)
{
    (void)arg;
    LLVMFuzzerTestOneInput(data, len);
}

START_TEST(test_fuzz_replay)
{
    const char *root = getenv("AKV_SOURCE_ROOT");
    size_t i;

    if (!root || !*root) {
        fprintf(stderr, "AKV_SOURCE_ROOT unset: fuzz corpus replay skipped\n");
    } else {
        ck_assert_int_gt(tu_replay_dir("fuzz/corpus/humanize", replay_one, NULL), 0);
        /* The folder of crashers exists only once the fuzzer found one. */
        tu_replay_dir("fuzz/regression/humanize", replay_one, NULL);
    }
    /* The suite's own cases go through the target's checks too. */
    for (i = 0; i < NVALID; i++)
        LLVMFuzzerTestOneInput((const uint8_t *)valid[i].in.p, valid[i].in.n);
    for (i = 0; i < NINVALID; i++)
        LLVMFuzzerTestOneInput((const uint8_t *)invalid[i].p, invalid[i].n);
}
END_TEST

static Suite *humanize_suite(void)
{
    Suite *s = suite_create("humanize");
    TCase *tc = tcase_create("valid");

    tcase_add_loop_test(tc, test_valid, 0, (int)NVALID);
    tcase_add_loop_test(tc, test_truncations, 0, (int)NVALID);
    tcase_add_loop_test(tc, test_guard_page, 0, (int)NVALID);
    tcase_add_test(tc, test_stream_truncations);
    tcase_add_test(tc, test_chunked_stream);
    tcase_add_test(tc, test_appends);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_invalid, 0, (int)NINVALID);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_enomem);
    tcase_add_test(tc, test_einval);
    suite_add_tcase(s, tc);

    tc = tcase_create("big");
    tcase_add_test(tc, test_big_array);
    tcase_add_test(tc, test_big_bulk);
    suite_add_tcase(s, tc);

    tc = tcase_create("fuzz");
    tcase_add_test(tc, test_fuzz_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(humanize_suite());
}
