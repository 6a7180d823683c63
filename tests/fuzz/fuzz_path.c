/* Fuzzes the PATCH path parser (scim_path_parse) with scimd's default limits, with and without
 * the schema registry, and renders any value filter it contains (scim_filter_to_sexp). Any input
 * must give either a path or a 400 invalidPath (or invalidFilter from inside the brackets) with
 * a position inside the input; the harness aborts otherwise. */
#include <stdio.h>

#include "common/err.h"
#include "fuzz.h"
#include "scim/filter.h"

static void check(const char *text, const struct scim_registry *reg)
{
    const struct scim_filter_limits lim = {8192, 100};
    struct scim_path *p = NULL;
    struct scim_err err;

    scim_err_clear(&err);
    if (scim_path_parse(text, &lim, reg, &p, &err)) {
        if (err.status != 400 || !err.scim_type ||
            (strcmp(err.scim_type, SCIM_TYPE_INVALID_PATH) != 0 &&
             strcmp(err.scim_type, SCIM_TYPE_INVALID_FILTER) != 0) ||
            err.pos < -1 || err.pos > (int)strlen(text)) {
            fprintf(stderr, "fuzz_path: unexpected error %d %s pos %d: %s\n", err.status,
                    err.scim_type ? err.scim_type : "(null)", err.pos, err.detail);
            abort();
        }
        return;
    }
    if (!p->a.attr) {
        fprintf(stderr, "fuzz_path: parsed path without an attribute\n");
        abort();
    }
    if (p->filter)
        free(scim_filter_to_sexp(p->filter));
    scim_path_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size > 16384)
        return 0;
    text = fuzz_cstr(data, size);
    if (!text)
        return 0;
    check(text, NULL);
    check(text, fuzz_reg());
    free(text);
    return 0;
}
