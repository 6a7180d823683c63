/* scimctl group: a tenant's groups and their local memberships through the admin API. */
#include "scimctl.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    fputs("NAME\n"
          "    scimctl group - the groups of a tenant, as the application sees them\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl --url URL group list [--tenant T] [--filter F] [--start-index N]\n"
          "                                 [--count N] [--json]\n"
          "    scimctl --url URL group show [--tenant T] ID [--json]\n"
          "    scimctl --url URL group create [--tenant T] --json-body FILE [--json]\n"
          "    scimctl --url URL group delete [--tenant T] ID\n"
          "    scimctl --url URL group add-member [--tenant T] GROUP-ID MEMBER-ID\n"
          "    scimctl --url URL group remove-member [--tenant T] GROUP-ID MEMBER-ID\n"
          "\n"
          "DESCRIPTION\n"
          "    list\n"
          "        Print the groups: id, displayName, origin (scim or local), the token\n"
          "        that manages it.\n"
          "    show ID\n"
          "        Print one group and its members with their origin (scim: set by the\n"
          "        identity provider; local: added here; default: a default group).\n"
          "    create --json-body FILE\n"
          "        Create a local group from a SCIM Group object in FILE (\"-\": standard\n"
          "        input); needs allow_manual_updates.\n"
          "    delete ID\n"
          "        Delete a group (a SCIM-managed one needs allow_manual_updates).\n"
          "    add-member GROUP-ID MEMBER-ID\n"
          "        Add a user or group to the group as a local membership: the identity\n"
          "        provider neither sees nor removes it.\n"
          "    remove-member GROUP-ID MEMBER-ID\n"
          "        Remove a membership.\n"
          "    Changes to groups managed by the identity provider need the tenant setting\n"
          "    allow_manual_updates=true.\n"
          "\n"
          "OPTIONS\n"
          "    --tenant T\n"
          "        The tenant. Default: the admin token's own tenant; the API tells it only\n"
          "        for operator tokens (\"default\"), so a tenant's own admin token must\n"
          "        name its tenant.\n"
          "    --filter F\n"
          "        A SCIM filter, e.g. 'displayName eq \"Sales\"'.\n"
          "    --start-index N, --count N\n"
          "        The page (default count 100, at most 1000).\n"
          "    --json\n"
          "        Print the raw JSON answer of the admin API, for scripts.\n"
          "\n"
          "EXIT STATUS\n"
          "    0 success, 1 error (the API's message is on standard error), 2 usage.\n"
          "\n"
          "EXAMPLES\n"
          "    scimctl group list --filter 'displayName sw \"Sales\"'\n"
          "    scimctl group show e9e30dba-f08f-4109-8486-d5c6a331660a\n"
          "    scimctl group add-member e9e30dba-f08f-4109-8486-d5c6a331660a \\\n"
          "        2819c223-7f76-453a-919d-413861904646\n"
          "    scimctl group remove-member e9e30dba-f08f-4109-8486-d5c6a331660a \\\n"
          "        2819c223-7f76-453a-919d-413861904646\n",
          stdout);
}

static void show_list(const json_t *list)
{
    static const char *const head[] = {"ID", "DISPLAY NAME", "ORIGIN", "MANAGED BY", "MEMBERS"};
    static const char *const keys[] = {"id", "displayName", "origin", "managedBy"};
    struct scimctl_table t;
    const json_t *e, *items = json_object_get(list, "items");
    size_t i;
    if (scimctl_table_init(&t, 5, head) != 0)
        return;
    json_array_foreach(items, i, e) {
        char b[5][512];
        const char *row[5];
        const json_t *m = json_object_get(e, "members");
        for (size_t k = 0; k < 4; k++)
            row[k] = scimctl_text(json_object_get(e, keys[k]), b[k], sizeof b[k]);
        if (json_is_array(m))
            snprintf(b[4], sizeof b[4], "%zu", json_array_size(m));
        else
            scimctl_text(json_object_get(e, "memberCount"), b[4], sizeof b[4]);
        row[4] = b[4];
        if (scimctl_table_add(&t, row) != 0)
            break;
    }
    scimctl_table_print(&t, stdout);
    scimctl_table_free(&t);
    json_int_t total = json_integer_value(json_object_get(list, "total"));
    if (total > (json_int_t)json_array_size(items))
        fprintf(stderr, "%zu of %lld groups shown (use --start-index and --count)\n",
                json_array_size(items), (long long)total);
}

static void show_one(const json_t *g)
{
    static const char *const keys[] = {"id",      "displayName", "origin",
                                       "managedBy", "created",   "lastModified"};
    static const char *const head[] = {"MEMBER", "TYPE", "DISPLAY", "ORIGIN"};
    const json_t *e, *members = json_object_get(g, "members");
    struct scimctl_table t;
    size_t i;
    scimctl_print_fields(g, keys, sizeof keys / sizeof keys[0]);
    if (!json_is_array(members) || json_array_size(members) == 0)
        return;
    if (scimctl_table_init(&t, 4, head) != 0)
        return;
    json_array_foreach(members, i, e) {
        char b[4][512];
        const json_t *id = json_object_get(e, "value");
        const json_t *display = json_object_get(e, "display");
        const char *row[4] = {
            scimctl_text(id ? id : json_object_get(e, "id"), b[0], sizeof b[0]),
            scimctl_text(json_object_get(e, "type"), b[1], sizeof b[1]),
            scimctl_text(display ? display : json_object_get(e, "displayName"), b[2],
                         sizeof b[2]),
            scimctl_text(json_object_get(e, "origin"), b[3], sizeof b[3]),
        };
        if (scimctl_table_add(&t, row) != 0)
            break;
    }
    putchar('\n');
    scimctl_table_print(&t, stdout);
    scimctl_table_free(&t);
}

int scimctl_group(struct scimctl *c, int argc, char **argv)
{
    static const struct scimctl_opt opts[] = {
        {"--tenant", 1},      {"--json", 0},  {"--filter", 1},
        {"--start-index", 1}, {"--count", 1}, {"--json-body", 1},
        {NULL, 0}};
    enum { O_TENANT, O_JSON, O_FILTER, O_START, O_COUNT, O_BODY };
    const char *v[6] = {0}, *pos[3], *sub, *method = "GET", *done = NULL;
    char t[128], *path = NULL;
    json_t *body = NULL;
    int npos, rc;
    void (*show)(const json_t *) = NULL;

    if (argc < 2) {
        scimctl_errorf("group: missing subcommand (list, show, create, delete, add-member, "
                       "remove-member)");
        return SCIMCTL_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (scimctl_is_help(argv[i])) {
            help();
            return SCIMCTL_OK;
        }
    }
    sub = argv[1];
    if ((rc = scimctl_parse("group", argc, argv, 2, opts, v, pos, 3, &npos)) != 0)
        return rc;
    rc = SCIMCTL_USAGE;
    int is_list = strcmp(sub, "list") == 0;
    if (!is_list && (v[O_FILTER] || v[O_START] || v[O_COUNT])) {
        scimctl_errorf("group %s: --filter, --start-index and --count are for list", sub);
        goto out;
    }
    if (v[O_BODY] && strcmp(sub, "create") != 0) {
        scimctl_errorf("group %s: --json-body is for create", sub);
        goto out;
    }
    if (is_list) {
        if (npos != 0) {
            scimctl_errorf("group list: unexpected argument: %s", pos[0]);
            goto out;
        }
        path = scim_strdup("/groups");
        path = scimctl_query_add(path, "filter", v[O_FILTER]);
        path = scimctl_query_add(path, "startIndex", v[O_START]);
        path = scimctl_query_add(path, "count", v[O_COUNT]);
        show = show_list;
    } else if (strcmp(sub, "show") == 0 || strcmp(sub, "delete") == 0) {
        if (npos != 1) {
            scimctl_errorf("group %s: expected exactly one ID", sub);
            goto out;
        }
        path = scimctl_path_id("/groups/", pos[0], "");
        if (strcmp(sub, "show") == 0) {
            show = show_one;
        } else {
            method = "DELETE";
            done = "group deleted";
        }
    } else if (strcmp(sub, "add-member") == 0 || strcmp(sub, "remove-member") == 0) {
        if (npos != 2) {
            scimctl_errorf("group %s: expected GROUP-ID MEMBER-ID", sub);
            goto out;
        }
        if (strcmp(sub, "add-member") == 0) {
            path = scimctl_path_id("/groups/", pos[0], "/members");
            body = json_pack("{s:s}", "value", pos[1]);
            if (!body) {
                scimctl_errorf("out of memory");
                rc = SCIMCTL_ERROR;
                goto out;
            }
            method = "POST";
            done = "member added";
        } else {
            char *g = scimctl_path_id("/groups/", pos[0], "/members/");
            path = g ? scimctl_path_id(g, pos[1], "") : NULL;
            free(g);
            method = "DELETE";
            done = "member removed";
        }
    } else if (strcmp(sub, "create") == 0) {
        char *text;
        json_error_t jerr;
        if (npos != 0) {
            scimctl_errorf("group create: unexpected argument: %s", pos[0]);
            goto out;
        }
        if (!v[O_BODY]) {
            scimctl_errorf("group create: --json-body FILE is required");
            goto out;
        }
        if (!(text = scimctl_read_file(v[O_BODY]))) {
            rc = SCIMCTL_ERROR;
            goto out;
        }
        body = json_loads(text, 0, &jerr);
        free(text);
        if (!json_is_object(body)) {
            scimctl_errorf("group create: %s is not a JSON object: %s", v[O_BODY],
                           body ? "wrong type" : jerr.text);
            rc = SCIMCTL_ERROR;
            goto out;
        }
        path = scim_strdup("/groups");
        method = "POST";
        show = show_one;
    } else {
        scimctl_errorf("group: unknown subcommand: %s", sub);
        goto out;
    }
    if (!c->url) {
        scimctl_errorf("group: needs --url (the admin API)");
        goto out;
    }
    rc = SCIMCTL_ERROR;
    if (!path) {
        scimctl_errorf("out of memory");
        goto out;
    }
    if (scimctl_resolve_tenant(c, v[O_TENANT], t, sizeof t) != 0)
        goto out;
    rc = scimctl_tenant_call(c, t, method, path, body, v[O_JSON] != NULL, show);
    if (rc == SCIMCTL_OK && done)
        fprintf(stderr, "%s\n", done);
out:
    json_decref(body);
    free(path);
    return rc;
}
