/*
 * runsuite.h - the end of every Check test program: run one suite and turn
 * its failures into the exit status meson reads.
 */
#ifndef ATTNKV_TEST_RUNSUITE_H
#define ATTNKV_TEST_RUNSUITE_H

#include <check.h>
#include <stdlib.h>

/* Runs every test of s (which it frees) and returns EXIT_SUCCESS or
 * EXIT_FAILURE, for main to return. */
static inline int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
