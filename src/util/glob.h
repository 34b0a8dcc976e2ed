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
 * A pattern is compiled once: every element that stands for one byte (a
 * literal, '?', a class) becomes a 256-bit set, so a class of any size costs
 * one lookup per byte of a key. The stars cut the pattern into segments of
 * such elements; the first is matched at the start of a key, the last at its
 * end, and each one between at its leftmost place after the one before,
 * which is all a '*' needs. Segments of 64 elements or more are searched
 * with the bit-parallel Shift-And method, shorter ones directly, so matching
 * a key of n bytes costs O((n + len(pattern)) * 64) at worst, with no
 * recursion and no backtracking. A compiled pattern takes at most about
 * 100 bytes per pattern byte (the sets, and 2 KiB of Shift-And table per 64
 * elements of a long segment).
 *
 * Threading: a compiled pattern is immutable; any thread may match with it.
 */
#ifndef ATTNKV_GLOB_H
#define ATTNKV_GLOB_H

#include <stddef.h>

/* The longest pattern accepted, in bytes (keys are at most 4096). */
#define AKV_GLOB_PATTERN_MAX 8192

struct akv_glob;

/* Compiles pat[0..plen). With nocase set, ASCII letters match either case
 * (CONFIG GET). Returns 0 and *out, -E2BIG when plen > AKV_GLOB_PATTERN_MAX,
 * or -ENOMEM. */
int akv_glob_compile(const char *pat, size_t plen, int nocase, struct akv_glob **out);

/* Returns 1 when str[0..slen) matches g, 0 otherwise. */
int akv_glob_exec(const struct akv_glob *g, const char *str, size_t slen);

/* Returns 1 when g matches every string ("*", "**", ...). */
int akv_glob_matches_all(const struct akv_glob *g);

/* Frees g. NULL is a no-op. */
void akv_glob_free(struct akv_glob *g);

/* Compiles, matches and frees: 1 on a match; 0 otherwise, also for a pattern
 * that cannot be compiled. */
int akv_glob_match(const char *pat, size_t plen, const char *str, size_t slen, int nocase);

#endif
