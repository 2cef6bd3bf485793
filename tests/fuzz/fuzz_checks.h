/*
 * fuzz_checks.h — invariant checks shared by the fuzz targets. A failed
 * check prints what broke and aborts, which libFuzzer reports as a crash
 * with the input that caused it (independent of NDEBUG, unlike assert).
 */
#ifndef LSMFS_FUZZ_CHECKS_H
#define LSMFS_FUZZ_CHECKS_H

#include "range_del.h"

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s: ", __FILE__, __LINE__, #cond);          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Checks what range_del.h promises of any fragmented list, whatever the
 * tombstones it was built from: every fragment non-empty (begin < end) and
 * covered by at least one sequence, fragments sorted and disjoint,
 * sequences strictly descending; and that max_covering agrees with a
 * linear scan at every fragment boundary. */
void fuzz_check_tombstones(const kv_frag_tombstones *list);

#endif
