/* scimctl token: create, list and revoke API tokens. */
#include "scimctl.h"

#include "auth/token.h"
#include "common/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SCOPES "scim:read scim:write"
#define MAX_DAYS 36500

static void help(void)
{
    fputs("NAME\n"
          "    scimctl token - manage the API tokens of scimd\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl [--db URI | --url URL] token create [--tenant T] --name NAME\n"
          "                                    [--scopes SCOPES] [--expires DAYS] [--json]\n"
          "    scimctl [--db URI | --url URL] token list [--tenant T] [--json]\n"
          "    scimctl [--db URI | --url URL] token revoke [--tenant T] NAME [--json]\n"
          "\n"
          "DESCRIPTION\n"
          "    Tokens are 256-bit random secrets of the form scimd_... that identity providers\n"
          "    send as \"Authorization: Bearer TOKEN\". Only their SHA-256 is stored, so a token\n"
          "    is shown once, when it is created. Each token belongs to one tenant. With --url\n"
          "    the commands go through the admin API (POST/GET/DELETE\n"
          "    /admin/v1/tenants/T/tokens); with --db they work on the database directly,\n"
          "    which is how the first admin token of a new installation or tenant is made.\n"
          "\n"
          "    create --name NAME [--scopes SCOPES] [--expires DAYS]\n"
          "        Create a token and print it alone on one line of standard output.\n"
          "        NAME (1-127 characters, no blanks) must not be used by another live token.\n"
          "        SCOPES is a space-separated list from scim:read, scim:write and admin;\n"
          "        default \"" DEFAULT_SCOPES "\". DAYS (1-36500) makes the token expire; by\n"
          "        default it never expires. --expires-in-days is the same option.\n"
          "        With --json (--url only) the API's whole answer is printed instead,\n"
          "        the token in its \"token\" member.\n"
          "\n"
          "    list [--json]\n"
          "        Print the live tokens as a table (name, scopes, created, last used,\n"
          "        expires), or as JSON with --json: the API's list object with --url, an\n"
          "        array with --db.\n"
          "\n"
          "    revoke NAME\n"
          "        Revoke the live token NAME; requests using it fail with 401 at once.\n"
          "\n"
          "OPTIONS\n"
          "    --tenant T\n"
          "        The tenant whose tokens these are. Default: \"default\" with --db (T must\n"
          "        exist: see scimctl tenant); with --url the admin token's own tenant, which\n"
          "        the API tells only for operator tokens: a tenant's own admin token must\n"
          "        name its tenant.\n"
          "    --json\n"
          "        Print the raw JSON answer, for scripts.\n"
          "\n"
          "EXIT STATUS\n"
          "    0 success, 1 error (for example no such token, or the name is taken), 2 usage.\n"
          "\n"
          "EXAMPLES\n"
          "    scimctl token create --name okta --scopes \"scim:read scim:write\" --expires 365\n"
          "    scimctl token list --json\n"
          "    scimctl token revoke okta\n"
          "    scimctl --db scimd.db token create --tenant acme --name admin --scopes admin\n"
          "    scimctl --url http://127.0.0.1:8080 --token-file admin.tok \\\n"
          "        token create --tenant acme --name entra --expires-in-days 90\n",
          stdout);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 127)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

/* Checks each space-separated scope against the known ones. */
static int valid_scopes(const char *s)
{
    static const char *const known[] = {"scim:read", "scim:write", "admin"};
    int count = 0;
    if (strlen(s) >= sizeof(((struct scim_token *)0)->scopes))
        return 0;
    while (*s) {
        size_t n;
        int ok = 0;
        while (*s == ' ')
            s++;
        n = strcspn(s, " ");
        if (n == 0)
            break;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (strlen(known[k]) == n && strncmp(s, known[k], n) == 0)
                ok = 1;
        if (!ok)
            return 0;
        count++;
        s += n;
    }
    return count > 0;
}

/* Opens the store and selects the tenant for --db mode: --tenant NAME, else "default". */
static int open_db(struct scimctl *c, const char *tenant)
{
    if (scimctl_open(c) != 0)
        return -1;
    if (tenant && scimctl_db_select_tenant(c, tenant) != 0) {
        scimctl_close(c);
        return -1;
    }
    return 0;
}

/* The scopes as a JSON array for the API. */
static json_t *scopes_json(const char *s)
{
    json_t *arr = json_array();
    while (arr && *s) {
        size_t n;
        while (*s == ' ')
            s++;
        n = strcspn(s, " ");
        if (n == 0)
            break;
        if (json_array_append_new(arr, json_stringn(s, n)) != 0) {
            json_decref(arr);
            return NULL;
        }
        s += n;
    }
    return arr;
}

static int create_remote(struct scimctl *c, const char *tenant, const char *name,
                         const char *scopes, int64_t days, int as_json)
{
    char t[128], *raw = NULL;
    json_t *body = json_object(), *sc = scopes_json(scopes), *resp = NULL;
    int rc = SCIMCTL_ERROR;
    char *path = NULL, *esc = NULL;
    size_t n;

    if (!body || !sc || json_object_set_new(body, "name", json_string(name)) != 0 ||
        json_object_set(body, "scopes", sc) != 0 ||
        (days > 0 && json_object_set_new(body, "expiresInDays", json_integer(days)) != 0)) {
        scimctl_errorf("token create: out of memory");
        goto out;
    }
    if (scimctl_resolve_tenant(c, tenant, t, sizeof t) != 0)
        goto out;
    esc = scimctl_escape(t);
    n = esc ? strlen(esc) + 64 : 0;
    path = esc ? malloc(n) : NULL;
    if (!path) {
        scimctl_errorf("token create: out of memory");
        goto out;
    }
    snprintf(path, n, "/admin/v1/tenants/%s/tokens", esc);
    if (scimctl_http(c, "POST", path, body, &resp, &raw, NULL) != 0)
        goto out;
    if (as_json) {
        rc = scimctl_print_raw(raw);
    } else {
        const char *tok = json_string_value(json_object_get(resp, "token"));
        if (!tok) {
            scimctl_errorf("token create: the answer has no token");
            goto out;
        }
        printf("%s\n", tok);
        rc = fflush(stdout) == 0 ? SCIMCTL_OK : SCIMCTL_ERROR;
    }
out:
    if (raw) {
        scim_wipe(raw, strlen(raw));
        free(raw);
    }
    json_decref(resp);
    json_decref(body);
    json_decref(sc);
    free(path);
    free(esc);
    return rc;
}

static int cmd_create(struct scimctl *c, int argc, char **argv)
{
    static const struct scimctl_opt opts[] = {{"--name", 1},    {"--scopes", 1},
                                              {"--expires", 1}, {"--expires-in-days", 1},
                                              {"--tenant", 1},  {"--json", 0},
                                              {NULL, 0}};
    const char *v[7] = {0}, *pos[1];
    const char *name, *scopes, *expires, *tenant;
    char tok[SCIM_TOKEN_MAX];
    unsigned char hash[32];
    int64_t days = 0, expires_us = 0;
    struct scim_err err;
    int rc, npos;

    if ((rc = scimctl_parse("token create", argc, argv, 2, opts, v, pos, 0, &npos)) != 0)
        return rc;
    name = v[0];
    scopes = v[1] ? v[1] : DEFAULT_SCOPES;
    expires = v[2] ? v[2] : v[3];
    tenant = v[4];
    if (!name) {
        scimctl_errorf("token create: --name is required");
        return SCIMCTL_USAGE;
    }
    if (!valid_name(name)) {
        scimctl_errorf("token create: invalid name \"%s\" (1-127 characters, no blanks)", name);
        return SCIMCTL_USAGE;
    }
    if (!valid_scopes(scopes)) {
        scimctl_errorf("token create: invalid scopes \"%s\" (from: scim:read scim:write admin)",
                       scopes);
        return SCIMCTL_USAGE;
    }
    if (expires) {
        if (scim_parse_i64(expires, &days) != 0 || days < 1 || days > MAX_DAYS) {
            scimctl_errorf("token create: invalid --expires \"%s\" (days, 1-%d)", expires,
                           MAX_DAYS);
            return SCIMCTL_USAGE;
        }
        expires_us = scim_now_us() + days * 86400 * INT64_C(1000000);
    }
    if (c->url)
        return create_remote(c, tenant, name, scopes, days, v[5] != NULL);
    if (v[5]) {
        scimctl_errorf("token create: --json needs --url");
        return SCIMCTL_USAGE;
    }
    if (open_db(c, tenant) != 0)
        return SCIMCTL_ERROR;
    if (scim_token_generate(tok, hash) != 0) {
        scimctl_errorf("token create: no randomness available");
        scimctl_close(c);
        return SCIMCTL_ERROR;
    }
    scim_err_clear(&err);
    if (scim_store_token_create(c->st, c->tenant, name, hash, scopes, expires_us, &err) != 0) {
        if (err.status == 409)
            scimctl_errorf("token create: a live token named \"%s\" already exists", name);
        else
            scimctl_errorf("token create: %s", err.detail);
        rc = SCIMCTL_ERROR;
    } else {
        printf("%s\n", tok);
        rc = fflush(stdout) == 0 ? SCIMCTL_OK : SCIMCTL_ERROR;
    }
    scim_wipe(tok, sizeof tok);
    scimctl_close(c);
    return rc;
}

/* A time field of a token list entry: the store may give an RFC 3339 string or microseconds. */
static void time_field(json_t *entry, const char *key, char out[SCIM_DATETIME_LEN])
{
    json_t *v = json_object_get(entry, key);
    if (json_is_string(v)) {
        snprintf(out, SCIM_DATETIME_LEN, "%s", json_string_value(v));
    } else if (json_is_integer(v) && json_integer_value(v) > 0) {
        scim_datetime_format((int64_t)json_integer_value(v), out);
    } else {
        snprintf(out, SCIM_DATETIME_LEN, "-");
    }
}

static void show_remote_list(const json_t *list)
{
    static const char *const head[] = {"NAME", "SCOPES", "CREATED", "LAST USED", "EXPIRES"};
    struct scimctl_table t;
    const json_t *e;
    size_t i;
    if (scimctl_table_init(&t, 5, head) != 0)
        return;
    json_array_foreach(json_object_get(list, "items"), i, e) {
        char b[5][512];
        const char *row[5] = {
            scimctl_text(json_object_get(e, "name"), b[0], sizeof b[0]),
            scimctl_text(json_object_get(e, "scopes"), b[1], sizeof b[1]),
            scimctl_text(json_object_get(e, "created"), b[2], sizeof b[2]),
            scimctl_text(json_object_get(e, "lastUsed"), b[3], sizeof b[3]),
            scimctl_text(json_object_get(e, "expires"), b[4], sizeof b[4]),
        };
        if (strcmp(row[3], "-") == 0)
            row[3] = "never";
        if (strcmp(row[4], "-") == 0)
            row[4] = "never";
        if (scimctl_table_add(&t, row) != 0)
            break;
    }
    scimctl_table_print(&t, stdout);
    scimctl_table_free(&t);
}

static int cmd_list(struct scimctl *c, int argc, char **argv)
{
    static const struct scimctl_opt opts[] = {{"--tenant", 1}, {"--json", 0}, {NULL, 0}};
    const char *v[2] = {0}, *pos[1];
    int as_json, rc, npos;
    json_t *arr = NULL, *entry;
    struct scim_err err;
    size_t i;

    if ((rc = scimctl_parse("token list", argc, argv, 2, opts, v, pos, 0, &npos)) != 0)
        return rc;
    as_json = v[1] != NULL;
    if (c->url) {
        char t[128];
        if (scimctl_resolve_tenant(c, v[0], t, sizeof t) != 0)
            return SCIMCTL_ERROR;
        return scimctl_tenant_call(c, t, "GET", "/tokens?count=1000", NULL, as_json,
                                   show_remote_list);
    }
    if (open_db(c, v[0]) != 0)
        return SCIMCTL_ERROR;
    scim_err_clear(&err);
    if (scim_store_token_list(c->st, c->tenant, &arr, &err) != 0) {
        scimctl_errorf("token list: %s", err.detail);
        rc = SCIMCTL_ERROR;
        goto out;
    }
    if (as_json) {
        char *s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!s) {
            scimctl_errorf("token list: out of memory");
            rc = SCIMCTL_ERROR;
            goto out;
        }
        printf("%s\n", s);
        free(s);
        goto out;
    }
    printf("%-24s %-28s %-24s %-24s %s\n", "NAME", "SCOPES", "CREATED", "LAST USED", "EXPIRES");
    json_array_foreach(arr, i, entry) {
        char created[SCIM_DATETIME_LEN], used[SCIM_DATETIME_LEN], exp[SCIM_DATETIME_LEN];
        const char *name = json_string_value(json_object_get(entry, "name"));
        const char *scopes = json_string_value(json_object_get(entry, "scopes"));
        time_field(entry, "created", created);
        time_field(entry, "lastUsed", used);
        time_field(entry, "expires", exp);
        if (strcmp(used, "-") == 0)
            snprintf(used, sizeof used, "never");
        if (strcmp(exp, "-") == 0)
            snprintf(exp, sizeof exp, "never");
        printf("%-24s %-28s %-24s %-24s %s\n", name ? name : "?", scopes ? scopes : "", created,
               used, exp);
    }
out:
    json_decref(arr);
    scimctl_close(c);
    return rc;
}

static int cmd_revoke(struct scimctl *c, int argc, char **argv)
{
    static const struct scimctl_opt opts[] = {{"--tenant", 1}, {"--json", 0}, {NULL, 0}};
    const char *v[2] = {0}, *pos[2];
    struct scim_err err;
    int rc, npos;

    if ((rc = scimctl_parse("token revoke", argc, argv, 2, opts, v, pos, 1, &npos)) != 0)
        return rc;
    if (npos != 1) {
        scimctl_errorf("token revoke: expected exactly one NAME");
        return SCIMCTL_USAGE;
    }
    if (c->url) {
        char t[128], *esc = scimctl_escape(pos[0]), suffix[512];
        if (!esc) {
            scimctl_errorf("out of memory");
            return SCIMCTL_ERROR;
        }
        snprintf(suffix, sizeof suffix, "/tokens/%s", esc);
        free(esc);
        if (scimctl_resolve_tenant(c, v[0], t, sizeof t) != 0)
            return SCIMCTL_ERROR;
        rc = scimctl_tenant_call(c, t, "DELETE", suffix, NULL, v[1] != NULL, NULL);
        if (rc == SCIMCTL_OK)
            fprintf(stderr, "token \"%s\" revoked\n", pos[0]);
        return rc;
    }
    if (open_db(c, v[0]) != 0)
        return SCIMCTL_ERROR;
    scim_err_clear(&err);
    rc = SCIMCTL_OK;
    if (scim_store_token_revoke(c->st, c->tenant, pos[0], &err) != 0) {
        if (err.status == 404)
            scimctl_errorf("token revoke: no live token named \"%s\"", pos[0]);
        else
            scimctl_errorf("token revoke: %s", err.detail);
        rc = SCIMCTL_ERROR;
    } else {
        fprintf(stderr, "token \"%s\" revoked\n", pos[0]);
    }
    scimctl_close(c);
    return rc;
}

int scimctl_token(struct scimctl *c, int argc, char **argv)
{
    if (argc < 2) {
        scimctl_errorf("token: missing subcommand (create, list, revoke)");
        return SCIMCTL_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (scimctl_is_help(argv[i])) {
            help();
            return SCIMCTL_OK;
        }
    }
    if (strcmp(argv[1], "create") == 0)
        return cmd_create(c, argc, argv);
    if (strcmp(argv[1], "list") == 0)
        return cmd_list(c, argc, argv);
    if (strcmp(argv[1], "revoke") == 0)
        return cmd_revoke(c, argc, argv);
    scimctl_errorf("token: unknown subcommand: %s", argv[1]);
    return SCIMCTL_USAGE;
}
