/* scimctl command-line plumbing shared by the command groups: option parsing, aligned tables,
 * raw JSON output, reading a body file. */
#include "scimctl.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int scimctl_parse(const char *what, int argc, char **argv, int start,
                  const struct scimctl_opt *opts, const char **values, const char **pos,
                  int max_pos, int *n_pos)
{
    *n_pos = 0;
    for (int i = start; i < argc; i++) {
        const char *a = argv[i];
        int matched = 0;
        if (strcmp(a, "--") == 0) {
            /* Everything after "--" is positional (a filter may start with a dash). */
            for (i++; i < argc; i++) {
                if (*n_pos >= max_pos) {
                    scimctl_errorf("%s: unexpected argument: %s", what, argv[i]);
                    return SCIMCTL_USAGE;
                }
                pos[(*n_pos)++] = argv[i];
            }
            break;
        }
        for (size_t k = 0; opts && opts[k].name; k++) {
            size_t n = strlen(opts[k].name);
            if (strncmp(a, opts[k].name, n) != 0 || (a[n] != '\0' && a[n] != '='))
                continue;
            matched = 1;
            if (!opts[k].has_value) {
                if (a[n] == '=') {
                    scimctl_errorf("%s: %s takes no value", what, opts[k].name);
                    return SCIMCTL_USAGE;
                }
                values[k] = "1";
            } else if (a[n] == '=') {
                values[k] = a + n + 1;
            } else if (i + 1 < argc) {
                values[k] = argv[++i];
            } else {
                scimctl_errorf("%s: %s needs a value", what, opts[k].name);
                return SCIMCTL_USAGE;
            }
            break;
        }
        if (matched)
            continue;
        if (a[0] == '-' && a[1] != '\0') {
            scimctl_errorf("%s: unknown option: %s", what, a);
            return SCIMCTL_USAGE;
        }
        if (*n_pos >= max_pos) {
            scimctl_errorf("%s: unexpected argument: %s", what, a);
            return SCIMCTL_USAGE;
        }
        pos[(*n_pos)++] = a;
    }
    return SCIMCTL_OK;
}

int scimctl_table_init(struct scimctl_table *t, size_t cols, const char *const *header)
{
    *t = (struct scimctl_table){.cols = cols};
    return header ? scimctl_table_add(t, header) : 0;
}

int scimctl_table_add(struct scimctl_table *t, const char *const *row)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **cells = realloc(t->cells, cap * t->cols * sizeof *cells);
        if (!cells)
            return -1;
        t->cells = cells;
        t->cap = cap;
    }
    for (size_t k = 0; k < t->cols; k++) {
        char *s = scim_strdup(row[k] ? row[k] : "-");
        if (!s) {
            for (size_t j = 0; j < k; j++)
                free(t->cells[t->rows * t->cols + j]);
            return -1;
        }
        t->cells[t->rows * t->cols + k] = s;
    }
    t->rows++;
    return 0;
}

void scimctl_table_print(const struct scimctl_table *t, FILE *f)
{
    size_t width[32] = {0};
    size_t cols = t->cols < 32 ? t->cols : 32;
    for (size_t r = 0; r < t->rows; r++)
        for (size_t k = 0; k < cols; k++) {
            size_t n = strlen(t->cells[r * t->cols + k]);
            if (n > width[k])
                width[k] = n;
        }
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t k = 0; k < cols; k++) {
            const char *cell = t->cells[r * t->cols + k];
            if (k + 1 == cols)
                fprintf(f, "%s\n", cell); /* no trailing blanks */
            else
                fprintf(f, "%-*s  ", (int)width[k], cell);
        }
    }
}

void scimctl_table_free(struct scimctl_table *t)
{
    for (size_t i = 0; i < t->rows * t->cols; i++)
        free(t->cells[i]);
    free(t->cells);
    *t = (struct scimctl_table){0};
}

const char *scimctl_text(const json_t *v, char *buf, size_t n)
{
    if (n == 0)
        return "";
    buf[0] = '\0';
    if (!v || json_is_null(v)) {
        snprintf(buf, n, "-");
    } else if (json_is_string(v)) {
        snprintf(buf, n, "%s", json_string_value(v));
    } else if (json_is_true(v)) {
        snprintf(buf, n, "true");
    } else if (json_is_false(v)) {
        snprintf(buf, n, "false");
    } else if (json_is_integer(v)) {
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    } else if (json_is_array(v) && json_array_size(v) > 0 &&
               json_is_string(json_array_get(v, 0))) {
        size_t i, used = 0;
        const json_t *e;
        json_array_foreach(v, i, e) {
            int w = snprintf(buf + used, n - used, "%s%s", i ? " " : "",
                             json_is_string(e) ? json_string_value(e) : "?");
            if (w < 0 || (size_t)w >= n - used)
                break;
            used += (size_t)w;
        }
    } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(buf, n, "%s", s ? s : "?");
        free(s);
    }
    return buf;
}

int scimctl_print_raw(const char *raw)
{
    size_t n = raw ? strlen(raw) : 0;
    if (n == 0)
        return SCIMCTL_OK;
    fputs(raw, stdout);
    if (raw[n - 1] != '\n')
        fputc('\n', stdout);
    return fflush(stdout) == 0 ? SCIMCTL_OK : SCIMCTL_ERROR;
}

char *scimctl_read_file(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f) {
        scimctl_errorf("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = ncap > (size_t)64 << 20 ? NULL : realloc(buf, ncap);
            if (!nb) {
                scimctl_errorf("%s: too large or out of memory", path);
                free(buf);
                buf = NULL;
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        scimctl_errorf("cannot read %s", path);
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[len] = '\0';
out:
    if (f != stdin)
        fclose(f);
    return buf;
}

void scimctl_print_fields(const json_t *o, const char *const *keys, size_t n)
{
    struct scimctl_table t;
    if (scimctl_table_init(&t, 2, NULL) != 0)
        return;
    for (size_t k = 0; k < n; k++) {
        char b[2048];
        const char *row[2] = {keys[k], scimctl_text(json_object_get(o, keys[k]), b, sizeof b)};
        if (scimctl_table_add(&t, row) != 0)
            break;
    }
    scimctl_table_print(&t, stdout);
    scimctl_table_free(&t);
}

char *scimctl_query_add(char *q, const char *name, const char *value)
{
    char *esc, *out;
    size_t n;
    if (!q)
        return NULL;
    if (!value)
        return q;
    esc = scimctl_escape(value);
    n = strlen(q) + strlen(name) + (esc ? strlen(esc) : 0) + 3;
    out = esc ? malloc(n) : NULL;
    if (out)
        snprintf(out, n, "%s%c%s=%s", q, strchr(q, '?') ? '&' : '?', name, esc);
    free(esc);
    free(q);
    return out;
}

char *scimctl_path_id(const char *prefix, const char *id, const char *suffix)
{
    char *esc = scimctl_escape(id), *out;
    size_t n;
    if (!esc)
        return NULL;
    n = strlen(prefix) + strlen(esc) + strlen(suffix) + 1;
    out = malloc(n);
    if (out)
        snprintf(out, n, "%s%s%s", prefix, esc, suffix);
    free(esc);
    return out;
}
