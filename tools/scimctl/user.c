/* scimctl user: the application's view of a tenant's users through the admin API (list, show,
 * sign-in check, create, delete). */
#include "scimctl.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    fputs("NAME\n"
          "    scimctl user - the users of a tenant, as the application sees them\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl --url URL user list [--tenant T] [--filter F] [--state S]\n"
          "                                [--start-index N] [--count N] [--json]\n"
          "    scimctl --url URL user show [--tenant T] ID [--json]\n"
          "    scimctl --url URL user sign-in [--tenant T] (ID | --user-name U) [--json]\n"
          "    scimctl --url URL user create [--tenant T] --json-body FILE [--json]\n"
          "    scimctl --url URL user delete [--tenant T] ID\n"
          "\n"
          "DESCRIPTION\n"
          "    list\n"
          "        Print the users: id, userName, displayName, active, origin (scim: from\n"
          "        the identity provider; local: made through the admin API), the token\n"
          "        that manages it, and its state (active, inactive, deprovisioned).\n"
          "    show ID\n"
          "        Print one user with its e-mails and groups.\n"
          "    sign-in (ID | --user-name U)\n"
          "        Whether the user may sign in to the application now, and why: allowed\n"
          "        only when it exists, is active, is not deprovisioned and its tenant is\n"
          "        enabled. The exit status is 0 either way: read the output (or --json).\n"
          "    create --json-body FILE\n"
          "        Create a local user from a SCIM User object in FILE (\"-\": standard\n"
          "        input). Refused unless the tenant allows manual updates\n"
          "        (scimctl settings set allow_manual_updates=true).\n"
          "    delete ID\n"
          "        Delete a user. For a user managed by the identity provider this needs\n"
          "        allow_manual_updates too.\n"
          "\n"
          "OPTIONS\n"
          "    --tenant T\n"
          "        The tenant. Default: the admin token's own tenant; the API tells it only\n"
          "        for operator tokens (\"default\"), so a tenant's own admin token must\n"
          "        name its tenant.\n"
          "    --filter F\n"
          "        A SCIM filter (RFC 7644 section 3.4.2.2), e.g. 'userName sw \"a\"'.\n"
          "    --state S\n"
          "        active, inactive, deprovisioned or all (default all).\n"
          "    --start-index N, --count N\n"
          "        The page: 1-based index of the first user, and the page size (default\n"
          "        100, at most 1000).\n"
          "    --json\n"
          "        Print the raw JSON answer of the admin API, for scripts.\n"
          "\n"
          "EXIT STATUS\n"
          "    0 success, 1 error (for example no such user, manual updates disabled: the\n"
          "    API's message is on standard error), 2 usage.\n"
          "\n"
          "EXAMPLES\n"
          "    scimctl user list --tenant acme --filter 'userName sw \"j\"' --state active\n"
          "    scimctl user show 2819c223-7f76-453a-919d-413861904646\n"
          "    scimctl user sign-in --user-name jane@example.com\n"
          "    scimctl user create --json-body jane.json\n"
          "    scimctl user delete 2819c223-7f76-453a-919d-413861904646\n",
          stdout);
}

static const char *state_of(const json_t *u)
{
    const json_t *st = json_object_get(u, "state");
    if (json_is_string(st))
        return json_string_value(st);
    if (json_is_true(json_object_get(u, "deprovisioned")))
        return "deprovisioned";
    return json_is_false(json_object_get(u, "active")) ? "inactive" : "active";
}

static void show_list(const json_t *list)
{
    static const char *const head[] = {"ID",     "USERNAME",   "DISPLAY NAME", "ACTIVE",
                                       "ORIGIN", "MANAGED BY", "STATE"};
    static const char *const keys[] = {"id", "userName", "displayName", "active", "origin",
                                       "managedBy"};
    struct scimctl_table t;
    const json_t *e, *items = json_object_get(list, "items");
    size_t i;
    if (scimctl_table_init(&t, 7, head) != 0)
        return;
    json_array_foreach(items, i, e) {
        char b[6][512];
        const char *row[7];
        for (size_t k = 0; k < 6; k++)
            row[k] = scimctl_text(json_object_get(e, keys[k]), b[k], sizeof b[k]);
        row[6] = state_of(e);
        if (scimctl_table_add(&t, row) != 0)
            break;
    }
    scimctl_table_print(&t, stdout);
    scimctl_table_free(&t);
    json_int_t total = json_integer_value(json_object_get(list, "total"));
    if (total > (json_int_t)json_array_size(items))
        fprintf(stderr, "%zu of %lld users shown (use --start-index and --count)\n",
                json_array_size(items), (long long)total);
}

static void show_one(const json_t *u)
{
    static const char *const keys[] = {"id",        "userName",      "displayName",
                                       "active",    "deprovisioned", "origin",
                                       "managedBy", "created",       "lastModified"};
    const json_t *e;
    size_t i;
    scimctl_print_fields(u, keys, sizeof keys / sizeof keys[0]);
    json_array_foreach(json_object_get(u, "emails"), i, e) {
        const json_t *val = json_is_string(e) ? e : json_object_get(e, "value");
        printf("email         %s%s\n", json_is_string(val) ? json_string_value(val) : "?",
               json_is_true(json_object_get(e, "primary")) ? " (primary)" : "");
    }
    json_array_foreach(json_object_get(u, "groups"), i, e) {
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *dn = json_string_value(json_object_get(e, "displayName"));
        const char *origin = json_string_value(json_object_get(e, "origin"));
        printf("group         %s %s (%s)\n", id ? id : "?", dn ? dn : "-", origin ? origin : "-");
    }
}

static void show_sign_in(const json_t *s)
{
    const json_t *u = json_object_get(s, "user");
    const char *reason = json_string_value(json_object_get(s, "reason"));
    const char *id = json_string_value(json_object_get(u, "id"));
    const char *name = json_string_value(json_object_get(u, "userName"));
    printf("allowed  %s\n", json_is_true(json_object_get(s, "allowed")) ? "yes" : "no");
    printf("reason   %s\n", reason ? reason : "-");
    if (id || name)
        printf("user     %s %s\n", id ? id : "-", name ? name : "-");
}

int scimctl_user(struct scimctl *c, int argc, char **argv)
{
    static const struct scimctl_opt opts[] = {
        {"--tenant", 1},      {"--json", 0},  {"--filter", 1},    {"--state", 1},
        {"--start-index", 1}, {"--count", 1}, {"--user-name", 1}, {"--json-body", 1},
        {NULL, 0}};
    enum { O_TENANT, O_JSON, O_FILTER, O_STATE, O_START, O_COUNT, O_USERNAME, O_BODY };
    const char *v[8] = {0}, *pos[2], *sub;
    char t[128], *path = NULL;
    json_t *body = NULL;
    int npos, rc;
    void (*show)(const json_t *) = NULL;
    const char *method = "GET";

    if (argc < 2) {
        scimctl_errorf("user: missing subcommand (list, show, sign-in, create, delete)");
        return SCIMCTL_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (scimctl_is_help(argv[i])) {
            help();
            return SCIMCTL_OK;
        }
    }
    sub = argv[1];
    if ((rc = scimctl_parse("user", argc, argv, 2, opts, v, pos, 2, &npos)) != 0)
        return rc;
    rc = SCIMCTL_USAGE;
    /* Options that do not belong to the subcommand are usage errors, not silently ignored. */
#define ONLY(cond, opt)                                                                        \
    do {                                                                                       \
        if (v[opt] && !(cond)) {                                                               \
            scimctl_errorf("user %s: %s does not apply", sub, opts[opt].name);                 \
            goto out;                                                                          \
        }                                                                                      \
    } while (0)
    int is_list = strcmp(sub, "list") == 0;
    ONLY(is_list, O_FILTER);
    ONLY(is_list, O_STATE);
    ONLY(is_list, O_START);
    ONLY(is_list, O_COUNT);
    ONLY(strcmp(sub, "sign-in") == 0, O_USERNAME);
    ONLY(strcmp(sub, "create") == 0, O_BODY);
#undef ONLY
    if (is_list) {
        if (npos != 0) {
            scimctl_errorf("user list: unexpected argument: %s", pos[0]);
            goto out;
        }
        path = scim_strdup("/users");
        path = scimctl_query_add(path, "filter", v[O_FILTER]);
        path = scimctl_query_add(path, "state", v[O_STATE]);
        path = scimctl_query_add(path, "startIndex", v[O_START]);
        path = scimctl_query_add(path, "count", v[O_COUNT]);
        show = show_list;
    } else if (strcmp(sub, "show") == 0 || strcmp(sub, "delete") == 0) {
        if (npos != 1) {
            scimctl_errorf("user %s: expected exactly one ID", sub);
            goto out;
        }
        path = scimctl_path_id("/users/", pos[0], "");
        if (strcmp(sub, "show") == 0)
            show = show_one;
        else
            method = "DELETE";
    } else if (strcmp(sub, "sign-in") == 0) {
        if ((npos == 1) == (v[O_USERNAME] != NULL) || npos > 1) {
            scimctl_errorf("user sign-in: give either ID or --user-name U");
            goto out;
        }
        if (npos == 1)
            path = scimctl_path_id("/users/", pos[0], "/sign-in");
        else
            path = scimctl_query_add(scim_strdup("/sign-in"), "userName", v[O_USERNAME]);
        show = show_sign_in;
    } else if (strcmp(sub, "create") == 0) {
        char *text;
        json_error_t jerr;
        if (npos != 0) {
            scimctl_errorf("user create: unexpected argument: %s", pos[0]);
            goto out;
        }
        if (!v[O_BODY]) {
            scimctl_errorf("user create: --json-body FILE is required");
            goto out;
        }
        if (!(text = scimctl_read_file(v[O_BODY]))) {
            rc = SCIMCTL_ERROR;
            goto out;
        }
        body = json_loads(text, 0, &jerr);
        free(text);
        if (!json_is_object(body)) {
            scimctl_errorf("user create: %s is not a JSON object: %s", v[O_BODY],
                           body ? "wrong type" : jerr.text);
            rc = SCIMCTL_ERROR;
            goto out;
        }
        path = scim_strdup("/users");
        method = "POST";
        show = show_one;
    } else {
        scimctl_errorf("user: unknown subcommand: %s", sub);
        goto out;
    }
    if (!c->url) {
        scimctl_errorf("user: needs --url (the admin API)");
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
    if (rc == SCIMCTL_OK && strcmp(method, "DELETE") == 0)
        fprintf(stderr, "user %s deleted\n", pos[0]);
out:
    json_decref(body);
    free(path);
    return rc;
}
