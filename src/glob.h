/*
 * glob.h - Redis-style glob matching for KEYS, SCAN MATCH and CONFIG GET.
 *
 * Pattern syntax (byte-wise; no UTF-8 awareness, as in Redis):
 *   *       any sequence of bytes, including none
 *   ?       exactly one byte
 *   [abc]   one byte from the set; [^abc] one byte not in it; [a-z] a range
 *           (a reversed range such as [z-a] means the same as [a-z]); inside
 *           a class, \x stands for x, so [\]] matches ']'
 *   \x      the byte x itself, whatever it is
 * A '[' without a closing ']' takes the rest of the pattern as its set, and a
 * '\' at the very end of the pattern matches a literal '\', which is what
 * Redis does too.
 *
 * Matching is iterative (no recursion) and at worst O(len(pattern) *
 * len(string)), so a hostile pattern such as "*a*a*a*a*b" cannot make the
 * loop thread spin for long.
 *
 * Threading: none; pure functions.
 */
#ifndef ATTNKV_GLOB_H
#define ATTNKV_GLOB_H

#include <stddef.h>

/* Returns 1 when str[0..slen) matches pat[0..plen), 0 otherwise. With nocase
 * set, ASCII letters compare case-insensitively (CONFIG GET does this). */
int akv_glob_match(const char *pat, size_t plen, const char *str, size_t slen, int nocase);

#endif
