/* scimctl tenant: list, create, show, disable, enable and delete tenants through the admin API;
 * create and list also work on the database (--db) to bootstrap a tenant before scimd runs. */
#include "scimctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    fputs("NAME\n"
          "    scimctl tenant - manage the tenants of scimd\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl [--db URI | --url URL] tenant list [--json]\n"
          "    scimctl [--db URI | --url URL] tenant create NAME [--json]\n"
          "    scimctl --url URL tenant show [NAME] [--json]\n"
          "    scimctl --url URL tenant disable NAME [--json]\n"
          "    scimctl --url URL tenant enable NAME [--json]\n"
          "    scimctl --url URL tenant delete NAME\n"
          "\n"
          "DESCRIPTION\n"
          "    A tenant is one identity provider's (or one customer's) separate set of users,\n"
          "    groups, tokens and settings. The tenant \"default\" always exists; its admin\n"
          "    tokens manage every tenant, the admin tokens of another tenant only their own.\n"
          "\n"
          "    list\n"
          "        Print the tenants: name, created, disabled.\n"
          "    create NAME\n"
          "        Create a tenant. NAME: 1-63 characters from a-z, 0-9 and \"-\", not\n"
          "        starting with \"-\". With --db this is how a tenant and then its first\n"
          "        admin token (scimctl token create --tenant NAME --scopes admin) are made\n"
          "        before scimd starts.\n"
          "    show [NAME]\n"
          "        Print a tenant: state, counts of users, groups and tokens, and settings.\n"
          "        Default NAME: \"default\" for an operator token (a tenant's own admin\n"
          "        token must give NAME).\n"
          "    disable NAME\n"
          "        Refuse every request of the tenant's tokens (403 \"tenant is disabled\").\n"
          "        Its data stays. The tenant \"default\" cannot be disabled.\n"
          "    enable NAME\n"
          "        Undo disable.\n"
          "    delete NAME\n"
          "        Delete the tenant and all its data: tokens, users, groups, memberships,\n"
          "        settings. This cannot be undone. The tenant \"default\" cannot be deleted.\n"
          "\n"
          "OPTIONS\n"
          "    --json\n"
          "        Print the raw JSON answer of the admin API (with --db: the store's list\n"
          "        or tenant), for scripts.\n"
          "\n"
          "EXIT STATUS\n"
          "    0 success, 1 error (for example no such tenant, the name is taken, the token\n"
          "    lacks the admin scope; the API's message is on standard error), 2 usage.\n"
          "\n"
          "EXAMPLES\n"
          "    scimctl --db /var/lib/scimd/scimd.db tenant create acme\n"
          "    scimctl tenant list\n"
          "    scimctl tenant show acme --json\n"
          "    scimctl tenant disable acme\n"
          "    scimctl tenant delete acme\n",
          stdout);
}

static void show_list(const json_t *list)
{
    static const char *const head[] = {"NAME", "CREATED", "DISABLED"};
    struct scimctl_table t;
    const json_t *e;
    size_t i;
    if (scimctl_table_init(&t, 3, head) != 0)
        return;
    json_array_foreach(json_object_get(list, "items"), i, e) {
        char b[3][256];
        const char *row[3] = {
            scimctl_text(json_object_get(e, "name"), b[0], sizeof b[0]),
            scimctl_text(json_object_get(e, "created"), b[1], sizeof b[1]),
            scimctl_text(json_object_get(e, "disabled"), b[2], sizeof b[2]),
        };
        if (scimctl_table_add(&t, row) != 0)
            break;
    }
    scimctl_table_print(&t, stdout);
    scimctl_table_free(&t);
}

/* One tenant as "key  value" lines, then its settings. */
static void show_one(const json_t *tn)
{
    static const char *const keys[] = {"name", "created", "disabled"};
    static const char *const stats[] = {"users", "groups", "tokens"};
    const json_t *settings = json_object_get(tn, "settings"), *v;
    const char *key;
    struct scimctl_table t;
    char b[1024];
    if (scimctl_table_init(&t, 2, NULL) != 0)
        return;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *row[2] = {keys[k], scimctl_text(json_object_get(tn, keys[k]), b, sizeof b)};
        if (scimctl_table_add(&t, row) != 0)
            goto out;
    }
    for (size_t k = 0; k < sizeof stats / sizeof stats[0]; k++) {
        const json_t *st = json_object_get(json_object_get(tn, "stats"), stats[k]);
        const char *row[2] = {stats[k], scimctl_text(st, b, sizeof b)};
        if (st && scimctl_table_add(&t, row) != 0)
            goto out;
    }
    json_object_foreach((json_t *)settings, key, v) {
        char name[256];
        snprintf(name, sizeof name, "settings.%s", key);
        const char *row[2] = {name, scimctl_text(v, b, sizeof b)};
        if (scimctl_table_add(&t, row) != 0)
            goto out;
    }
    scimctl_table_print(&t, stdout);
out:
    scimctl_table_free(&t);
}

static int need_url(const struct scimctl *c, const char *what)
{
    if (c->url)
        return 0;
    scimctl_errorf("tenant %s: needs --url (the admin API); with --db only create and list", what);
    return -1;
}

/* Checks that exactly one NAME was given. */
static int one_name(const char *what, int n)
{
    if (n != 1) {
        scimctl_errorf("tenant %s: expected exactly one NAME", what);
        return -1;
    }
    return 0;
}

int scimctl_tenant(struct scimctl *c, int argc, char **argv)
{
    static const struct scimctl_opt opts[] = {{"--json", 0}, {NULL, 0}};
    const char *v[1] = {0}, *pos[2], *sub;
    int npos, rc, as_json;

    if (argc < 2) {
        scimctl_errorf("tenant: missing subcommand (list, create, show, disable, enable, delete)");
        return SCIMCTL_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (scimctl_is_help(argv[i])) {
            help();
            return SCIMCTL_OK;
        }
    }
    sub = argv[1];
    if ((rc = scimctl_parse("tenant", argc, argv, 2, opts, v, pos, 2, &npos)) != 0)
        return rc;
    as_json = v[0] != NULL;

    if (strcmp(sub, "list") == 0) {
        if (npos != 0) {
            scimctl_errorf("tenant list: unexpected argument: %s", pos[0]);
            return SCIMCTL_USAGE;
        }
        if (!c->url)
            return scimctl_tenant_db_list(c, as_json);
        char *raw = NULL;
        json_t *j = NULL;
        if (scimctl_http(c, "GET", "/admin/v1/tenants?count=1000", NULL, &j, &raw, NULL) != 0)
            return SCIMCTL_ERROR;
        if (as_json) {
            rc = scimctl_print_raw(raw);
        } else {
            show_list(j);
            rc = fflush(stdout) == 0 ? SCIMCTL_OK : SCIMCTL_ERROR;
        }
        json_decref(j);
        free(raw);
        return rc;
    }
    if (strcmp(sub, "create") == 0) {
        if (one_name(sub, npos) != 0)
            return SCIMCTL_USAGE;
        if (!c->url)
            return scimctl_tenant_db_create(c, pos[0], as_json);
        json_t *body = json_pack("{s:s}", "name", pos[0]), *j = NULL;
        char *raw = NULL;
        if (!body) {
            scimctl_errorf("out of memory");
            return SCIMCTL_ERROR;
        }
        rc = SCIMCTL_ERROR;
        if (scimctl_http(c, "POST", "/admin/v1/tenants", body, &j, &raw, NULL) == 0) {
            if (as_json) {
                rc = scimctl_print_raw(raw);
            } else {
                show_one(j);
                rc = fflush(stdout) == 0 ? SCIMCTL_OK : SCIMCTL_ERROR;
            }
        }
        json_decref(body);
        json_decref(j);
        free(raw);
        return rc;
    }
    if (strcmp(sub, "show") == 0) {
        char t[128];
        if (need_url(c, sub) != 0)
            return SCIMCTL_USAGE;
        if (npos > 1) {
            scimctl_errorf("tenant show: expected at most one NAME");
            return SCIMCTL_USAGE;
        }
        if (scimctl_resolve_tenant(c, npos ? pos[0] : NULL, t, sizeof t) != 0)
            return SCIMCTL_ERROR;
        return scimctl_tenant_call(c, t, "GET", "", NULL, as_json, show_one);
    }
    if (strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0) {
        if (need_url(c, sub) != 0)
            return SCIMCTL_USAGE;
        if (one_name(sub, npos) != 0)
            return SCIMCTL_USAGE;
        json_t *body = json_pack("{s:b}", "disabled", strcmp(sub, "disable") == 0);
        if (!body) {
            scimctl_errorf("out of memory");
            return SCIMCTL_ERROR;
        }
        rc = scimctl_tenant_call(c, pos[0], "PATCH", "", body, as_json, show_one);
        json_decref(body);
        return rc;
    }
    if (strcmp(sub, "delete") == 0) {
        if (need_url(c, sub) != 0)
            return SCIMCTL_USAGE;
        if (one_name(sub, npos) != 0)
            return SCIMCTL_USAGE;
        rc = scimctl_tenant_call(c, pos[0], "DELETE", "", NULL, as_json, NULL);
        if (rc == SCIMCTL_OK)
            fprintf(stderr, "tenant \"%s\" deleted\n", pos[0]);
        return rc;
    }
    scimctl_errorf("tenant: unknown subcommand: %s", sub);
    return SCIMCTL_USAGE;
}
