/* Data-driven filter/path parser tests.
 *
 * Case file format: blocks separated by a line "%%". In a block, lines starting with '#' are
 * comments and trailing empty lines are ignored; the two remaining lines are
 *   1. the input: a filter, or "path: " followed by a PATCH path (parsed with scim_path_parse);
 *      an empty line is the empty filter;
 *   2. the expectation: "=> <S-expression>" or "!! <position> <substring of the error detail>".
 * A filter prints as scim_filter_to_sexp. A path prints as
 *   (path <[urn:]attr[.sub]>)  or  (path <[urn:]attr[.sub]> <filter S-expression>)
 * e.g. (path emails.value (eq type "work")). Errors must be 400 with scimType invalidFilter
 * (filters) or invalidPath (paths). Parsing uses no registry and the limits
 * {max_length 4096, max_depth 32}. Every failing block is printed; the exit status is 1 if any
 * failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "scim/filter.h"

#define MAX_LINES 64

static char *path_sexp(const struct scim_path *p)
{
    struct scim_buf b;
    scim_buf_init(&b, 0);
    scim_buf_adds(&b, "(path ");
    if (p->a.urn)
        scim_buf_printf(&b, "%s:", p->a.urn);
    scim_buf_adds(&b, p->a.attr);
    if (p->a.sub)
        scim_buf_printf(&b, ".%s", p->a.sub);
    if (p->filter) {
        char *f = scim_filter_to_sexp(p->filter);
        scim_buf_printf(&b, " %s", f ? f : "<oom>");
        free(f);
    }
    scim_buf_addc(&b, ')');
    return scim_buf_take(&b);
}

/* Runs one case; returns 0 when it passes. */
static int run_case(const char *file, int line, const char *input, const char *expect)
{
    const struct scim_filter_limits lim = {4096, 32};
    struct scim_err err;
    char *got = NULL;
    int rc, ok = 0;
    bool is_path = strncmp(input, "path: ", 6) == 0;

    scim_err_clear(&err);
    if (is_path) {
        struct scim_path *p = NULL;
        rc = scim_path_parse(input + 6, &lim, NULL, &p, &err);
        if (rc == 0) {
            got = path_sexp(p);
            scim_path_free(p);
        }
    } else {
        struct scim_filter *f = NULL;
        rc = scim_filter_parse(input, &lim, NULL, &f, &err);
        if (rc == 0) {
            got = scim_filter_to_sexp(f);
            scim_filter_free(f);
        }
    }

    if (strncmp(expect, "=> ", 3) == 0) {
        ok = rc == 0 && got && strcmp(got, expect + 3) == 0;
    } else if (strncmp(expect, "!! ", 3) == 0) {
        char *end;
        long pos = strtol(expect + 3, &end, 10);
        const char *sub = *end == ' ' ? end + 1 : end;
        const char *type = is_path ? SCIM_TYPE_INVALID_PATH : SCIM_TYPE_INVALID_FILTER;
        ok = rc == -1 && err.status == 400 && err.scim_type && strcmp(err.scim_type, type) == 0 &&
             err.pos == pos && strstr(err.detail, sub) != NULL;
    } else {
        fprintf(stderr, "%s:%d: expectation must start with \"=> \" or \"!! \"\n", file, line);
    }
    if (!ok) {
        fprintf(stderr, "FAIL %s:%d\n  input:    %s\n  expected: %s\n", file, line, input, expect);
        if (rc == 0)
            fprintf(stderr, "  got:      => %s\n", got ? got : "<oom>");
        else
            fprintf(stderr, "  got:      !! %d %s (status %d, scimType %s)\n", err.pos, err.detail,
                    err.status, err.scim_type ? err.scim_type : "-");
    }
    free(got);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASEFILE\n", argv[0]);
        return 2;
    }
    FILE *fp = fopen(argv[1], "r");
    if (!fp) {
        perror(argv[1]);
        return 2;
    }
    char *lines[MAX_LINES];
    int nlines = 0, lineno = 0, block_line = 1, failed = 0, cases = 0;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    bool eof = false;

    while (!eof) {
        n = getline(&buf, &cap, fp);
        eof = n < 0;
        if (!eof) {
            lineno++;
            while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                buf[--n] = '\0';
        }
        if (eof || strcmp(buf, "%%") == 0) {
            while (nlines > 0 && lines[nlines - 1][0] == '\0')
                free(lines[--nlines]);
            if (nlines == 2) {
                cases++;
                failed += run_case(argv[1], block_line, lines[0], lines[1]);
            } else if (nlines != 0) {
                fprintf(stderr, "FAIL %s:%d: a block needs exactly 2 lines, has %d\n", argv[1],
                        block_line, nlines);
                failed++;
            }
            for (int k = 0; k < nlines; k++)
                free(lines[k]);
            nlines = 0;
            block_line = lineno + 1;
            continue;
        }
        if (buf[0] == '#')
            continue;
        if (nlines >= MAX_LINES) {
            fprintf(stderr, "%s:%d: block too long\n", argv[1], lineno);
            return 2;
        }
        if (nlines == 0)
            block_line = lineno;
        if (!(lines[nlines++] = strdup(buf))) {
            fprintf(stderr, "out of memory\n");
            return 2;
        }
    }
    free(buf);
    fclose(fp);
    if (cases == 0) {
        fprintf(stderr, "%s: no cases\n", argv[1]);
        return 1;
    }
    printf("%s: %d cases, %d failed\n", argv[1], cases, failed);
    return failed ? 1 : 0;
}
