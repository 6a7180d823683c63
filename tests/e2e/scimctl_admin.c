/* e2e/scimctl_admin: the real scimctl binary against a real scimd's admin API (--url mode) and
 * on its database (--db mode). Every scimctl run is a posix_spawn with stdout and stderr
 * captured to files and the exit status checked exactly: tenants, tokens (the secret printed
 * once, usable on SCIM, absent from listings, dead after revoke), every policy key with each
 * of its values, users (list/show/sign-in/create/delete), groups and their members, --json
 * output, --help pages, usage errors (exit 2), and bootstrapping a tenant with its admin token
 * on the database before scimd starts. */
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

extern char **environ;

static struct e2e_server srv;
static int failures;
static char root[300];    /* http://127.0.0.1:PORT */
static char tokfile[700]; /* the operator admin token, for --token-file */

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            failures++;                                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
        }                                                                                      \
    } while (0)

struct run {
    int status; /* exit status, or -1 when scimctl did not exit normally */
    char *out;
    char *err;
    json_t *json; /* stdout parsed as JSON, when it is */
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return calloc(1, 1);
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = calloc(1, (size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n)
            buf[0] = '\0';
    }
    fclose(f);
    return buf ? buf : calloc(1, 1);
}

/* Runs scimctl with argv (NULL-terminated) and extra environment entries (NULL-terminated or
 * NULL). SCIMCTL_URL, SCIMCTL_TOKEN and SCIMD_DB from the test's own environment are dropped
 * so that only what a test passes counts. */
static void ctl_env(struct run *r, const char *const *extra_env, const char *const *args)
{
    const char *bin = getenv("SCIMCTL_BIN");
    char *argv[64], *envp[512], out_path[700], err_path[700];
    size_t n = 0, ne = 0;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st;

    memset(r, 0, sizeof *r);
    r->status = -1;
    argv[n++] = (char *)bin;
    for (size_t i = 0; args[i] && n < 63; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    for (char **e = environ; *e && ne < 480; e++)
        if (strncmp(*e, "SCIMCTL_URL=", 12) != 0 && strncmp(*e, "SCIMCTL_TOKEN=", 14) != 0 &&
            strncmp(*e, "SCIMD_DB=", 9) != 0)
            envp[ne++] = *e;
    for (size_t i = 0; extra_env && extra_env[i] && ne < 510; i++)
        envp[ne++] = (char *)extra_env[i];
    envp[ne] = NULL;

    snprintf(out_path, sizeof out_path, "%s/ctl.out", srv.dir);
    snprintf(err_path, sizeof err_path, "%s/ctl.err", srv.dir);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (posix_spawn(&pid, bin, &fa, NULL, argv, envp) == 0 && waitpid(pid, &st, 0) == pid)
        r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    posix_spawn_file_actions_destroy(&fa);
    r->out = slurp(out_path);
    r->err = slurp(err_path);
    r->json = json_loads(r->out, JSON_DECODE_ANY, NULL);
}

static void ctl(struct run *r, const char *const *args)
{
    ctl_env(r, NULL, args);
}

/* scimctl --url ROOT --token-file TOKFILE args... */
#define ADMIN(r, ...)                                                                          \
    ctl((r), (const char *const[]){"--url", root, "--token-file", tokfile, __VA_ARGS__, NULL})

/* Expects an exit status; on a mismatch prints the command's output. */
#define EXPECT_STATUS(r, want, what)                                                           \
    CHECK((r)->status == (want), "%s: exit %d, want %d; stdout: %s; stderr: %s", what,         \
          (r)->status, want, (r)->out, (r)->err)

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A SCIM request with a given bearer token on the root URL + path. */
static long scim(const char *token, const char *method, const char *path, const char *body,
                 json_t **out)
{
    char url[600], auth[700];
    const char *hdrs[] = {auth, NULL};
    struct e2e_response resp;
    long status;
    snprintf(url, sizeof url, "%s%s", root, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    if (e2e_request(&srv, method, url, hdrs, body, &resp) != 0) {
        e2e_response_free(&resp);
        return 0;
    }
    status = resp.status;
    if (out) {
        *out = resp.json;
        resp.json = NULL;
    }
    e2e_response_free(&resp);
    return status;
}

/* A string member, or "" when absent. */
static const char *jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static void trim_line(char *s)
{
    s[strcspn(s, "\r\n")] = '\0';
}

/* The settings object of a settings answer (flat, or wrapped in "settings"). */
static const json_t *settings_of(const json_t *j)
{
    const json_t *w = json_object_get(j, "settings");
    return json_is_object(w) ? w : j;
}

static void test_help_and_usage(void)
{
    static const char *const pages[][2] = {
        {"tenant", "list"},      {"tenant", "create"},        {"tenant", "show"},
        {"tenant", "disable"},   {"tenant", "enable"},        {"tenant", "delete"},
        {"token", "create"},     {"token", "list"},           {"token", "revoke"},
        {"settings", "show"},    {"settings", "set"},         {"user", "list"},
        {"user", "show"},        {"user", "sign-in"},         {"user", "create"},
        {"user", "delete"},      {"group", "list"},           {"group", "show"},
        {"group", "create"},     {"group", "delete"},         {"group", "add-member"},
        {"group", "remove-member"}, {"db", "migrate"},
    };
    struct run r;
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        ADMIN(&r, pages[i][0], pages[i][1], "--help");
        EXPECT_STATUS(&r, 0, pages[i][1]);
        CHECK(strstr(r.out, "SYNOPSIS") && strstr(r.out, "EXIT STATUS") &&
                  strstr(r.out, "EXAMPLES") && strstr(r.out, "NAME"),
              "%s %s --help lacks a section: %s", pages[i][0], pages[i][1], r.out);
        run_free(&r);
    }
    ctl(&r, (const char *const[]){"--help", NULL});
    EXPECT_STATUS(&r, 0, "--help");
    CHECK(strstr(r.out, "SYNOPSIS") != NULL, "scimctl --help: %s", r.out);
    run_free(&r);

    /* Usage errors: exit 2, message on stderr, nothing on stdout. */
    static const char *const usage[][6] = {
        {"bogus"},
        {"tenant"},
        {"tenant", "frobnicate"},
        {"tenant", "create"},
        {"tenant", "show", "a", "b"},
        {"token", "create"},
        {"token", "create", "--name", "x", "--scopes", "root"},
        {"token", "revoke"},
        {"settings", "set"},
        {"settings", "set", "novalue"},
        {"settings", "show", "--bogus"},
        {"user", "show"},
        {"user", "sign-in"},
        {"user", "sign-in", "id", "--user-name"},
        {"user", "create"},
        {"user", "list", "--state"},
        {"group", "add-member", "g"},
        {"group", "show", "--filter", "x", "id"},
        {"db", "migrate"}, /* db works on the database, not over --url */
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        const char *args[12] = {"--url", root, "--token-file", tokfile};
        size_t n = 4;
        for (size_t k = 0; k < 6 && usage[i][k]; k++)
            args[n++] = usage[i][k];
        args[n] = NULL;
        ctl(&r, args);
        EXPECT_STATUS(&r, 2, usage[i][0]);
        CHECK(r.err[0] != '\0', "usage error %zu prints nothing on stderr", i);
        CHECK(r.out[0] == '\0', "usage error %zu prints on stdout: %s", i, r.out);
        run_free(&r);
    }
    ctl(&r, (const char *const[]){NULL});
    EXPECT_STATUS(&r, 2, "no arguments");
    run_free(&r);
    ctl(&r, (const char *const[]){"--url", "ftp://x", "--token", "t", "tenant", "list", NULL});
    EXPECT_STATUS(&r, 2, "--url ftp://");
    run_free(&r);
    ctl(&r, (const char *const[]){"--url", root, "tenant", "list", NULL});
    EXPECT_STATUS(&r, 2, "--url without a token");
    run_free(&r);
    ctl(&r, (const char *const[]){"--url", root, "--db", srv.db, "--token", "t", "tenant",
                                  "list", NULL});
    EXPECT_STATUS(&r, 2, "--url with --db");
    run_free(&r);
    ctl(&r, (const char *const[]){"--db", srv.db, "settings", "show", NULL});
    EXPECT_STATUS(&r, 2, "settings with --db");
    run_free(&r);

    /* A wrong token: the API's message, exit 1, and the token is never echoed. */
    ctl(&r, (const char *const[]){"--url", root, "--token", "scimd_not-a-real-token-xyz",
                                  "tenant", "list", NULL});
    EXPECT_STATUS(&r, 1, "bad token");
    CHECK(strstr(r.err, "scimd_not-a-real-token-xyz") == NULL && r.err[0],
          "bad token stderr: %s", r.err);
    run_free(&r);
}

static void test_tenants_and_tokens(void)
{
    struct run r;
    char acme_tok[512] = "", acme_tok2[512] = "";

    ADMIN(&r, "tenant", "create", "acme");
    EXPECT_STATUS(&r, 0, "tenant create acme");
    CHECK(strstr(r.out, "acme") != NULL, "tenant create output: %s", r.out);
    run_free(&r);
    ADMIN(&r, "tenant", "create", "acme");
    EXPECT_STATUS(&r, 1, "tenant create acme again");
    CHECK(r.err[0] != '\0', "no message for a duplicate tenant");
    run_free(&r);
    ADMIN(&r, "tenant", "create", "Bad_Name");
    EXPECT_STATUS(&r, 1, "tenant create Bad_Name");
    run_free(&r);

    ADMIN(&r, "tenant", "list");
    EXPECT_STATUS(&r, 0, "tenant list");
    CHECK(strncmp(r.out, "NAME", 4) == 0 && strstr(r.out, "\nacme ") &&
              strstr(r.out, "\ndefault "),
          "tenant list table: %s", r.out);
    run_free(&r);
    ADMIN(&r, "tenant", "list", "--json");
    EXPECT_STATUS(&r, 0, "tenant list --json");
    CHECK(json_is_array(json_object_get(r.json, "items")) &&
              json_integer_value(json_object_get(r.json, "total")) == 2,
          "tenant list --json: %s", r.out);
    run_free(&r);
    ADMIN(&r, "tenant", "show", "acme", "--json");
    EXPECT_STATUS(&r, 0, "tenant show acme --json");
    CHECK(json_is_string(json_object_get(r.json, "name")) &&
              strcmp(json_string_value(json_object_get(r.json, "name")), "acme") == 0 &&
              json_is_false(json_object_get(r.json, "disabled")),
          "tenant show --json: %s", r.out);
    run_free(&r);
    ADMIN(&r, "tenant", "show", "acme");
    EXPECT_STATUS(&r, 0, "tenant show acme");
    CHECK(strstr(r.out, "name") && strstr(r.out, "acme") && strstr(r.out, "disabled"),
          "tenant show: %s", r.out);
    run_free(&r);
    ADMIN(&r, "tenant", "show", "nosuch");
    EXPECT_STATUS(&r, 1, "tenant show nosuch");
    CHECK(r.err[0] != '\0', "tenant show nosuch: no message");
    run_free(&r);

    /* token create: the secret alone on stdout, once; usable against SCIM at once. */
    ADMIN(&r, "token", "create", "--tenant", "acme", "--name", "entra");
    EXPECT_STATUS(&r, 0, "token create");
    snprintf(acme_tok, sizeof acme_tok, "%s", r.out);
    trim_line(acme_tok);
    CHECK(strncmp(acme_tok, "scimd_", 6) == 0 && strchr(r.out, '\n') == r.out + strlen(acme_tok),
          "token create output: '%s'", r.out);
    run_free(&r);
    CHECK(scim(acme_tok, "GET", "/scim/v2/Users", NULL, NULL) == 200, "new token on /scim/v2");
    CHECK(scim(acme_tok, "GET", "/tenants/acme/scim/v2/Users", NULL, NULL) == 200,
          "new token on /tenants/acme/scim/v2");
    ADMIN(&r, "token", "create", "--tenant", "acme", "--name", "entra");
    EXPECT_STATUS(&r, 1, "token create duplicate");
    CHECK(r.out[0] == '\0', "duplicate token printed something: %s", r.out);
    run_free(&r);
    ADMIN(&r, "token", "create", "--tenant", "acme", "--name", "okta", "--expires-in-days",
          "30", "--json");
    EXPECT_STATUS(&r, 0, "token create --json");
    {
        const char *t = json_string_value(json_object_get(r.json, "token"));
        CHECK(t && strncmp(t, "scimd_", 6) == 0, "token create --json: %s", r.out);
        snprintf(acme_tok2, sizeof acme_tok2, "%s", t ? t : "");
        CHECK(json_is_string(json_object_get(r.json, "expires")), "no expiry: %s", r.out);
    }
    run_free(&r);

    ADMIN(&r, "token", "list", "--tenant", "acme");
    EXPECT_STATUS(&r, 0, "token list");
    CHECK(strstr(r.out, "entra") && strstr(r.out, "okta") && strstr(r.out, "LAST USED"),
          "token list: %s", r.out);
    CHECK(!strstr(r.out, acme_tok) && !strstr(r.out, acme_tok2) && !strstr(r.out, "scimd_"),
          "token list shows a secret: %s", r.out);
    run_free(&r);
    ADMIN(&r, "token", "list", "--tenant", "acme", "--json");
    EXPECT_STATUS(&r, 0, "token list --json");
    {
        const json_t *items = json_object_get(r.json, "items"), *e;
        size_t i;
        CHECK(json_array_size(items) == 2, "token list --json: %s", r.out);
        json_array_foreach(items, i, e) CHECK(!json_object_get(e, "token"), "secret in list");
        CHECK(!strstr(r.out, "scimd_"), "token list --json shows a secret: %s", r.out);
    }
    run_free(&r);

    /* Revocation is effective on the next request. */
    ADMIN(&r, "token", "revoke", "--tenant", "acme", "entra");
    EXPECT_STATUS(&r, 0, "token revoke");
    run_free(&r);
    CHECK(scim(acme_tok, "GET", "/scim/v2/Users", NULL, NULL) == 401, "revoked token still works");
    CHECK(scim(acme_tok2, "GET", "/scim/v2/Users", NULL, NULL) == 200, "other token broken");
    ADMIN(&r, "token", "revoke", "--tenant", "acme", "entra");
    EXPECT_STATUS(&r, 1, "token revoke twice");
    run_free(&r);

    /* disable / enable */
    ADMIN(&r, "tenant", "disable", "acme");
    EXPECT_STATUS(&r, 0, "tenant disable");
    run_free(&r);
    ADMIN(&r, "tenant", "show", "acme", "--json");
    CHECK(json_is_true(json_object_get(r.json, "disabled")), "not disabled: %s", r.out);
    run_free(&r);
    CHECK(scim(acme_tok2, "GET", "/scim/v2/Users", NULL, NULL) == 403,
          "disabled tenant's token not refused");
    ADMIN(&r, "tenant", "enable", "acme", "--json");
    EXPECT_STATUS(&r, 0, "tenant enable");
    CHECK(json_is_false(json_object_get(r.json, "disabled")), "enable --json: %s", r.out);
    run_free(&r);
    CHECK(scim(acme_tok2, "GET", "/scim/v2/Users", NULL, NULL) == 200, "enabled tenant refused");
    ADMIN(&r, "tenant", "disable", "default");
    EXPECT_STATUS(&r, 1, "tenant disable default");
    run_free(&r);
    ADMIN(&r, "tenant", "delete", "default");
    EXPECT_STATUS(&r, 1, "tenant delete default");
    run_free(&r);

    /* The environment instead of flags; the root URL with /scim/v2 appended works too. */
    {
        char url_env[400], tok_env[600];
        FILE *f = fopen(tokfile, "r");
        char tok[512] = "";
        if (f) {
            if (!fgets(tok, sizeof tok, f))
                tok[0] = '\0';
            fclose(f);
        }
        trim_line(tok);
        snprintf(url_env, sizeof url_env, "SCIMCTL_URL=%s", srv.base_url);
        snprintf(tok_env, sizeof tok_env, "SCIMCTL_TOKEN=%s", tok);
        ctl_env(&r, (const char *const[]){url_env, tok_env, NULL},
                (const char *const[]){"tenant", "show", "--json", NULL});
        EXPECT_STATUS(&r, 0, "SCIMCTL_URL/SCIMCTL_TOKEN");
        CHECK(strcmp(jstr(r.json, "name"), "default") == 0,
              "own tenant of the operator token: %s", r.out);
        run_free(&r);
    }

    /* Deleting a tenant removes its tokens with it. */
    ADMIN(&r, "tenant", "create", "doomed");
    run_free(&r);
    ADMIN(&r, "token", "create", "--tenant", "doomed", "--name", "x");
    {
        char t[512];
        snprintf(t, sizeof t, "%s", r.out);
        trim_line(t);
        run_free(&r);
        ADMIN(&r, "tenant", "delete", "doomed");
        EXPECT_STATUS(&r, 0, "tenant delete");
        run_free(&r);
        CHECK(scim(t, "GET", "/scim/v2/Users", NULL, NULL) == 401, "deleted tenant's token");
    }
    ADMIN(&r, "tenant", "show", "doomed");
    EXPECT_STATUS(&r, 1, "tenant show deleted");
    run_free(&r);
    ADMIN(&r, "tenant", "delete", "doomed");
    EXPECT_STATUS(&r, 1, "tenant delete twice");
    run_free(&r);
}

static void set_and_check(const char *key, const char *arg, const json_t *want)
{
    struct run r;
    char kv[256];
    snprintf(kv, sizeof kv, "%s=%s", key, arg);
    ADMIN(&r, "settings", "set", "--tenant", "acme", kv, "--json");
    EXPECT_STATUS(&r, 0, kv);
    CHECK(json_equal(json_object_get(settings_of(r.json), key), (json_t *)want),
          "settings set %s answered: %s", kv, r.out);
    run_free(&r);
    ADMIN(&r, "settings", "show", "--tenant", "acme", "--json");
    EXPECT_STATUS(&r, 0, "settings show --json");
    CHECK(json_equal(json_object_get(settings_of(r.json), key), (json_t *)want),
          "settings show after %s: %s", kv, r.out);
    run_free(&r);
}

static void test_settings(const char *gid)
{
    static const char *const bools[] = {"scim_enabled",        "allow_manual_updates",
                                        "link_existing_users", "link_existing_groups",
                                        "unique_emails"};
    static const char *const enums[][4] = {
        {"username_changes", "reject", "allow", NULL},
        {"email_changes", "ignore", "reject", "allow"},
        {"delete_mode", "deactivate", "delete", NULL},
    };
    struct run r;

    ADMIN(&r, "settings", "show", "--tenant", "acme");
    EXPECT_STATUS(&r, 0, "settings show");
    CHECK(strncmp(r.out, "SETTING", 7) == 0 && strstr(r.out, "delete_mode") &&
              strstr(r.out, "scim_enabled"),
          "settings show table: %s", r.out);
    run_free(&r);
    ADMIN(&r, "settings", "show", "--tenant", "acme", "--json");
    {
        const json_t *s = settings_of(r.json);
        CHECK(json_is_true(json_object_get(s, "scim_enabled")) &&
                  json_is_false(json_object_get(s, "allow_manual_updates")) &&
                  json_array_size(json_object_get(s, "default_groups")) == 0 &&
                  strcmp(jstr(s, "delete_mode"), "delete") ==
                      0,
              "default settings: %s", r.out);
    }
    run_free(&r);

    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        int first = strcmp(bools[i], "scim_enabled") == 0 ? 0 : 1;
        set_and_check(bools[i], first ? "true" : "false", first ? json_true() : json_false());
        set_and_check(bools[i], first ? "false" : "true", first ? json_false() : json_true());
    }
    for (size_t i = 0; i < sizeof enums / sizeof enums[0]; i++)
        for (size_t k = 1; k < 4 && enums[i][k]; k++) {
            json_t *want = json_string(enums[i][k]);
            set_and_check(enums[i][0], enums[i][k], want);
            json_decref(want);
        }
    {
        json_t *want = json_pack("[s]", gid), *none = json_array();
        set_and_check("default_groups", gid, want);
        set_and_check("default_groups", "", none);
        json_decref(want);
        json_decref(none);
    }

    /* Several at once, then errors that change nothing. */
    ADMIN(&r, "settings", "set", "--tenant", "acme", "unique_emails=true",
          "delete_mode=deactivate");
    EXPECT_STATUS(&r, 0, "settings set two");
    CHECK(strstr(r.out, "deactivate") != NULL, "settings set table: %s", r.out);
    run_free(&r);
    ADMIN(&r, "settings", "set", "--tenant", "acme", "no_such_policy=true");
    EXPECT_STATUS(&r, 1, "settings set bad key");
    CHECK(strstr(r.err, "no_such_policy") != NULL, "bad key message: %s", r.err);
    CHECK(r.out[0] == '\0', "bad key stdout: %s", r.out);
    run_free(&r);
    ADMIN(&r, "settings", "set", "--tenant", "acme", "delete_mode=shred");
    EXPECT_STATUS(&r, 1, "settings set bad value");
    CHECK(strstr(r.err, "delete_mode") != NULL, "bad value message: %s", r.err);
    run_free(&r);
    ADMIN(&r, "settings", "set", "--tenant", "acme", "scim_enabled=maybe");
    EXPECT_STATUS(&r, 1, "settings set bad bool");
    CHECK(strstr(r.err, "scim_enabled") != NULL, "bad bool message: %s", r.err);
    run_free(&r);
    ADMIN(&r, "settings", "show", "--tenant", "acme", "--json");
    CHECK(strcmp(jstr(settings_of(r.json), "delete_mode"),
                 "deactivate") == 0 &&
              json_is_true(json_object_get(settings_of(r.json), "scim_enabled")),
          "a refused set changed something: %s", r.out);
    run_free(&r);
    ADMIN(&r, "settings", "set", "--tenant", "acme", "unique_emails=false",
          "delete_mode=delete");
    EXPECT_STATUS(&r, 0, "settings reset");
    run_free(&r);
}

static void test_users_groups(const char *tok, const char *uid, const char *gid)
{
    struct run r;
    char body_path[700];

    ADMIN(&r, "user", "list", "--tenant", "acme");
    EXPECT_STATUS(&r, 0, "user list");
    CHECK(strncmp(r.out, "ID", 2) == 0 && strstr(r.out, "jane@example.com") &&
              strstr(r.out, uid) && strstr(r.out, "scim"),
          "user list: %s", r.out);
    run_free(&r);
    ADMIN(&r, "user", "list", "--tenant", "acme", "--filter", "userName eq \"jane@example.com\"",
          "--state", "active", "--json");
    EXPECT_STATUS(&r, 0, "user list --filter --json");
    CHECK(json_array_size(json_object_get(r.json, "items")) == 1 &&
              json_integer_value(json_object_get(r.json, "total")) == 1,
          "user list --filter: %s", r.out);
    run_free(&r);
    ADMIN(&r, "user", "list", "--tenant", "acme", "--filter", "userName eq \"nobody\"", "--json");
    CHECK(json_integer_value(json_object_get(r.json, "total")) == 0 &&
              json_array_size(json_object_get(r.json, "items")) == 0,
          "user list --filter none: %s", r.out);
    run_free(&r);
    ADMIN(&r, "user", "show", "--tenant", "acme", uid);
    EXPECT_STATUS(&r, 0, "user show");
    CHECK(strstr(r.out, "jane@example.com") && strstr(r.out, "origin") && strstr(r.out, "scim"),
          "user show: %s", r.out);
    run_free(&r);
    ADMIN(&r, "user", "show", "--tenant", "acme", uid, "--json");
    CHECK(strcmp(jstr(r.json, "id"), uid) == 0 &&
              strcmp(jstr(r.json, "origin"), "scim") == 0 &&
              json_is_object(json_object_get(r.json, "resource")),
          "user show --json: %s", r.out);
    run_free(&r);
    ADMIN(&r, "user", "show", "--tenant", "acme", "00000000-0000-0000-0000-000000000000");
    EXPECT_STATUS(&r, 1, "user show unknown");
    run_free(&r);

    ADMIN(&r, "user", "sign-in", "--tenant", "acme", uid);
    EXPECT_STATUS(&r, 0, "user sign-in");
    CHECK(strstr(r.out, "allowed  yes") && strstr(r.out, "active"), "sign-in: %s", r.out);
    run_free(&r);
    ADMIN(&r, "user", "sign-in", "--tenant", "acme", "--user-name", "jane@example.com", "--json");
    CHECK(json_is_true(json_object_get(r.json, "allowed")) &&
              strcmp(jstr(r.json, "reason"), "active") == 0,
          "sign-in --user-name --json: %s", r.out);
    run_free(&r);
    {
        char path[300];
        snprintf(path, sizeof path, "/scim/v2/Users/%s", uid);
        json_t *pj = NULL;
        long st = scim(tok, "PATCH", path,
                       "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],"
                       "\"Operations\":[{\"op\":\"replace\",\"value\":{\"active\":false}}]}",
                       &pj);
        char *d = json_dumps(pj, JSON_COMPACT);
        CHECK(st == 200 || st == 204, "deactivate jane: %ld %s", st, d ? d : "");
        free(d);
        json_decref(pj);
    }
    ADMIN(&r, "user", "sign-in", "--tenant", "acme", uid, "--json");
    CHECK(json_is_false(json_object_get(r.json, "allowed")) &&
              strcmp(jstr(r.json, "reason"), "inactive") == 0,
          "sign-in inactive: %s", r.out);
    run_free(&r);
    ADMIN(&r, "user", "sign-in", "--tenant", "acme", "--user-name", "ghost@example.com");
    EXPECT_STATUS(&r, 0, "sign-in unknown");
    CHECK(strstr(r.out, "allowed  no") && strstr(r.out, "not_found"), "sign-in unknown: %s",
          r.out);
    run_free(&r);

    /* Local users: refused until allow_manual_updates. */
    snprintf(body_path, sizeof body_path, "%s/bob.json", srv.dir);
    write_file(body_path, "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
                          "\"userName\":\"bob@example.com\",\"displayName\":\"Bob\"}");
    ADMIN(&r, "user", "create", "--tenant", "acme", "--json-body", body_path);
    EXPECT_STATUS(&r, 1, "user create without manual updates");
    CHECK(r.err[0] != '\0', "no message for manual_updates_disabled");
    run_free(&r);
    ADMIN(&r, "settings", "set", "--tenant", "acme", "allow_manual_updates=true");
    run_free(&r);
    ADMIN(&r, "user", "create", "--tenant", "acme", "--json-body", body_path, "--json");
    EXPECT_STATUS(&r, 0, "user create");
    char bob[64] = "";
    snprintf(bob, sizeof bob, "%s", jstr(r.json, "id"));
    CHECK(bob[0] && strcmp(jstr(r.json, "origin"),
                           "local") == 0,
          "user create --json: %s", r.out);
    run_free(&r);

    /* Groups and local memberships. */
    ADMIN(&r, "group", "list", "--tenant", "acme");
    EXPECT_STATUS(&r, 0, "group list");
    CHECK(strstr(r.out, "Sales") && strstr(r.out, gid), "group list: %s", r.out);
    run_free(&r);
    ADMIN(&r, "group", "list", "--tenant", "acme", "--json");
    CHECK(json_array_size(json_object_get(r.json, "items")) == 1, "group list --json: %s", r.out);
    run_free(&r);
    ADMIN(&r, "group", "add-member", "--tenant", "acme", gid, bob);
    EXPECT_STATUS(&r, 0, "group add-member");
    run_free(&r);
    ADMIN(&r, "group", "show", "--tenant", "acme", gid);
    EXPECT_STATUS(&r, 0, "group show");
    CHECK(strstr(r.out, "Sales") && strstr(r.out, bob) && strstr(r.out, "local"),
          "group show: %s", r.out);
    run_free(&r);
    ADMIN(&r, "user", "show", "--tenant", "acme", bob, "--json");
    {
        const json_t *groups = json_object_get(r.json, "groups");
        CHECK(json_array_size(groups) == 1 &&
                  strcmp(jstr(json_array_get(groups, 0), "id"),
                         gid) == 0,
              "bob's groups: %s", r.out);
    }
    run_free(&r);
    ADMIN(&r, "group", "remove-member", "--tenant", "acme", gid, bob);
    EXPECT_STATUS(&r, 0, "group remove-member");
    run_free(&r);
    ADMIN(&r, "group", "show", "--tenant", "acme", gid, "--json");
    CHECK(r.json && !strstr(r.out, bob), "member still there: %s", r.out);
    run_free(&r);
    ADMIN(&r, "group", "add-member", "--tenant", "acme", gid,
          "00000000-0000-0000-0000-000000000000");
    EXPECT_STATUS(&r, 1, "group add-member of no such user");
    CHECK(r.err[0] != '\0', "add-member 404: no message");
    run_free(&r);
    ADMIN(&r, "user", "delete", "--tenant", "acme", bob);
    EXPECT_STATUS(&r, 0, "user delete");
    run_free(&r);
    ADMIN(&r, "user", "show", "--tenant", "acme", bob);
    EXPECT_STATUS(&r, 1, "user show deleted");
    run_free(&r);
    ADMIN(&r, "settings", "set", "--tenant", "acme", "allow_manual_updates=false");
    run_free(&r);
}

/* --db mode: a tenant and its admin token made on the database while scimd is stopped, then
 * used over --url. */
static void test_db_bootstrap(void)
{
    struct run r;
    char tok[512] = "", path[700];

    CHECK(e2e_server_stop(&srv) >= 0, "stop");
    ctl(&r, (const char *const[]){"--db", srv.db, "tenant", "create", "boot", NULL});
    EXPECT_STATUS(&r, 0, "--db tenant create");
    CHECK(strcmp(r.out, "boot\n") == 0, "--db tenant create output: %s", r.out);
    run_free(&r);
    ctl(&r, (const char *const[]){"--db", srv.db, "tenant", "create", "boot", NULL});
    EXPECT_STATUS(&r, 1, "--db tenant create twice");
    run_free(&r);
    ctl(&r, (const char *const[]){"--db", srv.db, "tenant", "create", "-x", NULL});
    CHECK(r.status == 1 || r.status == 2, "--db bad tenant name: %d", r.status);
    run_free(&r);
    ctl(&r, (const char *const[]){"--db", srv.db, "tenant", "list", NULL});
    EXPECT_STATUS(&r, 0, "--db tenant list");
    CHECK(strstr(r.out, "\nboot ") && strstr(r.out, "\ndefault "), "--db tenant list: %s",
          r.out);
    run_free(&r);
    ctl(&r, (const char *const[]){"--db", srv.db, "tenant", "list", "--json", NULL});
    CHECK(json_is_array(r.json) && json_array_size(r.json) >= 2, "--db tenant list --json: %s",
          r.out);
    run_free(&r);
    ctl(&r, (const char *const[]){"--db", srv.db, "token", "create", "--tenant", "nosuch",
                                  "--name", "admin", NULL});
    EXPECT_STATUS(&r, 1, "--db token create for a missing tenant");
    run_free(&r);
    ctl(&r, (const char *const[]){"--db", srv.db, "token", "create", "--tenant", "boot",
                                  "--name", "admin", "--scopes", "admin", NULL});
    EXPECT_STATUS(&r, 0, "--db token create --tenant boot");
    snprintf(tok, sizeof tok, "%s", r.out);
    trim_line(tok);
    run_free(&r);
    ctl(&r, (const char *const[]){"--db", srv.db, "token", "list", "--tenant", "boot", NULL});
    CHECK(strstr(r.out, "admin") && !strstr(r.out, "scimd_"), "--db token list --tenant: %s",
          r.out);
    run_free(&r);
    /* The default tenant's tokens are not boot's. */
    ctl(&r, (const char *const[]){"--db", srv.db, "token", "list", NULL});
    CHECK(strstr(r.out, "e2e") != NULL, "--db token list (default): %s", r.out);
    run_free(&r);

    CHECK(e2e_server_restart(&srv) == 0, "restart");
    {
        const char *colon = strchr(srv.base_url + 7, '/');
        snprintf(root, sizeof root, "%.*s", colon ? (int)(colon - srv.base_url) : 0,
                 srv.base_url);
    }
    snprintf(path, sizeof path, "%s/boot.tok", srv.dir);
    write_file(path, tok);
    ctl(&r, (const char *const[]){"--url", root, "--token-file", path, "token", "list",
                                  "--tenant", "boot", NULL});
    EXPECT_STATUS(&r, 0, "boot token list over --url");
    CHECK(strstr(r.out, "admin") != NULL, "boot token list: %s", r.out);
    run_free(&r);
    ctl(&r, (const char *const[]){"--url", root, "--token-file", path, "tenant", "show",
                                  "boot", "--json", NULL});
    EXPECT_STATUS(&r, 0, "boot tenant show");
    CHECK(strcmp(jstr(r.json, "name"), "boot") == 0,
          "boot's own tenant: %s", r.out);
    run_free(&r);
    ctl(&r, (const char *const[]){"--url", root, "--token-file", path, "tenant", "show",
                                  "default", NULL});
    EXPECT_STATUS(&r, 1, "boot admin on another tenant");
    run_free(&r);
    ctl(&r, (const char *const[]){"--url", root, "--token-file", path, "token", "create",
                                  "--tenant", "boot", "--name", "entra", NULL});
    EXPECT_STATUS(&r, 0, "boot token create over --url");
    {
        char t[512];
        snprintf(t, sizeof t, "%s", r.out);
        trim_line(t);
        CHECK(scim(t, "GET", "/tenants/boot/scim/v2/Users", NULL, NULL) == 200,
              "boot's SCIM token");
    }
    run_free(&r);
    /* Without --tenant: a tenant admin token cannot list tenants (403), and the admin API has
     * no "who am I", so scimctl either finds the tenant (should the server list a tenant
     * admin's own tenant) or asks for --tenant: never another tenant. */
    ctl(&r, (const char *const[]){"--url", root, "--token-file", path, "tenant", "show",
                                  "--json", NULL});
    CHECK((r.status == 0 && strcmp(jstr(r.json, "name"), "boot") == 0) ||
              (r.status == 1 && strstr(r.err, "--tenant") && r.out[0] == '\0'),
          "boot tenant show without --tenant: %d %s %s", r.status, r.out, r.err);
    run_free(&r);
    /* The admin-only token is refused on SCIM. */
    CHECK(scim(tok, "GET", "/scim/v2/Users", NULL, NULL) == 403, "admin-only token on SCIM");
}

int main(void)
{
    struct run r;
    json_t *j = NULL;
    char uid[64] = "", gid[64] = "", acme_scim[512] = "";

    setvbuf(stdout, NULL, _IOLBF, 0);
    e2e_global_init();
    if (!getenv("SCIMCTL_BIN")) {
        fprintf(stderr, "SCIMCTL_BIN is not set\n");
        return 1;
    }
    if (e2e_server_start(&srv, NULL) != 0) {
        e2e_server_cleanup(&srv, 0);
        return 1;
    }
    {
        const char *slash = strchr(srv.base_url + 7, '/');
        snprintf(root, sizeof root, "%.*s", slash ? (int)(slash - srv.base_url) : 0,
                 srv.base_url);
    }
    /* The harness's token has only the SCIM scopes: mint an operator admin token. */
    ctl(&r, (const char *const[]){"--db", srv.db, "token", "create", "--name", "admin",
                                  "--scopes", "scim:read scim:write admin", NULL});
    EXPECT_STATUS(&r, 0, "mint admin token");
    snprintf(tokfile, sizeof tokfile, "%s/admin.tok", srv.dir);
    write_file(tokfile, r.out);
    run_free(&r);

    test_help_and_usage();
    test_tenants_and_tokens();

    /* SCIM data in tenant acme: a user and a group, through a SCIM token of acme. */
    ADMIN(&r, "token", "create", "--tenant", "acme", "--name", "idp");
    snprintf(acme_scim, sizeof acme_scim, "%s", r.out);
    trim_line(acme_scim);
    run_free(&r);
    CHECK(scim(acme_scim, "POST", "/scim/v2/Users",
               "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
               "\"userName\":\"jane@example.com\",\"active\":true,"
               "\"emails\":[{\"value\":\"jane@example.com\",\"primary\":true}]}",
               &j) == 201,
          "SCIM create user");
    snprintf(uid, sizeof uid, "%s", jstr(j, "id"));
    json_decref(j);
    j = NULL;
    CHECK(scim(acme_scim, "POST", "/scim/v2/Groups",
               "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
               "\"displayName\":\"Sales\"}",
               &j) == 201,
          "SCIM create group");
    snprintf(gid, sizeof gid, "%s", jstr(j, "id"));
    json_decref(j);

    test_settings(gid);
    test_users_groups(acme_scim, uid, gid);
    test_db_bootstrap();

    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    else
        printf("scimctl_admin: all checks passed\n");
    e2e_server_cleanup(&srv, failures == 0);
    return failures ? 1 : 0;
}
