/* e2e/plog: the provisioning log (docs/operations.md, "Provisioning log").
 * Makes a set of SCIM requests (successes and failures, an Okta User-Agent, an Entra-flagged
 * PATCH, a Bulk request), then reads the log through the admin API and checks every entry
 * against the request made; checks the filters, that no token or password reaches the
 * database, scimctl log --json/--csv/--follow, that a clean shutdown right after a burst keeps
 * every entry, and pruning by count and by age. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"

extern char **environ;

#define PASSWORD "Pw-Secret-7731!"
#define USER_SCHEMA "urn:ietf:params:scim:schemas:core:2.0:User"

static int failures;

static void check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int cond, const char *fmt, ...)
{
    va_list ap;
    if (cond)
        return;
    failures++;
    fputs("FAIL: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The server root ("http://127.0.0.1:PORT") from base_url. */
static void root_of(const struct e2e_server *srv, char *out, size_t n)
{
    snprintf(out, n, "%s", srv->base_url);
    char *p = strstr(out + 8, "/scim/v2");
    if (p)
        *p = '\0';
}

/* GET /admin/v1/tenants/default/log + query; returns the parsed list (owned) or NULL. */
static json_t *log_get(const struct e2e_server *srv, const char *query, long *status)
{
    char root[256], url[2048];
    struct e2e_response r;
    json_t *out = NULL;
    root_of(srv, root, sizeof root);
    snprintf(url, sizeof url, "%s/admin/v1/tenants/default/log%s", root, query);
    if (e2e_request(srv, "GET", url, NULL, NULL, &r) == 0) {
        if (status)
            *status = r.status;
        if (r.json)
            out = json_incref(r.json);
    }
    e2e_response_free(&r);
    return out;
}

static long total_of(const struct e2e_server *srv, const char *query)
{
    json_t *l = log_get(srv, query, NULL);
    long t = l ? (long)json_integer_value(json_object_get(l, "total")) : -1;
    json_decref(l);
    return t;
}

/* The log is written by a background thread: poll until `total` satisfies `ok` or `ms` pass
 * (a loaded machine may flush or prune later than the nominal interval). Returns the last total. */
static long wait_total(const struct e2e_server *srv, const char *query, bool (*ok)(long, long),
                       long want, long ms)
{
    long t = total_of(srv, query);
    for (long waited = 0; !ok(t, want) && waited < ms; waited += 100) {
        sleep_ms(100);
        t = total_of(srv, query);
    }
    return t;
}

static bool at_least(long t, long want)
{
    return t >= want;
}

static bool exactly(long t, long want)
{
    return t == want;
}

static const char *sget(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "(null)";
}

static long req(const struct e2e_server *srv, const char *method, const char *path,
                const char *const *headers, const char *body, char *id_out, size_t id_len)
{
    struct e2e_response r;
    long st = -1;
    if (e2e_request(srv, method, path, headers, body, &r) == 0) {
        st = r.status;
        if (id_out) {
            const char *id = json_string_value(json_object_get(r.json, "id"));
            snprintf(id_out, id_len, "%s", id ? id : "");
        }
    }
    e2e_response_free(&r);
    return st;
}

static int has_compat(const json_t *e, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(e, "compat"), i, v)
        if (json_string_value(v) && strcmp(json_string_value(v), name) == 0)
            return 1;
    return 0;
}

/* Checks one entry's fields. NULL expectations are not checked; "" means JSON null. */
static void expect_entry(const json_t *e, const char *what, const char *method, const char *path,
                         long status, const char *scim_type, const char *detail_part,
                         const char *user, const char *client)
{
    if (!e) {
        check(0, "%s: entry missing", what);
        return;
    }
    check(strcmp(sget(e, "method"), method) == 0, "%s: method %s", what, sget(e, "method"));
    if (path)
        check(strcmp(sget(e, "path"), path) == 0, "%s: path %s, expected %s", what,
              sget(e, "path"), path);
    check(json_integer_value(json_object_get(e, "status")) == status, "%s: status %lld, expected %ld",
          what, (long long)json_integer_value(json_object_get(e, "status")), status);
    if (scim_type)
        check(*scim_type ? strcmp(sget(e, "scimType"), scim_type) == 0
                         : json_is_null(json_object_get(e, "scimType")),
              "%s: scimType %s, expected %s", what, sget(e, "scimType"), scim_type);
    if (detail_part)
        check(*detail_part ? strstr(sget(e, "detail"), detail_part) != NULL
                           : json_is_null(json_object_get(e, "detail")),
              "%s: detail '%s' lacks '%s'", what, sget(e, "detail"), detail_part);
    if (user)
        check(strcmp(sget(e, "userName"), user) == 0, "%s: userName %s, expected %s", what,
              sget(e, "userName"), user);
    if (client)
        check(strcmp(sget(e, "client"), client) == 0, "%s: client %s, expected %s", what,
              sget(e, "client"), client);
    check(strcmp(sget(e, "token"), "e2e") == 0, "%s: token %s", what, sget(e, "token"));
    check(strlen(sget(e, "requestId")) >= 8, "%s: requestId missing", what);
    check(json_is_real(json_object_get(e, "latencyMs")), "%s: latencyMs missing", what);
}

/* Whether `needle` occurs in the file (binary search through its bytes). */
static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    size_t n = strlen(needle), len = 0, cap = 0;
    char *buf = NULL, chunk[65536];
    size_t got;
    int hit = 0;
    if (!f)
        return 0;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got > cap) {
            cap = (len + got) * 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(f);
    hit = buf && memmem(buf, len, needle, n) != NULL;
    free(buf);
    return hit;
}

/* Runs scimctl against the server; stdout into *out (malloc'd). Returns the exit status. */
static int ctl_run(const struct e2e_server *srv, const char *const *args, char **out)
{
    const char *bin = getenv("SCIMCTL_BIN");
    char *argv[32], *envp[512], root[256], urlenv[300], tokenv[600], outp[700];
    size_t n = 0, ne = 0;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st, rc = -1;
    FILE *f;

    root_of(srv, root, sizeof root);
    snprintf(urlenv, sizeof urlenv, "SCIMCTL_URL=%s", root);
    snprintf(tokenv, sizeof tokenv, "SCIMCTL_TOKEN=%s", srv->token);
    snprintf(outp, sizeof outp, "%s/ctl.out", srv->dir);
    argv[n++] = (char *)bin;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    for (char **e = environ; *e && ne < 500; e++)
        if (strncmp(*e, "SCIMCTL_", 8) != 0 && strncmp(*e, "SCIMD_DB=", 9) != 0)
            envp[ne++] = *e;
    envp[ne++] = urlenv;
    envp[ne++] = tokenv;
    envp[ne] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (posix_spawn(&pid, bin, &fa, NULL, argv, envp) == 0 && waitpid(pid, &st, 0) == pid)
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    posix_spawn_file_actions_destroy(&fa);
    *out = NULL;
    if ((f = fopen(outp, "rb")) != NULL) {
        size_t cap = 1 << 20, len;
        *out = calloc(1, cap + 1);
        if (*out) {
            len = fread(*out, 1, cap, f);
            (*out)[len] = '\0';
        }
        fclose(f);
    }
    if (!*out)
        *out = calloc(1, 1);
    return rc;
}

/* Reads one line from fd within timeout_ms into buf; 0 or -1. */
static int read_line(int fd, char *buf, size_t n, long timeout_ms)
{
    size_t len = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (len + 1 < n) {
        struct timespec t1;
        struct pollfd p = {fd, POLLIN, 0};
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long left = timeout_ms - ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        ssize_t r = read(fd, buf + len, 1);
        if (r <= 0)
            return -1;
        if (buf[len] == '\n') {
            buf[len] = '\0';
            return 0;
        }
        len++;
    }
    buf[len] = '\0';
    return 0;
}

static void test_follow(const struct e2e_server *srv)
{
    const char *bin = getenv("SCIMCTL_BIN");
    char root[256], urlenv[300], tokenv[600], line[8192];
    char *argv[] = {(char *)bin, (char *)"log", (char *)"--follow", (char *)"--json",
                    (char *)"--count", (char *)"1", NULL};
    char *envp[512];
    size_t ne = 0;
    int pfd[2];
    pid_t pid;
    posix_spawn_file_actions_t fa;

    root_of(srv, root, sizeof root);
    snprintf(urlenv, sizeof urlenv, "SCIMCTL_URL=%s", root);
    snprintf(tokenv, sizeof tokenv, "SCIMCTL_TOKEN=%s", srv->token);
    for (char **e = environ; *e && ne < 500; e++)
        if (strncmp(*e, "SCIMCTL_", 8) != 0)
            envp[ne++] = *e;
    envp[ne++] = urlenv;
    envp[ne++] = tokenv;
    envp[ne] = NULL;
    if (pipe(pfd) != 0) {
        check(0, "pipe");
        return;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    int src = posix_spawn(&pid, bin, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (src != 0) {
        check(0, "cannot spawn scimctl log --follow");
        close(pfd[0]);
        return;
    }
    /* the last existing entry first */
    check(read_line(pfd[0], line, sizeof line, 5000) == 0, "follow: no first line");
    req(srv, "GET", "/Users/follow-me-404", NULL, NULL, NULL, 0);
    if (read_line(pfd[0], line, sizeof line, 6000) != 0) {
        check(0, "follow: the new entry did not arrive within 6 s");
    } else {
        json_t *e = json_loads(line, 0, NULL);
        check(e && strcmp(sget(e, "path"), "/scim/v2/Users/follow-me-404") == 0 &&
                  json_integer_value(json_object_get(e, "status")) == 404,
              "follow: unexpected line %s", line);
        json_decref(e);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    close(pfd[0]);
}

static void main_server(void)
{
    struct e2e_server srv;
    char alice[64] = "", bad_tok[] = "Authorization: Bearer scimd_not-a-real-token";
    char body[1024], path[256];
    const char *okta[] = {"User-Agent: Okta SCIM Client 1.0.0", NULL};
    const char *badauth[] = {bad_tok, NULL};
    long st;

    memset(&srv, 0, sizeof srv);
    if (e2e_server_start(&srv, NULL) != 0) {
        check(0, "server start");
        e2e_server_cleanup(&srv, 0);
        return;
    }
    /* 1. the requests */
    snprintf(body, sizeof body,
             "{\"schemas\":[\"" USER_SCHEMA "\"],\"userName\":\"alice@example.com\","
             "\"password\":\"" PASSWORD "\"}");
    st = req(&srv, "POST", "/Users", okta, body, alice, sizeof alice);
    check(st == 201 && *alice, "create alice: %ld", st);
    st = req(&srv, "POST", "/Users", NULL, body, NULL, 0);
    check(st == 409, "duplicate: %ld", st);
    st = req(&srv, "GET", "/Users?filter=userName%20eqq%20%22x%22", NULL, NULL, NULL, 0);
    check(st == 400, "bad filter: %ld", st);
    st = req(&srv, "GET", "/Users/no-such-id", NULL, NULL, NULL, 0);
    check(st == 404, "404: %ld", st);
    st = req(&srv, "GET", "/Users", badauth, NULL, NULL, 0);
    check(st == 401, "401: %ld", st);
    snprintf(path, sizeof path, "/Users/%s?aadOptscim062020", alice);
    st = req(&srv, "PATCH", path, NULL,
             "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":"
             "[{\"op\":\"Replace\",\"path\":\"active\",\"value\":\"False\"}]}", NULL, 0);
    check(st == 200 || st == 204, "entra patch: %ld", st);
    st = req(&srv, "POST", "/Bulk", NULL,
             "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:BulkRequest\"],\"Operations\":["
             "{\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"b\",\"data\":{\"schemas\":[\""
             USER_SCHEMA "\"],\"userName\":\"bob@example.com\"}},"
             "{\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"c\",\"data\":{\"schemas\":[\""
             USER_SCHEMA "\"],\"userName\":\"alice@example.com\"}}]}", NULL, 0);
    check(st == 200, "bulk: %ld", st);
    wait_total(&srv, "?count=0", at_least, 8, 10000); /* the writer flushes every 200 ms */

    /* 2. the entries, oldest first */
    json_t *l = log_get(&srv, "?order=asc", &st);
    json_t *items = json_object_get(l, "items");
    check(st == 200, "log status %ld", st);
    check(json_array_size(items) == 8 && json_integer_value(json_object_get(l, "total")) == 8,
          "expected 8 entries (no 401), got %zu", json_array_size(items));
    char upath[256];
    snprintf(upath, sizeof upath, "/scim/v2/Users/%s", alice);
    expect_entry(json_array_get(items, 0), "create", "POST", "/scim/v2/Users", 201, "", "",
                 "alice@example.com", "okta");
    check(strcmp(sget(json_array_get(items, 0), "resourceId"), alice) == 0 &&
              strcmp(sget(json_array_get(items, 0), "resourceType"), "User") == 0,
          "create: resourceId/type");
    expect_entry(json_array_get(items, 1), "duplicate", "POST", "/scim/v2/Users", 409,
                 "uniqueness", "alice@example.com", "alice@example.com", "unknown");
    expect_entry(json_array_get(items, 2), "bad filter", "GET", "/scim/v2/Users", 400,
                 "invalidFilter", "filter", NULL, "unknown");
    expect_entry(json_array_get(items, 3), "404", "GET", "/scim/v2/Users/no-such-id", 404, "",
                 "not found", NULL, NULL);
    check(strcmp(sget(json_array_get(items, 3), "resourceId"), "no-such-id") == 0, "404: resourceId");
    expect_entry(json_array_get(items, 4), "entra patch", "PATCH", upath, st = (long)json_integer_value(
                     json_object_get(json_array_get(items, 4), "status")), "", "",
                 "alice@example.com", "entra");
    check(st == 200 || st == 204, "patch status %ld", st);
    check(has_compat(json_array_get(items, 4), "op_case") &&
              has_compat(json_array_get(items, 4), "string_boolean"),
          "patch: compat op_case and string_boolean");
    expect_entry(json_array_get(items, 5), "bulk op 1", "POST", "/scim/v2/Users", 201, "", "",
                 "bob@example.com", NULL);
    check(json_integer_value(json_object_get(json_array_get(items, 5), "bulkOperation")) == 1,
          "bulk op 1: bulkOperation");
    expect_entry(json_array_get(items, 6), "bulk op 2", "POST", "/scim/v2/Users", 409,
                 "uniqueness", "already", "alice@example.com", NULL);
    check(json_integer_value(json_object_get(json_array_get(items, 6), "bulkOperation")) == 2,
          "bulk op 2: bulkOperation");
    expect_entry(json_array_get(items, 7), "bulk", "POST", "/scim/v2/Bulk", 200, "", "", NULL, NULL);
    check(json_is_null(json_object_get(json_array_get(items, 7), "bulkOperation")),
          "bulk: bulkOperation null");
    /* the same request id for the Bulk request and its operations */
    check(strcmp(sget(json_array_get(items, 5), "requestId"),
                  sget(json_array_get(items, 7), "requestId")) == 0, "bulk: request ids");
    long first_id = (long)json_integer_value(json_object_get(json_array_get(items, 0), "id"));
    /* newest first by default */
    json_t *d = log_get(&srv, "?count=1", NULL);
    check(strcmp(sget(json_array_get(json_object_get(d, "items"), 0), "path"), "/scim/v2/Bulk") == 0,
          "default order is newest first");
    check(json_integer_value(json_object_get(d, "total")) == 8 &&
              json_integer_value(json_object_get(d, "count")) == 1, "count=1 page");
    json_decref(d);
    json_decref(l);

    /* 3. filters */
    check(total_of(&srv, "?status=4xx") == 4, "status=4xx: %ld", total_of(&srv, "?status=4xx"));
    check(total_of(&srv, "?status=409") == 2, "status=409");
    check(total_of(&srv, "?status=2xx") == 4, "status=2xx");
    check(total_of(&srv, "?status=5xx") == 0, "status=5xx");
    check(total_of(&srv, "?user=ALICE@example.com") == 4, "user=ALICE: %ld",
          total_of(&srv, "?user=ALICE@example.com"));
    check(total_of(&srv, "?user=alice") == 0, "user is an exact match");
    snprintf(path, sizeof path, "?resourceId=%s", alice);
    check(total_of(&srv, path) == 2, "resourceId: %ld", total_of(&srv, path));
    check(total_of(&srv, "?resourceType=Group") == 0, "resourceType=Group");
    check(total_of(&srv, "?resourceType=User") == 7, "resourceType=User");
    check(total_of(&srv, "?token=e2e") == 8, "token=e2e");
    check(total_of(&srv, "?token=other") == 0, "token=other");
    check(total_of(&srv, "?client=okta") == 1, "client=okta");
    check(total_of(&srv, "?client=entra") == 1, "client=entra");
    check(total_of(&srv, "?since=2999-01-01T00:00:00Z") == 0, "since future");
    check(total_of(&srv, "?until=2000-01-01T00:00:00Z") == 0, "until past");
    check(total_of(&srv, "?since=2000-01-01T00:00:00Z&status=4xx") == 4, "since past + 4xx");
    snprintf(path, sizeof path, "?order=asc&after=%ld&count=2", first_id);
    l = log_get(&srv, path, NULL);
    check(json_array_size(json_object_get(l, "items")) == 2 &&
              json_integer_value(json_object_get(json_array_get(json_object_get(l, "items"), 0), "id")) ==
                  first_id + 1 && json_integer_value(json_object_get(l, "total")) == 7,
          "after=first order=asc count=2");
    json_decref(l);
    l = log_get(&srv, "?status=abc", &st);
    check(st == 400 && strcmp(sget(json_object_get(l, "error"), "code"), "bad_request") == 0,
          "status=abc: %ld", st);
    json_decref(l);

    /* 4. no token or password anywhere in the log */
    l = log_get(&srv, "?count=1000", NULL);
    char *text = json_dumps(l, 0);
    check(text && !strstr(text, PASSWORD) && !strstr(text, srv.token) &&
              !strstr(text, "scimd_not-a-real-token"), "a secret in the log API output");
    free(text);
    json_decref(l);

    /* 5. scimctl log --json / --csv */
    char *out = NULL;
    const char *a1[] = {"log", "--json", "--status", "409", NULL};
    check(ctl_run(&srv, a1, &out) == 0, "scimctl log --json exit");
    json_t *j = json_loads(out, 0, NULL);
    check(j && json_array_size(json_object_get(j, "items")) == 2, "scimctl log --json: %s", out);
    json_decref(j);
    free(out);
    const char *a2[] = {"log", "--csv", "--user", "alice@example.com", NULL};
    check(ctl_run(&srv, a2, &out) == 0, "scimctl log --csv exit");
    check(strncmp(out, "id,time,status,method,path,resourceType,resourceId,userName,displayName,"
                       "token,client,scimType,detail,latencyMs,compat,requestId,bulkOperation\n",
                  strlen("id,time,status,method,path,resourceType,resourceId,userName,displayName,"
                         "token,client,scimType,detail,latencyMs,compat,requestId,bulkOperation\n")) == 0,
          "csv header: %.200s", out);
    {
        int lines = 0;
        for (const char *p = out; *p; p++)
            lines += *p == '\n';
        check(lines == 5, "csv: %d lines, expected header + 4", lines);
    }
    check(strstr(out, ",409,POST,") && strstr(out, "\"userName \"\"alice@example.com\"\" is already"),
          "csv quoting of the 409 detail: %s", out);
    check(strstr(out, "op_case;string_boolean") || strstr(out, "string_boolean;op_case"),
          "csv compat column");
    free(out);

    /* 6. follow */
    test_follow(&srv);

    /* 7. clean shutdown right after a burst keeps every entry */
    /* Wait until the entries of the requests so far are all written (the total stops moving),
     * so that the 300 below are the only ones the shutdown must keep. */
    long before = total_of(&srv, "?count=0");
    for (int waited = 0; waited < 10000; waited += 300) {
        sleep_ms(300);
        long now = total_of(&srv, "?count=0");
        if (now == before)
            break;
        before = now;
    }
    for (int i = 0; i < 300; i++) {
        snprintf(path, sizeof path, "/Users/burst-%d", i);
        req(&srv, "GET", path, NULL, NULL, NULL, 0);
    }
    e2e_server_stop(&srv);
    check(e2e_server_restart(&srv) == 0, "restart");
    long after = total_of(&srv, "?count=0");
    check(after == before + 300, "after a clean shutdown: %ld entries, expected %ld", after,
          before + 300);
    check(total_of(&srv, "?resourceId=burst-299") == 1, "the last burst entry");
    e2e_server_stop(&srv);

    /* 8. no secret in the database files */
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", srv.db);
    check(!file_contains(srv.db, PASSWORD) && !file_contains(wal, PASSWORD),
          "the password is in the database");
    check(!file_contains(srv.db, srv.token) && !file_contains(wal, srv.token),
          "the token is in the database");
    e2e_server_cleanup(&srv, failures == 0);
}

static void prune_servers(void)
{
    struct e2e_server srv;
    const char *count_args[] = {"--log-max-entries", "3", "--log-prune-interval", "1"};
    const struct e2e_opts copts = {count_args, 4, NULL, 0};
    char path[64];

    memset(&srv, 0, sizeof srv);
    if (e2e_server_start(&srv, &copts) != 0) {
        check(0, "server start (count)");
        e2e_server_cleanup(&srv, 0);
        return;
    }
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "/Users/p-%d", i);
        req(&srv, "GET", path, NULL, NULL, NULL, 0);
    }
    wait_total(&srv, "", exactly, 3, 15000);
    json_t *l = log_get(&srv, "", NULL);
    check(json_integer_value(json_object_get(l, "total")) == 3, "max-entries 3: total %lld",
          (long long)json_integer_value(json_object_get(l, "total")));
    check(strcmp(sget(json_array_get(json_object_get(l, "items"), 0), "resourceId"), "p-5") == 0 &&
              strcmp(sget(json_array_get(json_object_get(l, "items"), 2), "resourceId"), "p-3") == 0,
          "max-entries keeps the newest");
    json_decref(l);
    e2e_server_cleanup(&srv, failures == 0);

    /* a full queue drops entries (counted, one warning), never the requests */
    const char *q_args[] = {"--log-queue", "1"};
    const struct e2e_opts qopts = {q_args, 2, NULL, 0};
    memset(&srv, 0, sizeof srv);
    if (e2e_server_start(&srv, &qopts) != 0) {
        check(0, "server start (queue)");
        e2e_server_cleanup(&srv, 0);
        return;
    }
    int answered = 0;
    for (int i = 0; i < 20; i++) {
        snprintf(path, sizeof path, "/Users/q-%d", i);
        answered += req(&srv, "GET", path, NULL, NULL, NULL, 0) == 404;
    }
    check(answered == 20, "queue full: only %d of 20 requests answered", answered);
    wait_total(&srv, "", at_least, 1, 10000);
    sleep_ms(300);
    long kept = total_of(&srv, "");
    check(kept >= 1 && kept < 20, "queue of 1: %ld entries kept", kept);
    check(file_contains(srv.log, "provisioning log queue full"), "no queue-full warning logged");
    e2e_server_cleanup(&srv, failures == 0);

    /* by age: 0.00003 days = 2.6 s */
    const char *age_args[] = {"--log-retention-days", "0.00003", "--log-prune-interval", "1"};
    const struct e2e_opts aopts = {age_args, 4, NULL, 0};
    memset(&srv, 0, sizeof srv);
    if (e2e_server_start(&srv, &aopts) != 0) {
        check(0, "server start (age)");
        e2e_server_cleanup(&srv, 0);
        return;
    }
    req(&srv, "GET", "/Users/a-1", NULL, NULL, NULL, 0);
    req(&srv, "GET", "/Users/a-2", NULL, NULL, NULL, 0);
    /* Both entries appear (the writer may prune them again once they are 2.6 s old, so this
     * only asks that the second one was written at some point), then both are pruned. */
    check(wait_total(&srv, "", at_least, 2, 2500) >= 1, "age: entries written at first");
    long left = wait_total(&srv, "", exactly, 0, 20000);
    check(left == 0, "age: pruned after the retention: %ld", left);
    e2e_server_cleanup(&srv, failures == 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    setenv("E2E_TOKEN_SCOPES", "scim:read scim:write admin", 1);
    e2e_global_init();
    main_server();
    prune_servers();
    if (failures)
        fprintf(stderr, "%d failure(s)\n", failures);
    else
        printf("plog: all checks passed\n");
    return failures ? 1 : 0;
}
