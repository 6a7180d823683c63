/* scimctl log: the provisioning log of a tenant through the admin API
 * (GET /admin/v1/tenants/{t}/log): a table, JSON, CSV, or followed as it grows. */
#include "scimctl.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FOLLOW_BATCH "1000"

static void help(void)
{
    fputs("NAME\n"
          "    scimctl log - the provisioning log: what the identity providers asked, and\n"
          "    what they were answered\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl --url URL log [--tenant T] [--status 2xx|4xx|5xx|CODE] [--user U]\n"
          "                          [--resource-id ID] [--resource-type User|Group]\n"
          "                          [--token NAME] [--client NAME] [--since T] [--until T]\n"
          "                          [--count N] [--follow] [--json | --csv]\n"
          "\n"
          "DESCRIPTION\n"
          "    Prints the newest entries first (--count, default 100, at most 1000): time,\n"
          "    status, method, path, userName, token, client and the error detail.\n"
          "    --user matches userName or displayName exactly, ignoring case. --since and\n"
          "    --until take RFC 3339 times (2025-01-31T08:00:00Z).\n"
          "    --follow prints the last --count entries (default 10), oldest first, then\n"
          "    polls every second and prints new entries as they come, until interrupted.\n"
          "    --json prints the API's answer (with --follow: one JSON object per line).\n"
          "    --csv prints a header row and one row per entry (RFC 4180 quoting).\n"
          "\n"
          "EXAMPLES\n"
          "    Why did alice fail?\n"
          "        scimctl log --user alice@example.com --status 4xx\n"
          "    Watch Okta's traffic:\n"
          "        scimctl log --client okta --follow\n"
          "    Export a day:\n"
          "        scimctl log --since 2025-01-31T00:00:00Z --until 2025-02-01T00:00:00Z \\\n"
          "            --count 1000 --csv > log.csv\n",
          stdout);
}

static const char *const csv_cols[] = {
    "id", "time", "status", "method", "path", "resourceType", "resourceId", "userName",
    "displayName", "token", "client", "scimType", "detail", "latencyMs", "compat",
    "requestId", "bulkOperation"};
#define N_CSV (sizeof csv_cols / sizeof csv_cols[0])

/* One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF; quotes doubled. */
static void csv_field(const char *s, FILE *f)
{
    if (!s[strcspn(s, ",\"\r\n")]) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_header(void)
{
    for (size_t i = 0; i < N_CSV; i++) {
        if (i)
            fputc(',', stdout);
        fputs(csv_cols[i], stdout);
    }
    fputc('\n', stdout);
}

static void csv_row(const json_t *e)
{
    char buf[1024];
    for (size_t i = 0; i < N_CSV; i++) {
        const json_t *v = json_object_get(e, csv_cols[i]);
        const char *text;
        if (i)
            fputc(',', stdout);
        if (!v || json_is_null(v))
            continue;
        if (json_is_array(v)) { /* compat: names joined with ';' inside one field */
            size_t k, n = 0;
            const json_t *x;
            buf[0] = '\0';
            json_array_foreach(v, k, x) {
                int w = snprintf(buf + n, sizeof buf - n, "%s%s", k ? ";" : "",
                                 json_string_value(x) ? json_string_value(x) : "");
                if (w < 0 || (size_t)w >= sizeof buf - n)
                    break;
                n += (size_t)w;
            }
            text = buf;
        } else if (json_is_real(v)) {
            snprintf(buf, sizeof buf, "%.3f", json_real_value(v));
            text = buf;
        } else {
            text = scimctl_text(v, buf, sizeof buf);
        }
        csv_field(text, stdout);
    }
    fputc('\n', stdout);
}

static void print_entry(const json_t *e, int as_json, int as_csv)
{
    if (as_json) {
        char *s = json_dumps(e, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
    } else if (as_csv) {
        csv_row(e);
    } else {
        char b[7][512];
        const char *detail = json_string_value(json_object_get(e, "detail"));
        printf("%s  %s  %-6s %s  user=%s  token=%s  client=%s%s%s\n",
               scimctl_text(json_object_get(e, "time"), b[0], sizeof b[0]),
               scimctl_text(json_object_get(e, "status"), b[1], sizeof b[1]),
               scimctl_text(json_object_get(e, "method"), b[2], sizeof b[2]),
               scimctl_text(json_object_get(e, "path"), b[3], sizeof b[3]),
               scimctl_text(json_object_get(e, "userName"), b[4], sizeof b[4]),
               scimctl_text(json_object_get(e, "token"), b[5], sizeof b[5]),
               scimctl_text(json_object_get(e, "client"), b[6], sizeof b[6]),
               detail ? "  detail=" : "", detail ? detail : "");
    }
}

/* The filters shared by the one-shot and the follow queries, as a query string. */
static char *filters(const char *const *v, const int *keys, const char *const *names, size_t n)
{
    char *q = scim_strdup("");
    for (size_t i = 0; q && i < n; i++)
        q = scimctl_query_add(q, names[i], v[keys[i]]);
    return q;
}

static char *with(const char *base, const char *name, const char *value)
{
    char *q = scim_strdup(base);
    return q ? scimctl_query_add(q, name, value) : NULL;
}

/* "/admin/v1/tenants/{t}/log" + query, malloc'd (NULL on out of memory). */
static char *log_path(const char *tenant, const char *query)
{
    char *seg = query ? scimctl_path_id("/admin/v1/tenants/", tenant, "/log") : NULL, *path;
    size_t len;
    if (!seg)
        return NULL;
    len = strlen(seg) + strlen(query) + 1;
    if ((path = malloc(len)) != NULL)
        snprintf(path, len, "%s%s", seg, query);
    free(seg);
    return path;
}

/* Prints the items of a page (in the order given) and advances *last to the highest id. */
static void print_items(const json_t *page, int as_json, int as_csv, int64_t *last, int reverse)
{
    const json_t *items = json_object_get(page, "items");
    size_t n = json_array_size(items);
    for (size_t k = 0; k < n; k++) {
        const json_t *e = json_array_get(items, reverse ? n - 1 - k : k);
        json_int_t id = json_integer_value(json_object_get(e, "id"));
        print_entry(e, as_json, as_csv);
        if (id > *last)
            *last = id;
    }
    fflush(stdout);
}

static int follow(struct scimctl *c, const char *tenant, const char *base, const char *count,
                  int as_json, int as_csv)
{
    json_t *out = NULL;
    char *q = NULL, *path = NULL;
    int64_t last = 0;

    /* the last `count` entries, printed oldest first, then whatever comes after them */
    if (!(q = with(base, "count", count ? count : "10")) || !(path = log_path(tenant, q)))
        goto nomem;
    if (scimctl_http(c, "GET", path, NULL, &out, NULL, NULL) != 0)
        goto out;
    if (as_csv)
        csv_header();
    print_items(out, as_json, as_csv, &last, 1);
    for (;;) {
        char after[32];
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
        json_decref(out);
        out = NULL;
        free(q);
        free(path);
        path = NULL;
        snprintf(after, sizeof after, "%lld", (long long)last);
        q = with(base, "order", "asc");
        q = scimctl_query_add(q, "after", after);
        q = scimctl_query_add(q, "count", FOLLOW_BATCH);
        if (!(path = log_path(tenant, q)))
            goto nomem;
        if (scimctl_http(c, "GET", path, NULL, &out, NULL, NULL) != 0)
            goto out;
        print_items(out, as_json, as_csv, &last, 0);
    }
nomem:
    scimctl_errorf("out of memory");
out:
    json_decref(out);
    free(q);
    free(path);
    return SCIMCTL_ERROR;
}

int scimctl_log(struct scimctl *c, int argc, char **argv)
{
    static const struct scimctl_opt opts[] = {
        {"--tenant", 1}, {"--json", 0},  {"--csv", 0},   {"--status", 1},
        {"--user", 1},   {"--resource-id", 1}, {"--resource-type", 1}, {"--since", 1},
        {"--until", 1},  {"--token", 1}, {"--client", 1}, {"--count", 1},
        {"--follow", 0}, {NULL, 0}};
    enum { O_TENANT, O_JSON, O_CSV, O_STATUS, O_USER, O_RID, O_RTYPE, O_SINCE, O_UNTIL,
           O_TOKEN, O_CLIENT, O_COUNT, O_FOLLOW, O_N };
    static const int fkeys[] = {O_STATUS, O_USER, O_RID, O_RTYPE, O_SINCE, O_UNTIL, O_TOKEN,
                                O_CLIENT};
    static const char *const fnames[] = {"status", "user", "resourceId", "resourceType",
                                         "since", "until", "token", "client"};
    const char *v[O_N] = {0}, *pos[1];
    char t[128], *base = NULL, *q = NULL;
    int npos, rc;

    for (int i = 1; i < argc; i++) {
        if (scimctl_is_help(argv[i])) {
            help();
            return SCIMCTL_OK;
        }
    }
    if ((rc = scimctl_parse("log", argc, argv, 1, opts, v, pos, 1, &npos)) != 0)
        return rc;
    if (npos) {
        scimctl_errorf("log: unexpected argument: %s", pos[0]);
        return SCIMCTL_USAGE;
    }
    if (v[O_JSON] && v[O_CSV]) {
        scimctl_errorf("log: --json and --csv exclude each other");
        return SCIMCTL_USAGE;
    }
    if (!c->url) {
        scimctl_errorf("log: needs --url (the admin API)");
        return SCIMCTL_USAGE;
    }
    if (scimctl_resolve_tenant(c, v[O_TENANT], t, sizeof t) != 0)
        return SCIMCTL_ERROR;
    rc = SCIMCTL_ERROR;
    if (!(base = filters(v, fkeys, fnames, sizeof fkeys / sizeof fkeys[0]))) {
        scimctl_errorf("out of memory");
        goto out;
    }
    if (v[O_FOLLOW]) {
        rc = follow(c, t, base, v[O_COUNT], v[O_JSON] != NULL, v[O_CSV] != NULL);
        goto out;
    }
    if (!(q = with(base, "count", v[O_COUNT]))) {
        scimctl_errorf("out of memory");
        goto out;
    }
    {
        json_t *out = NULL;
        char *raw = NULL, *path = log_path(t, q);
        if (!path) {
            scimctl_errorf("out of memory");
            goto out;
        }
        if (scimctl_http(c, "GET", path, NULL, &out, &raw, NULL) == 0) {
            rc = SCIMCTL_OK;
            if (v[O_JSON]) {
                rc = scimctl_print_raw(raw);
            } else {
                json_t *items = json_object_get(out, "items"), *e;
                size_t i;
                if (v[O_CSV])
                    csv_header();
                json_array_foreach(items, i, e)
                    print_entry(e, 0, v[O_CSV] != NULL);
            }
        }
        json_decref(out);
        free(raw);
        free(path);
    }
out:
    free(base);
    free(q);
    return rc;
}
