/*
 * humanize.h - translates RESP replies into the text redis-cli prints in its
 * interactive mode, for people who talk to attnkvd with telnet or netcat.
 * Pure: bytes of complete replies in, text appended to a byte buffer
 * (util/buf.h) out. No I/O, no global state, no allocation besides growing
 * the output buffer.
 *
 * Input: RESP2 (+ - : $ *, with the nulls $-1 and *-1) and RESP3 (_ null,
 * , double, # boolean, ( big number, ! blob error, = verbatim string,
 * % map, ~ set, > push, | attribute), exactly as a server writes them.
 *
 * Output, one reply at a time (examples use "\n" for the line ending):
 *
 *   +OK                 OK
 *   -ERR no such key    (error) ERR no such key        (! blob errors too)
 *   :5                  (integer) 5
 *   $5 shape            "shape"
 *   $-1, *-1, _         (nil)
 *   ,0.5                (double) 0.5                   (the text as sent)
 *   #t, #f              (true), (false)
 *   (1234               (big number) 1234
 *   =13 txt:Some text   Some text                      (the 3-letter format dropped)
 *   *0, %0, ~0, >0      (empty array), (empty hash), (empty set), (empty push)
 *
 * Bulk strings are quoted as redis-cli quotes them: \" \\ \n \r \t \a \b,
 * bytes 0x20-0x7e as they are, every other byte as \xHH (lowercase), so
 * UTF-8 text shows as escapes, as in redis-cli. The unquoted texts (status,
 * errors, verbatim strings) are printed as they are except that a line break
 * in them ("\n" or "\r\n"; only blob errors and verbatim strings can hold
 * one) becomes the output's line ending and other control bytes (below 0x20
 * but tab, and 0x7f) become \xHH: redis-cli prints these raw, but raw control
 * bytes could drive the reader's terminal. So the output never holds a
 * control byte other than tab and the line endings.
 *
 * Arrays and pushes number their items "1) ", sets "1~ ", maps their pairs
 * "1# key => value". Numbers are right-aligned to the width of the largest,
 * and an item's continuation lines are indented to its text, as redis-cli
 * does:
 *
 *   *10 whose first and last items are arrays (items 2 to 9 not shown):
 *
 *    1) 1) "key"
 *       2) "value"
 *   10) 1) (integer) 1
 *       2) (integer) 2
 *
 *   %3 whose second value is an array:
 *
 *   1# "name" => "shape"
 *   2# "tags" =>
 *      1) "a"
 *      2) "b"
 *   3# "size" => 1) (integer) 3
 *
 * As in redis-cli, a tall map value (an aggregate of more than one item, or
 * of one tall item; for a map, its one pair's value decides) starts on a
 * line of its own, indented like the items, with the " => " (and its space)
 * ending the key's line; a key of several lines has " => value" after its
 * last line. Attributes are metadata about the reply that follows them: they are
 * checked and skipped, and an attribute inside an aggregate does not count
 * as an item.
 *
 * Every line, the last line of each reply included, ends with "\r\n" (what a
 * telnet client needs to return the carriage; netcat's terminal shows it the
 * same), or with "\n" under AKV_HUMANIZE_LF (for pipes and files, and the
 * bytes redis-cli writes).
 *
 * Ownership: nothing is kept. The input is only read; the output buffer
 * belongs to the caller, and a call appends whole replies' text to it or
 * nothing.
 *
 * Threading: none; call from any thread on buffers it owns.
 */
#ifndef ATTNKV_HUMANIZE_H
#define ATTNKV_HUMANIZE_H

#include <stddef.h>

#include "util/buf.h"

/* Flags. */
#define AKV_HUMANIZE_LF 1u /* end lines with "\n" instead of "\r\n" */

/* The most aggregates (arrays, maps, sets, pushes, attributes) that may
 * enclose one another; a reply nested deeper is refused as malformed. */
#define AKV_HUMANIZE_DEPTH_MAX 64

/* Translates the one reply at resp[0..len) (an attribute and the reply it
 * describes count as one) and appends its text to out. Returns the bytes of
 * resp it consumed (> 0); 0 if the reply is not complete yet ("need more":
 * call again with more bytes, from the same start); -EPROTO if it is
 * malformed (an unknown type byte, a bad number or length, a CR or LF inside
 * a line, a missing CRLF after a bulk, nesting deeper than
 * AKV_HUMANIZE_DEPTH_MAX); -ENOMEM if out cannot grow; -EINVAL for an
 * unknown flag or a NULL out (or a NULL resp with len > 0). On anything but
 * success out is exactly as it was. Bytes after the reply are not looked at.
 *
 * The call keeps nothing between calls: an incomplete reply is read again
 * from its start next time. Cost is linear in the reply (each byte read a
 * bounded number of times); the text is at most a bounded multiple of it
 * (a line is indented by at most 21 spaces per enclosing aggregate). */
long akv_humanize_run(const char *resp, size_t len, struct akv_buf *out, unsigned flags);

/* As akv_humanize_run, reply after reply, until resp[0..len) holds no more
 * complete reply. Returns the bytes consumed by the replies it translated, 0
 * if the first is incomplete, or the first reply's error. A bad or
 * incomplete reply after good ones stops the call there: it returns the good
 * replies' bytes, with their text appended, and the next call, starting at
 * the bad reply, returns its error. */
long akv_humanize_run_many(const char *resp, size_t len, struct akv_buf *out, unsigned flags);

#endif
