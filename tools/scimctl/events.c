/* scimctl events: the tenant's change feed through the admin API (pull, with --follow as a
 * loop of long-polls). */
#include "scimctl.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FOLLOW_WAIT "30"

static void help(void)
{
    fputs("NAME\n"
          "    scimctl events - read the change feed of a tenant\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl --url URL events [--tenant T] [--after N] [--count N] [--follow] [--json]\n"
          "\n"
          "DESCRIPTION\n"
          "    Prints the events after sequence number N (default 0: from the start), one per\n"
          "    line: seq, time, type, resource id and name. With --follow it keeps waiting for\n"
          "    new events (long-poll) until interrupted. Event types and payloads:\n"
          "    docs/operations.md, \"Change feed and webhooks\".\n"
          "\n"
          "OPTIONS\n"
          "    --after N    start after this seq (the \"next\" value of an earlier read)\n"
          "    --count N    events per request (default 100, at most 1000)\n"
          "    --follow     keep reading as events are committed\n"
          "    --json       one event per line as JSON (for scripts)\n"
          "    --tenant T   the tenant (default: the admin token's own)\n"
          "\n"
          "EXIT STATUS\n"
          "    0 success, 1 error, 2 usage.\n"
          "\n"
          "EXAMPLES\n"
          "    scimctl events --after 120\n"
          "    scimctl events --follow --json | jq 'select(.type == \"user.deactivated\")'\n",
          stdout);
}

static void print_event(const json_t *e, int as_json)
{
    if (as_json) {
        char *s = json_dumps(e, JSON_COMPACT);
        if (s)
            printf("%s\n", s);
        free(s);
        return;
    }
    const char *name = json_string_value(json_object_get(e, "userName"));
    if (!name)
        name = json_string_value(json_object_get(e, "displayName"));
    const char *member = json_string_value(json_object_get(e, "memberId"));
    char changed[256] = "";
    const json_t *c = json_object_get(e, "changed");
    if (json_is_array(c))
        scimctl_text(c, changed, sizeof changed);
    printf("%-6lld %s  %-21s %s%s%s%s%s%s%s\n", (long long)json_integer_value(json_object_get(e, "seq")),
           json_string_value(json_object_get(e, "time")) ? json_string_value(json_object_get(e, "time")) : "-",
           json_string_value(json_object_get(e, "type")) ? json_string_value(json_object_get(e, "type")) : "-",
           json_string_value(json_object_get(e, "resourceId")) ? json_string_value(json_object_get(e, "resourceId")) : "-",
           name ? " " : "", name ? name : "", member ? " member=" : "", member ? member : "",
           changed[0] ? " changed=" : "", changed);
}

int scimctl_events(struct scimctl *c, int argc, char **argv)
{
    static const struct scimctl_opt opts[] = {{"--tenant", 1}, {"--json", 0}, {"--after", 1},
                                              {"--count", 1},  {"--follow", 0}, {NULL, 0}};
    enum { O_TENANT, O_JSON, O_AFTER, O_COUNT, O_FOLLOW };
    const char *v[5] = {0}, *pos[1];
    char t[128];
    int npos, rc;
    int64_t after = 0;

    for (int i = 1; i < argc; i++) {
        if (scimctl_is_help(argv[i])) {
            help();
            return SCIMCTL_OK;
        }
    }
    if ((rc = scimctl_parse("events", argc, argv, 1, opts, v, pos, 1, &npos)) != 0)
        return rc;
    if (npos != 0) {
        scimctl_errorf("events: unexpected argument: %s", pos[0]);
        return SCIMCTL_USAGE;
    }
    if (v[O_AFTER] && (scim_parse_i64(v[O_AFTER], &after) != 0 || after < 0)) {
        scimctl_errorf("events: --after must be a number >= 0");
        return SCIMCTL_USAGE;
    }
    if (!c->url) {
        scimctl_errorf("events: needs --url (the admin API)");
        return SCIMCTL_USAGE;
    }
    if (scimctl_resolve_tenant(c, v[O_TENANT], t, sizeof t) != 0)
        return SCIMCTL_ERROR;
    char *tenant = scimctl_escape(t);
    if (!tenant) {
        scimctl_errorf("out of memory");
        return SCIMCTL_ERROR;
    }
    rc = SCIMCTL_OK;
    for (;;) {
        char path[512], num[32];
        json_t *out = NULL;
        snprintf(num, sizeof num, "%lld", (long long)after);
        snprintf(path, sizeof path, "/admin/v1/tenants/%s/events", tenant);
        char *p = scimctl_query_add(scim_strdup(path), "after", num);
        p = scimctl_query_add(p, "count", v[O_COUNT]);
        if (v[O_FOLLOW])
            p = scimctl_query_add(p, "wait", FOLLOW_WAIT);
        if (!p) {
            scimctl_errorf("out of memory");
            rc = SCIMCTL_ERROR;
            break;
        }
        int h = scimctl_http(c, "GET", p, NULL, &out, NULL, NULL);
        free(p);
        if (h != 0) {
            rc = SCIMCTL_ERROR;
            break;
        }
        size_t i;
        const json_t *e, *items = json_object_get(out, "items");
        json_array_foreach(items, i, e)
            print_event(e, v[O_JSON] != NULL);
        fflush(stdout);
        json_int_t next = json_integer_value(json_object_get(out, "next"));
        size_t n = json_array_size(items);
        json_decref(out);
        if (next > after)
            after = (int64_t)next;
        /* without --follow: read until caught up */
        if (!v[O_FOLLOW] && n == 0)
            break;
    }
    free(tenant);
    return rc;
}
