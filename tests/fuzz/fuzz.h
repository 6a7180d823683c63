/* Shared bits of the fuzz harnesses (tests/fuzz/fuzz_<name>.c). Each harness defines
 * LLVMFuzzerTestOneInput; it is linked either with libFuzzer (SCIMD_FUZZ=ON, clang) or with
 * driver.c, which replays a corpus directory. */
#ifndef SCIMD_TESTS_FUZZ_FUZZ_H
#define SCIMD_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scim/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The registry is built once and kept for the life of the process, as in scimd (it is read-only
 * after start-up). Still reachable at exit, so LeakSanitizer does not count it. */
static struct scim_registry *fuzz_registry;

static inline const struct scim_registry *fuzz_reg(void)
{
    if (!fuzz_registry)
        fuzz_registry = scim_registry_new();
    if (!fuzz_registry)
        abort(); /* the harness cannot run at all; not a finding */
    return fuzz_registry;
}

/* A NUL-terminated copy of the input (the parsers take C strings). An embedded NUL simply ends
 * the string early, as it would after query-string decoding. NULL on out of memory. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return NULL;
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
