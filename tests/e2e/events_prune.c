/* e2e/events_prune: change-feed retention and --db-pool against a real scimd.
 * - retention: with --events-max-entries 5 and a 1 s prune interval, a reader whose position was
 *   pruned gets 410 (SCIM Error body, oldestSeq, latestSeq) and a reader at the oldest kept
 *   position gets every kept event; an enabled webhook that cannot deliver holds its events
 *   beyond the limit, and disabling it releases them;
 * - flags: invalid --db-pool / SCIMD_DB_POOL / --events-* values exit 2 with a message, and
 *   --help documents the new flags;
 * - --db-pool 1 with 8 worker threads: concurrent writes, reads, admin reads and a long-poll
 *   all complete (a request never needs two pool connections at once). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"

#define USER_SCHEMA "urn:ietf:params:scim:schemas:core:2.0:User"
#define ERROR_URN "urn:ietf:params:scim:api:messages:2.0:Error"

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

static void root_of(const struct e2e_server *srv, char *out, size_t n)
{
    snprintf(out, n, "%s", srv->base_url);
    char *p = strstr(out + 8, "/scim/v2");
    if (p)
        *p = '\0';
}

/* One request; returns the status (0 transport failure) and, when wanted, the JSON body. */
static long req(const struct e2e_server *srv, const char *method, const char *path,
                const char *body, json_t **json)
{
    struct e2e_response r;
    char url[1024];
    const char *admin_hdrs[] = {"Content-Type: application/json", NULL};
    bool admin = strncmp(path, "/admin/", 7) == 0;
    long status = 0;
    if (admin) {
        char root[256];
        root_of(srv, root, sizeof root);
        snprintf(url, sizeof url, "%s%s", root, path);
    } else {
        snprintf(url, sizeof url, "%s", path);
    }
    if (json)
        *json = NULL;
    if (e2e_request(srv, method, url, admin ? admin_hdrs : NULL, body, &r) == 0) {
        status = r.status;
        if (json && r.json)
            *json = json_incref(r.json);
    }
    e2e_response_free(&r);
    return status;
}

static int create_users(const struct e2e_server *srv, const char *prefix, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"schemas\":[\"" USER_SCHEMA "\"],\"userName\":\"%s-%d\"}",
                 prefix, i);
        ok += req(srv, "POST", "/Users", body, NULL) == 201;
    }
    return ok;
}

static json_int_t iget(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* GET events?after=N until it answers `want` (15 s at most: the pruner runs every second, a
 * loaded machine may be late). Returns the last status; *body the last body (owned). */
static long events_until(const struct e2e_server *srv, long after, long want, json_t **body)
{
    char path[128];
    long st = 0;
    snprintf(path, sizeof path, "/admin/v1/tenants/default/events?after=%ld", after);
    for (int i = 0; i < 150; i++) {
        st = req(srv, "GET", path, NULL, body);
        if (st == want)
            return st;
        json_decref(*body);
        *body = NULL;
        sleep_ms(100);
    }
    return st;
}

/* A 410 body: SCIM Error fields, admin error object, oldestSeq and latestSeq. */
static void check_gone(json_t *b, long oldest, long latest, const char *what)
{
    char want[64];
    const char *detail = json_string_value(json_object_get(b, "detail"));
    snprintf(want, sizeof want, "oldest available event is seq %ld", oldest);
    check(json_is_string(json_array_get(json_object_get(b, "schemas"), 0)) &&
              strcmp(json_string_value(json_array_get(json_object_get(b, "schemas"), 0)),
                     ERROR_URN) == 0,
          "%s: schemas", what);
    check(json_is_string(json_object_get(b, "status")) &&
              strcmp(json_string_value(json_object_get(b, "status")), "410") == 0,
          "%s: status \"410\"", what);
    check(detail && strstr(detail, "pruned") && strstr(detail, want), "%s: detail \"%s\"", what,
          detail ? detail : "(none)");
    check(iget(b, "oldestSeq") == oldest, "%s: oldestSeq %lld, want %ld", what,
          (long long)iget(b, "oldestSeq"), oldest);
    check(iget(b, "latestSeq") == latest, "%s: latestSeq %lld, want %ld", what,
          (long long)iget(b, "latestSeq"), latest);
    json_t *e = json_object_get(b, "error");
    check(iget(e, "status") == 410 && json_is_string(json_object_get(e, "code")) &&
              strcmp(json_string_value(json_object_get(e, "code")), "gone") == 0,
          "%s: error object", what);
}

static void retention(void)
{
    struct e2e_server srv;
    const char *args[] = {"--events-max-entries", "5", "--log-prune-interval", "1"};
    const struct e2e_opts opts = {args, 4, NULL, 0};
    json_t *b = NULL;
    memset(&srv, 0, sizeof srv);
    if (e2e_server_start(&srv, &opts) != 0) {
        check(0, "server start (retention)");
        e2e_server_cleanup(&srv, 0);
        return;
    }
    check(create_users(&srv, "r", 8) == 8, "8 users created"); /* seq 1-8; 1-3 go */
    check(events_until(&srv, 0, 410, &b) == 410, "after=0 answered 410 once pruned");
    check_gone(b, 4, 8, "after=0");
    json_decref(b);
    check(req(&srv, "GET", "/admin/v1/tenants/default/events?after=3", NULL, &b) == 200,
          "after=3 (oldest - 1) is 200");
    check(json_array_size(json_object_get(b, "items")) == 5 &&
              iget(json_array_get(json_object_get(b, "items"), 0), "seq") == 4 &&
              iget(b, "next") == 8,
          "after=3: the 5 kept events 4-8");
    json_decref(b);
    check(req(&srv, "GET", "/admin/v1/tenants/default/events?after=2&wait=5", NULL, &b) == 410,
          "a long-poll on a pruned position: 410 at once");
    json_decref(b);

    /* an enabled webhook that cannot deliver (nothing listens on port 1) holds its events */
    check(req(&srv, "POST", "/admin/v1/tenants/default/webhooks",
              "{\"url\":\"http://127.0.0.1:1/hook\"}", &b) == 201,
          "webhook created");
    char hook[128];
    snprintf(hook, sizeof hook, "/admin/v1/tenants/default/webhooks/%s",
             json_string_value(json_object_get(b, "id")) ? json_string_value(json_object_get(b, "id"))
                                                         : "none");
    json_decref(b);
    check(create_users(&srv, "w", 6) == 6, "6 more users"); /* seq 9-14, held */
    /* the limit alone would cut at 9; the webhook (delivered up to 8) keeps 9-14 */
    check(events_until(&srv, 7, 410, &b) == 410, "after=7 answered 410 (4-8 pruned)");
    check_gone(b, 9, 14, "after=7");
    json_decref(b);
    sleep_ms(2500); /* two more prunes */
    check(req(&srv, "GET", "/admin/v1/tenants/default/events?after=8", NULL, &b) == 200 &&
              json_array_size(json_object_get(b, "items")) == 6,
          "the webhook holds its 6 undelivered events beyond the limit of 5");
    json_decref(b);
    char deliveries[192];
    snprintf(deliveries, sizeof deliveries, "%s/deliveries", hook);
    check(req(&srv, "GET", deliveries, NULL, &b) == 200 &&
              iget(b, "lastDeliveredSeq") == 8 && iget(b, "latestSeq") == 14,
          "the held webhook shows lastDeliveredSeq 8, latestSeq 14");
    json_decref(b);
    /* disabled, it holds nothing: back to the newest 5 */
    check(req(&srv, "PATCH", hook, "{\"enabled\":false}", NULL) == 200, "webhook disabled");
    check(events_until(&srv, 8, 410, &b) == 410, "after=8 answered 410 once released");
    check_gone(b, 10, 14, "after=8");
    json_decref(b);
    e2e_server_cleanup(&srv, failures == 0);
}

/* Runs scimd with `cmdline` (after the binary) and returns its exit status; stderr in *out. */
static int run_scimd(const char *env, const char *cmdline, char *out, size_t outlen)
{
    char cmd[2048], tmp[] = "/tmp/e2e_events_prune_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    close(fd);
    snprintf(cmd, sizeof cmd, "%s '%s' %s --db /nonexistent-dir/x.db >/dev/null 2>'%s'",
             env ? env : "", getenv("SCIMD_BIN"), cmdline, tmp);
    int st = system(cmd);
    FILE *f = fopen(tmp, "r");
    size_t n = f ? fread(out, 1, outlen - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    unlink(tmp);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void flags(void)
{
    char out[8192];
    static const struct {
        const char *env, *args, *msg;
    } bad[] = {
        {NULL, "--db-pool 0", "invalid --db-pool \"0\" (1-256)"},
        {NULL, "--db-pool 257", "invalid --db-pool \"257\" (1-256)"},
        {NULL, "--db-pool=x", "invalid --db-pool \"x\" (1-256)"},
        {"SCIMD_DB_POOL=-3", "", "invalid --db-pool \"-3\" (1-256)"},
        {NULL, "--events-max-entries -1", "invalid --events-max-entries value"},
        {NULL, "--events-retention-days abc", "invalid --events-retention-days value"},
        {"SCIMD_EVENTS_RETENTION_DAYS=-1", "", "invalid --events-retention-days value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = run_scimd(bad[i].env, bad[i].args, out, sizeof out);
        check(rc == 2 && strstr(out, bad[i].msg), "%s%s: exit %d, stderr \"%s\"",
              bad[i].env ? bad[i].env : "", bad[i].args, rc, out);
    }
    int rc = run_scimd(NULL, "--help", out, sizeof out);
    check(rc == 0, "--help exit %d", rc);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s' --help | grep -q -- '--db-pool N' && '%s' --help | grep -q SCIMD_DB_POOL && "
             "'%s' --help | grep -q -- '--events-retention-days DAYS' && "
             "'%s' --help | grep -q SCIMD_EVENTS_MAX_ENTRIES",
             getenv("SCIMD_BIN"), getenv("SCIMD_BIN"), getenv("SCIMD_BIN"), getenv("SCIMD_BIN"));
    check(system(cmd) == 0, "--help documents --db-pool and the --events-* flags");
}

#define WORKERS 8
#define ROUNDS 15

struct worker {
    const struct e2e_server *srv;
    int id, ok, calls;
};

/* Each round: a create, a filtered read, a PATCH, a SCIM list and an admin feed read. */
static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        char body[256], path[256];
        json_t *u = NULL;
        snprintf(body, sizeof body, "{\"schemas\":[\"" USER_SCHEMA "\"],\"userName\":\"p%d-%d\"}",
                 w->id, i);
        w->calls += 5;
        if (req(w->srv, "POST", "/Users", body, &u) == 201)
            w->ok++;
        const char *id = json_string_value(json_object_get(u, "id"));
        snprintf(path, sizeof path, "/Users?filter=userName%%20eq%%20%%22p%d-%d%%22", w->id, i);
        if (req(w->srv, "GET", path, NULL, NULL) == 200)
            w->ok++;
        snprintf(path, sizeof path, "/Users/%s", id ? id : "none");
        long st = req(w->srv, "PATCH", path,
                      "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],"
                      "\"Operations\":[{\"op\":\"replace\",\"path\":\"displayName\","
                      "\"value\":\"P\"}]}",
                      NULL);
        if (st == 200 || st == 204) /* 204: no attributes asked back */
            w->ok++;
        if (req(w->srv, "GET", "/Users?count=5", NULL, NULL) == 200)
            w->ok++;
        if (req(w->srv, "GET", "/admin/v1/tenants/default/events?after=0&count=10", NULL, NULL) == 200)
            w->ok++;
        json_decref(u);
    }
    return NULL;
}

struct poller {
    const struct e2e_server *srv;
    long status;
};

static void *long_poll(void *arg)
{
    struct poller *p = arg;
    /* far ahead of the feed: waits the full 3 s without holding a connection */
    p->status = req(p->srv, "GET", "/admin/v1/tenants/default/events?after=1000000&wait=3", NULL,
                    NULL);
    return NULL;
}

static void pool_of_one(void)
{
    struct e2e_server srv;
    const char *args[] = {"--db-pool", "1", "--threads", "8"};
    const struct e2e_opts opts = {args, 4, NULL, 0};
    memset(&srv, 0, sizeof srv);
    if (e2e_server_start(&srv, &opts) != 0) {
        check(0, "server start (--db-pool 1)");
        e2e_server_cleanup(&srv, 0);
        return;
    }
    pthread_t th[WORKERS], pt;
    struct worker w[WORKERS];
    struct poller p = {&srv, 0};
    pthread_create(&pt, NULL, long_poll, &p);
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (struct worker){.srv = &srv, .id = i};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    int ok = 0, calls = 0;
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        calls += w[i].calls;
    }
    pthread_join(pt, NULL);
    check(ok == calls, "--db-pool 1: %d of %d concurrent requests succeeded", ok, calls);
    check(p.status == 200, "--db-pool 1: the long-poll answered %ld", p.status);
    json_t *b = NULL;
    check(req(&srv, "GET", "/admin/v1/tenants/default/events?after=0&count=1", NULL, &b) == 200 &&
              iget(b, "latestSeq") == 2 * WORKERS * ROUNDS,
          "--db-pool 1: every write has its events (latestSeq %lld)", (long long)iget(b, "latestSeq"));
    json_decref(b);
    e2e_server_cleanup(&srv, failures == 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    setenv("E2E_TOKEN_SCOPES", "scim:read scim:write admin", 1);
    e2e_global_init();
    flags();
    retention();
    pool_of_one();
    if (failures)
        fprintf(stderr, "%d failure(s)\n", failures);
    else
        printf("events_prune: all checks passed\n");
    return failures ? 1 : 0;
}
