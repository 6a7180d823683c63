/* e2e/db_export: scimctl db export / db import move a whole directory between backends.
 * A scimd on SQLite is filled through the SCIM and admin APIs (users with e-mails, passwords
 * and an extension, nested groups, PATCHed versions, a local user, a deprovisioned user, tenant
 * settings, a second tenant with its own token, a revoked token); then
 *   SQLite --export--> e1 --import--> middle --export--> e2 --import--> SQLite --export--> e3
 * where the middle database is PostgreSQL when SCIMD_TEST_BACKEND=postgresql (else SQLite).
 * Checks: e1, e2 and e3 are the same records; importing into a non-empty database is refused
 * (exit 1, nothing changed); scimd on the middle and on the final database accepts the source's
 * tokens and answers every resource exactly as the source did (ids, versions, times, members,
 * groups), and takes new writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

static int failures;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            failures++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                           \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

/* Runs scimctl --db db args...; stdout into out (trailing newlines removed). Exit status. */
static int ctl(const char *db, const char *const *args, char *out, size_t outlen)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char *argv[16];
        size_t n = 0;
        argv[n++] = getenv("SCIMCTL_BIN");
        argv[n++] = (char *)"--db";
        argv[n++] = (char *)db;
        for (; *args && n < 15; args++)
            argv[n++] = (char *)*args;
        argv[n] = NULL;
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t k;
    char sink[256];
    while ((k = read(fds[0], len + 1 < outlen ? out + len : sink,
                     len + 1 < outlen ? outlen - 1 - len : sizeof sink)) > 0)
        if (len + 1 < outlen)
            len += (size_t)k;
    out[len] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    while (len && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = calloc(1, (size_t)n + 1)) && fread(buf, 1, (size_t)n, f) != (size_t)n)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

/* The records of an export: everything after its header line. */
static const char *records_of(const char *text)
{
    const char *nl = text ? strchr(text, '\n') : NULL;
    return nl ? nl + 1 : "";
}

static long req(const struct e2e_server *s, const char *token, const char *method, const char *path,
                const char *body, json_t **out)
{
    char auth[600], url[512];
    const char *hdrs[3] = {NULL, NULL, NULL};
    size_t h = 0;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        hdrs[h++] = auth;
    }
    if (strncmp(path, "/admin", 6) == 0) {
        const char *p = strstr(s->base_url, "/scim/v2");
        snprintf(url, sizeof url, "%.*s/admin/v1/tenants/default%s", (int)(p - s->base_url), s->base_url, path + 6);
        path = url;
        hdrs[h++] = "Content-Type: application/json";
    }
    struct e2e_response r;
    long st = 0;
    if (e2e_request(s, method, path, hdrs, body, &r) == 0)
        st = r.status;
    if (out)
        *out = json_incref(r.json);
    e2e_response_free(&r);
    return st;
}

static const char *id_of(json_t *o)
{
    return json_string_value(json_object_get(o, "id"));
}

#define USER(n, extra) "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"" n "\"" extra "}"

/* The source directory: returns the GET paths of every resource it made. */
static int fill(const struct e2e_server *s, const char *srcdb, json_t *paths, char *acme_token, size_t toklen)
{
    json_t *u = NULL;
    char body[1024], path[256];
    const char *ids[4];
    json_t *keep = json_array();
    CHECK(req(s, NULL, "PATCH", "/admin/settings", "{\"delete_mode\":\"deactivate\",\"allow_manual_updates\":true}",
              NULL) == 200, "settings");
    static const char *const users[4] = {
        USER("ann@example.com", ",\"name\":{\"givenName\":\"Ann\",\"familyName\":\"Lee\"},\"password\":\"S3cret-pass!\","
                                "\"emails\":[{\"value\":\"ann@example.com\",\"type\":\"work\",\"primary\":true},"
                                "{\"value\":\"ann@home.example\"}],\"externalId\":\"ext-ann\",\"active\":true"),
        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\","
        "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"],\"userName\":\"bob@example.com\","
        "\"displayName\":\"Bob\",\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":"
        "{\"employeeNumber\":\"42\",\"department\":\"R&D\"}}",
        USER("cy@example.com", ",\"active\":false"),
        USER("gone@example.com", ""),
    };
    for (int i = 0; i < 4; i++) {
        CHECK(req(s, NULL, "POST", "/Users", users[i], &u) == 201, "create user %d", i);
        ids[i] = id_of(u) ? id_of(u) : "";
        json_array_append_new(keep, json_string(ids[i]));
        ids[i] = json_string_value(json_array_get(keep, json_array_size(keep) - 1));
        json_decref(u);
        u = NULL;
    }
    snprintf(path, sizeof path, "/Users/%s", ids[1]);
    long pst = req(s, NULL, "PATCH", path,
                   "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":[{\"op\":"
                   "\"replace\",\"path\":\"title\",\"value\":\"Boss\"}]}", NULL);
    CHECK(pst == 200 || pst == 204, "patch bob: %ld", pst);
    snprintf(body, sizeof body,
             "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"displayName\":\"Inner\","
             "\"members\":[{\"value\":\"%s\"},{\"value\":\"%s\"}]}", ids[0], ids[3]);
    CHECK(req(s, NULL, "POST", "/Groups", body, &u) == 201, "create group Inner");
    const char *inner = id_of(u) ? id_of(u) : "";
    json_array_append_new(keep, json_string(inner));
    inner = json_string_value(json_array_get(keep, json_array_size(keep) - 1));
    json_decref(u);
    snprintf(body, sizeof body,
             "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"displayName\":\"Outer\","
             "\"members\":[{\"value\":\"%s\"},{\"value\":\"%s\"}]}", inner, ids[1]);
    CHECK(req(s, NULL, "POST", "/Groups", body, &u) == 201, "create group Outer");
    snprintf(path, sizeof path, "/Groups/%s", id_of(u) ? id_of(u) : "");
    json_array_append_new(paths, json_string(path));
    json_decref(u);
    /* a local (admin-created) user, then a deprovisioned one (delete_mode=deactivate) */
    CHECK(req(s, NULL, "POST", "/admin/users", "{\"userName\":\"local-dan\"}", &u) == 201, "local user");
    json_decref(u);
    snprintf(path, sizeof path, "/Users/%s", ids[3]);
    CHECK(req(s, NULL, "DELETE", path, NULL, NULL) == 204, "deprovision");
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/Users/%s", ids[i]);
        json_array_append_new(paths, json_string(path));
    }
    snprintf(path, sizeof path, "/Groups/%s", inner);
    json_array_append_new(paths, json_string(path));
    json_array_append_new(paths, json_string("/Users?sortBy=userName&count=50"));
    json_array_append_new(paths, json_string("/Groups?count=50"));
    json_array_append_new(paths, json_string("/admin/users?state=all&count=50"));
    json_array_append_new(paths, json_string("/admin/settings"));
    snprintf(path, sizeof path, "/admin/users/%s", ids[3]);
    json_array_append_new(paths, json_string(path));
    json_decref(keep);
    /* a second tenant with a token and a user; a revoked token */
    char out[512];
    const char *tc[] = {"tenant", "create", "acme", NULL};
    const char *tk[] = {"token", "create", "--tenant", "acme", "--name", "acme-idp", NULL};
    const char *t2[] = {"token", "create", "--name", "old", NULL};
    const char *rv[] = {"token", "revoke", "old", NULL};
    CHECK(ctl(srcdb, tc, out, sizeof out) == 0, "tenant create acme");
    CHECK(ctl(srcdb, tk, acme_token, toklen) == 0 && acme_token[0], "acme token");
    CHECK(ctl(srcdb, t2, out, sizeof out) == 0 && ctl(srcdb, rv, out, sizeof out) == 0, "revoked token");
    CHECK(req(s, acme_token, "POST", "/Users", USER("ann@example.com", ""), NULL) == 201, "acme user");
    return failures ? -1 : 0;
}

/* A response without what depends on the server's address ("$ref", "location"). */
static void strip_urls(json_t *j)
{
    if (json_is_object(j)) {
        json_object_del(j, "$ref");
        json_object_del(j, "location");
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
            strip_urls(v);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
            strip_urls(v);
    }
}

/* Each path answered by `s` (with `token`) as `want` holds. */
static void compare(const struct e2e_server *s, const char *what, json_t *paths, json_t *want, const char *acme)
{
    size_t i;
    json_t *p;
    json_array_foreach(paths, i, p) {
        json_t *got = NULL;
        long st = req(s, NULL, "GET", json_string_value(p), NULL, &got);
        strip_urls(got);
        CHECK(st == 200, "%s: GET %s: %ld", what, json_string_value(p), st);
        if (!json_equal(got, json_array_get(want, i))) {
            char *a = json_dumps(got, JSON_SORT_KEYS), *b = json_dumps(json_array_get(want, i), JSON_SORT_KEYS);
            CHECK(0, "%s: GET %s differs:\n got  %s\n want %s", what, json_string_value(p), a ? a : "null",
                  b ? b : "null");
            free(a);
            free(b);
        }
        json_decref(got);
    }
    json_t *l = NULL;
    CHECK(req(s, acme, "GET", "/Users", NULL, &l) == 200 && json_integer_value(json_object_get(l, "totalResults")) == 1,
          "%s: the acme token sees its one user", what);
    json_decref(l);
    CHECK(req(s, NULL, "POST", "/Users", USER("new-after-import@example.com", ""), NULL) == 201,
          "%s: a create after the import", what);
}

int main(void)
{
    e2e_global_init();
    setenv("E2E_TOKEN_SCOPES", "scim:read scim:write admin", 1);
    char tmp[256], srcdb[300], middb[640] = "", dstdb[300], e[3][300], out[1024], pgname[64] = "";
    char acme[512] = "";
    snprintf(tmp, sizeof tmp, "%s/scimd-dbexport-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(srcdb, sizeof srcdb, "%s/src.db", tmp);
    snprintf(dstdb, sizeof dstdb, "%s/dst.db", tmp);
    for (int i = 0; i < 3; i++)
        snprintf(e[i], sizeof e[i], "%s/e%d.jsonl", tmp, i + 1);
    if (e2e_backend_pg()) {
        if (e2e_pg_create_db(middb, sizeof middb, pgname, sizeof pgname) != 0)
            return 1;
    } else {
        snprintf(middb, sizeof middb, "%s/mid.db", tmp);
    }

    struct e2e_server src, mid, dst;
    json_t *paths = json_array(), *want = json_array();
    int started = e2e_server_start_on(&src, NULL, srcdb) == 0;
    CHECK(started, "scimd on %s", srcdb);
    if (started && fill(&src, srcdb, paths, acme, sizeof acme) == 0) {
        size_t i;
        json_t *p;
        json_array_foreach(paths, i, p) {
            json_t *got = NULL;
            req(&src, NULL, "GET", json_string_value(p), NULL, &got);
            strip_urls(got);
            json_array_append_new(want, got ? got : json_null());
        }
        /* a live export (scimd keeps running), then the round trip */
        const char *ex1[] = {"db", "export", "--output", e[0], NULL};
        CHECK(ctl(srcdb, ex1, out, sizeof out) == 0, "export from SQLite");
        const char *im1[] = {"db", "import", e[0], NULL};
        CHECK(ctl(middb, im1, out, sizeof out) == 0, "import into %s", middb);
        CHECK(strstr(out, "imported 2 tenants, 3 tokens, 8 users and groups, 3 memberships") != NULL,
              "import summary: %s", out);
        const char *ex2[] = {"db", "export", "--output", e[1], NULL};
        CHECK(ctl(middb, ex2, out, sizeof out) == 0, "export from %s", middb);
        const char *im2[] = {"db", "import", e[1], NULL};
        CHECK(ctl(dstdb, im2, out, sizeof out) == 0, "import into %s", dstdb);
        const char *ex3[] = {"db", "export", "--output", e[2], NULL};
        CHECK(ctl(dstdb, ex3, out, sizeof out) == 0, "export from %s", dstdb);
        char *t[3];
        for (int k = 0; k < 3; k++)
            t[k] = slurp(e[k]);
        CHECK(t[0] && strstr(t[0], "\"type\":\"member\"") && strstr(t[0], "\"origin\":\"local\"") &&
                  strstr(t[0], "\"deprovisioned\":true") && strstr(t[0], "\"revoked\":"),
              "the export has memberships, a local user, a deprovisioned user and a revoked token");
        CHECK(t[1] && strcmp(records_of(t[0]), records_of(t[1])) == 0, "SQLite and %s exports differ",
              e2e_backend_pg() ? "PostgreSQL" : "the middle");
        CHECK(t[2] && strcmp(records_of(t[0]), records_of(t[2])) == 0, "the round trip changed the directory");
        CHECK(t[1] && strstr(t[1], e2e_backend_pg() ? "\"backend\":\"postgresql\"" : "\"backend\":\"sqlite\""),
              "export header names the backend");
        for (int k = 0; k < 3; k++)
            free(t[k]);
        /* a second import into a database that now has data is refused and changes nothing */
        CHECK(ctl(dstdb, im2, out, sizeof out) == 1, "import into a non-empty database must fail");
        const char *ex4[] = {"db", "export", "--output", e[1], NULL};
        CHECK(ctl(dstdb, ex4, out, sizeof out) == 0, "export again");
        char *again = slurp(e[1]), *first = slurp(e[0]);
        CHECK(again && first && strcmp(records_of(again), records_of(first)) == 0, "a refused import changed data");
        free(again);
        free(first);
        /* the imported databases serve the source's token and resources as the source did */
        e2e_server_cleanup(&src, 1);
        started = 0;
        if (e2e_server_start_on(&mid, NULL, middb) == 0) {
            snprintf(mid.token, sizeof mid.token, "%s", src.token);
            compare(&mid, "middle", paths, want, acme);
        } else {
            CHECK(0, "scimd on the middle database");
        }
        e2e_server_cleanup(&mid, failures == 0);
        if (e2e_server_start_on(&dst, NULL, dstdb) == 0) {
            snprintf(dst.token, sizeof dst.token, "%s", src.token);
            compare(&dst, "final", paths, want, acme);
        } else {
            CHECK(0, "scimd on the final database");
        }
        e2e_server_cleanup(&dst, failures == 0);
    }
    if (started)
        e2e_server_cleanup(&src, failures == 0);
    json_decref(paths);
    json_decref(want);
    if (pgname[0] && failures == 0)
        e2e_pg_drop_db(pgname);
    if (failures == 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp);
    } else {
        fprintf(stderr, "kept %s\n", tmp);
    }
    printf("db_export: %s (%d failures)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
