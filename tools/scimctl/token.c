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
          "    scimctl [--db URI] token create --name NAME [--scopes SCOPES] [--expires DAYS]\n"
          "    scimctl [--db URI] token list [--json]\n"
          "    scimctl [--db URI] token revoke NAME\n"
          "\n"
          "DESCRIPTION\n"
          "    Tokens are 256-bit random secrets of the form scimd_... that identity providers\n"
          "    send as \"Authorization: Bearer TOKEN\". Only their SHA-256 is stored, so a token\n"
          "    is shown once, when it is created.\n"
          "\n"
          "    create --name NAME [--scopes SCOPES] [--expires DAYS]\n"
          "        Create a token and print it alone on one line of standard output.\n"
          "        NAME (1-127 characters, no blanks) must not be used by another live token.\n"
          "        SCOPES is a space-separated list from scim:read, scim:write and admin;\n"
          "        default \"" DEFAULT_SCOPES "\". DAYS (1-36500) makes the token expire; by\n"
          "        default it never expires.\n"
          "\n"
          "    list [--json]\n"
          "        Print the live tokens as a table (name, scopes, created, last used,\n"
          "        expires), or as a JSON array with --json.\n"
          "\n"
          "    revoke NAME\n"
          "        Revoke the live token NAME; requests using it fail with 401 at once.\n"
          "\n"
          "EXIT STATUS\n"
          "    0 success, 1 error (for example no such token, or the name is taken), 2 usage.\n"
          "\n"
          "EXAMPLES\n"
          "    scimctl token create --name okta --scopes \"scim:read scim:write\" --expires 365\n"
          "    scimctl token list --json\n"
          "    scimctl token revoke okta\n",
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

/* Reads the value of an option given as "--opt VALUE" or "--opt=VALUE" at argv[*i]. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (strcmp(argv[*i], opt) == 0 && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static int cmd_create(struct scimctl *c, int argc, char **argv)
{
    const char *name = NULL, *scopes = DEFAULT_SCOPES, *expires = NULL;
    char tok[SCIM_TOKEN_MAX];
    unsigned char hash[32];
    int64_t days = 0, expires_us = 0;
    struct scim_err err;
    int rc;

    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = opt_value(argc, argv, &i, "--name")))
            name = v;
        else if ((v = opt_value(argc, argv, &i, "--scopes")))
            scopes = v;
        else if ((v = opt_value(argc, argv, &i, "--expires")))
            expires = v;
        else {
            scimctl_errorf("token create: unexpected argument: %s", argv[i]);
            return SCIMCTL_USAGE;
        }
    }
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
    if (scimctl_open(c) != 0)
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

static int cmd_list(struct scimctl *c, int argc, char **argv)
{
    int as_json = 0, rc = SCIMCTL_OK;
    json_t *arr = NULL, *entry;
    struct scim_err err;
    size_t i;

    for (int k = 2; k < argc; k++) {
        if (strcmp(argv[k], "--json") == 0) {
            as_json = 1;
        } else {
            scimctl_errorf("token list: unexpected argument: %s", argv[k]);
            return SCIMCTL_USAGE;
        }
    }
    if (scimctl_open(c) != 0)
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
    struct scim_err err;
    int rc = SCIMCTL_OK;

    if (argc != 3) {
        scimctl_errorf("token revoke: expected exactly one NAME");
        return SCIMCTL_USAGE;
    }
    if (scimctl_open(c) != 0)
        return SCIMCTL_ERROR;
    scim_err_clear(&err);
    if (scim_store_token_revoke(c->st, c->tenant, argv[2], &err) != 0) {
        if (err.status == 404)
            scimctl_errorf("token revoke: no live token named \"%s\"", argv[2]);
        else
            scimctl_errorf("token revoke: %s", err.detail);
        rc = SCIMCTL_ERROR;
    } else {
        fprintf(stderr, "token \"%s\" revoked\n", argv[2]);
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
