/* e2e/multinode: three scimd processes on one PostgreSQL database, load spread over them.
 *  1. no lost update: 8 threads PATCH 8 different attributes of one user, 5 times each,
 *     round-robin over the nodes: every last value is there and the version counts all 40;
 *  2. If-Match races: two conditional PATCHes with the same ETag on two nodes at once:
 *     exactly one succeeds, the other is 412 (20 rounds);
 *  3. one userName POSTed by 6 threads to different nodes at once: exactly one 201, the
 *     rest 409 uniqueness (5 rounds, case varied);
 *  4. 6 threads create 10 users each and PATCH-add them into one group through different
 *     nodes: the group ends with all 60 members;
 *  5. a token revoked with scimctl --db is refused (401) by every node on its next request;
 *  6. a cursor (RFC 9865) issued by one node is accepted by the others (the signing key is in
 *     the database) and pages on from where it was issued;
 *  7. the change feed: 6 threads create and rename 10 users each through different nodes at
 *     once; the feed read from each node is gap-free (seq 1..N, ids "<tenant>-<seq>") with
 *     every one of those events, and every node reports the same latestSeq;
 *  8. a long-poll on one node returns the event of a write committed on another.
 * Runs only with SCIMD_TEST_BACKEND=postgresql; exits 77 (skipped) otherwise. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

#define NODES 3

static struct e2e_server nodes[NODES];
static int failures;
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            pthread_mutex_lock(&fail_mu);                                                  \
            failures++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                           \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            pthread_mutex_unlock(&fail_mu);                                                \
        }                                                                                  \
    } while (0)

static const struct e2e_server *node(int i)
{
    return &nodes[i % NODES];
}

/* POSTs a user; returns the status, the id into `id` on 201. */
static long post_user(const struct e2e_server *s, const char *name, char *id, size_t idlen)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"%s\"}", name);
    struct e2e_response r;
    long st = 0;
    if (e2e_request(s, "POST", "/Users", NULL, body, &r) == 0) {
        st = r.status;
        if (st == 201 && id)
            snprintf(id, idlen, "%s", json_string_value(json_object_get(r.json, "id")));
    }
    e2e_response_free(&r);
    return st;
}

static long patch(const struct e2e_server *s, const char *path, const char *ops, const char *if_match)
{
    char body[2048], hdr[256];
    snprintf(body, sizeof body,
             "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":%s}", ops);
    const char *headers[2] = {NULL, NULL};
    if (if_match) {
        snprintf(hdr, sizeof hdr, "If-Match: %s", if_match);
        headers[0] = hdr;
    }
    struct e2e_response r;
    long st = 0;
    if (e2e_request(s, "PATCH", path, headers, body, &r) == 0)
        st = r.status;
    if (st != 200 && st != 204 && st != 412)
        fprintf(stderr, "PATCH %s: %ld %s %s\n", path, st, r.error, r.body);
    e2e_response_free(&r);
    return st;
}

static json_t *get_json(const struct e2e_server *s, const char *path)
{
    struct e2e_response r;
    json_t *j = NULL;
    if (e2e_request(s, "GET", path, NULL, NULL, &r) == 0 && r.status == 200)
        j = json_incref(r.json);
    e2e_response_free(&r);
    return j;
}

/* ---- 1. no lost update --------------------------------------------------------------- */

static const char *const attrs[8] = {"displayName", "nickName", "title", "userType",
                                     "preferredLanguage", "locale", "timezone", "profileUrl"};
static char user_path[128];
#define ROUNDS 5

struct pw {
    int index;
    pthread_barrier_t *bar;
};

static void *patch_attr(void *arg)
{
    struct pw *w = arg;
    pthread_barrier_wait(w->bar);
    for (int round = 0; round < ROUNDS; round++) {
        char ops[512];
        snprintf(ops, sizeof ops, "[{\"op\":\"replace\",\"path\":\"%s\",\"value\":\"%s%s-%d\"}]",
                 attrs[w->index], strcmp(attrs[w->index], "profileUrl") == 0 ? "https://x.example/" : "",
                 attrs[w->index], round);
        long st = patch(node(w->index + round), user_path, ops, NULL);
        CHECK(st == 200 || st == 204, "PATCH %s round %d: %ld", attrs[w->index], round, st);
    }
    return NULL;
}

static void test_no_lost_update(void)
{
    char id[64];
    CHECK(post_user(node(0), "lost-update@example.com", id, sizeof id) == 201, "create");
    snprintf(user_path, sizeof user_path, "/Users/%s", id);
    pthread_t th[8];
    struct pw w[8];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 8);
    for (int i = 0; i < 8; i++) {
        w[i] = (struct pw){i, &bar};
        pthread_create(&th[i], NULL, patch_attr, &w[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    for (int n = 0; n < NODES; n++) {
        json_t *u = get_json(node(n), user_path);
        CHECK(u != NULL, "GET user on node %d", n);
        for (int i = 0; u && i < 8; i++) {
            char want[128];
            snprintf(want, sizeof want, "%s%s-%d", strcmp(attrs[i], "profileUrl") == 0 ? "https://x.example/" : "",
                     attrs[i], ROUNDS - 1);
            const char *got = json_string_value(json_object_get(u, attrs[i]));
            CHECK(got && strcmp(got, want) == 0, "node %d: %s is %s, want %s", n, attrs[i], got ? got : "(absent)",
                  want);
        }
        const char *v = json_string_value(json_object_get(json_object_get(u, "meta"), "version"));
        CHECK(v && strcmp(v, "W/\"41\"") == 0, "node %d: version %s, want W/\"41\"", n, v ? v : "(none)");
        json_decref(u);
    }
}

/* ---- 2. If-Match races ----------------------------------------------------------------- */

struct race {
    int index, round;
    const char *etag;
    pthread_barrier_t *bar;
    long status;
};

static void *race_patch(void *arg)
{
    struct race *r = arg;
    char ops[256];
    /* a value never set before: an unchanged resource keeps its version and both would pass */
    snprintf(ops, sizeof ops, "[{\"op\":\"replace\",\"path\":\"nickName\",\"value\":\"racer-%d-%d\"}]",
             r->round, r->index);
    pthread_barrier_wait(r->bar);
    r->status = patch(node(r->index), user_path, ops, r->etag);
    return NULL;
}

static void test_if_match_race(void)
{
    for (int round = 0; round < 20; round++) {
        struct e2e_response g;
        char etag[64] = "";
        if (e2e_request(node(round), "GET", user_path, NULL, NULL, &g) == 0 && g.etag)
            snprintf(etag, sizeof etag, "%s", g.etag);
        e2e_response_free(&g);
        CHECK(etag[0], "no ETag");
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, 2);
        struct race r[2] = {{round, round, etag, &bar, 0}, {round + 1, round, etag, &bar, 0}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, race_patch, &r[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        int ok = 0, pre = 0;
        for (int i = 0; i < 2; i++) {
            ok += r[i].status == 200 || r[i].status == 204;
            pre += r[i].status == 412;
        }
        CHECK(ok == 1 && pre == 1, "round %d: statuses %ld and %ld, want one success and one 412", round,
              r[0].status, r[1].status);
    }
}

/* ---- 3. unique userName across nodes --------------------------------------------------- */

struct poster {
    int index;
    const char *name;
    pthread_barrier_t *bar;
    long status;
};

static void *post_same(void *arg)
{
    struct poster *p = arg;
    char name[128];
    snprintf(name, sizeof name, "%s", p->name);
    if (p->index % 2) /* userName is unique case-insensitively */
        for (char *c = name; *c; c++)
            if (*c >= 'a' && *c <= 'z')
                *c = (char)(*c - 'a' + 'A');
    pthread_barrier_wait(p->bar);
    p->status = post_user(node(p->index), name, NULL, 0);
    return NULL;
}

static void test_unique_username(void)
{
    for (int round = 0; round < 5; round++) {
        char name[64];
        snprintf(name, sizeof name, "same-name-%d@example.com", round);
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, 6);
        struct poster p[6];
        pthread_t th[6];
        for (int i = 0; i < 6; i++) {
            p[i] = (struct poster){i + round, name, &bar, 0};
            pthread_create(&th[i], NULL, post_same, &p[i]);
        }
        for (int i = 0; i < 6; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        int created = 0, conflict = 0;
        for (int i = 0; i < 6; i++) {
            created += p[i].status == 201;
            conflict += p[i].status == 409;
        }
        CHECK(created == 1 && conflict == 5, "round %d: %d created, %d conflicts", round, created, conflict);
    }
}

/* ---- 4. concurrent membership PATCHes ---------------------------------------------------- */

static char group_path[128];

static void *add_members(void *arg)
{
    struct pw *w = arg;
    pthread_barrier_wait(w->bar);
    for (int i = 0; i < 10; i++) {
        char name[64], id[64], ops[256];
        snprintf(name, sizeof name, "member-%d-%d@example.com", w->index, i);
        long st = post_user(node(w->index + i), name, id, sizeof id);
        CHECK(st == 201, "create %s: %ld", name, st);
        if (st != 201)
            continue;
        snprintf(ops, sizeof ops, "[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"%s\"}]}]", id);
        st = patch(node(w->index + i + 1), group_path, ops, NULL);
        CHECK(st == 200 || st == 204, "add member %s: %ld", name, st);
    }
    return NULL;
}

static void test_members(void)
{
    struct e2e_response r;
    const char *body = "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"displayName\":\"Crowd\"}";
    CHECK(e2e_request(node(0), "POST", "/Groups", NULL, body, &r) == 0 && r.status == 201, "create group");
    snprintf(group_path, sizeof group_path, "/Groups/%s", json_string_value(json_object_get(r.json, "id")));
    e2e_response_free(&r);
    pthread_t th[6];
    struct pw w[6];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 6);
    for (int i = 0; i < 6; i++) {
        w[i] = (struct pw){i, &bar};
        pthread_create(&th[i], NULL, add_members, &w[i]);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    for (int n = 0; n < NODES; n++) {
        json_t *g = get_json(node(n), group_path);
        size_t count = json_array_size(json_object_get(g, "members"));
        CHECK(count == 60, "node %d: group has %zu members, want 60", n, count);
        json_decref(g);
    }
}

/* ---- 5. token revocation seen by every node ---------------------------------------------- */

static int scimctl(const char *const *args, char *out, size_t outlen)
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
        argv[n++] = nodes[0].db;
        for (; *args && n < 15; args++)
            argv[n++] = (char *)*args;
        argv[n] = NULL;
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t k;
    while (len + 1 < outlen && (k = read(fds[0], out + len, outlen - 1 - len)) > 0)
        len += (size_t)k;
    out[len] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    while (len && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_revocation(void)
{
    char tok[512], hdr[600], ignored[64];
    const char *create[] = {"token", "create", "--name", "revokeme", NULL};
    CHECK(scimctl(create, tok, sizeof tok) == 0 && tok[0], "scimctl token create");
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", tok);
    const char *headers[] = {hdr, NULL};
    for (int n = 0; n < NODES; n++) {
        struct e2e_response r;
        CHECK(e2e_request(node(n), "GET", "/Users?count=1", headers, NULL, &r) == 0 && r.status == 200,
              "node %d: new token refused (%ld)", n, r.status);
        e2e_response_free(&r);
    }
    const char *revoke[] = {"token", "revoke", "revokeme", NULL};
    CHECK(scimctl(revoke, ignored, sizeof ignored) == 0, "scimctl token revoke");
    for (int n = 0; n < NODES; n++) {
        struct e2e_response r;
        CHECK(e2e_request(node(n), "GET", "/Users?count=1", headers, NULL, &r) == 0 && r.status == 401,
              "node %d: revoked token still accepted (%ld)", n, r.status);
        e2e_response_free(&r);
    }
}

/* ---- 6. cursors across nodes ------------------------------------------------------------- */

/* The ids of a list page, comma-joined into out; the nextCursor into next (may be ""). */
static long list_page(const struct e2e_server *s, const char *path, char *out, size_t outlen, char *next,
                      size_t nextlen)
{
    struct e2e_response r;
    long st = 0;
    out[0] = next[0] = '\0';
    if (e2e_request(s, "GET", path, NULL, NULL, &r) == 0) {
        st = r.status;
        size_t i;
        json_t *res;
        json_array_foreach(json_object_get(r.json, "Resources"), i, res) {
            size_t len = strlen(out);
            snprintf(out + len, outlen - len, "%s%s", i ? "," : "", json_string_value(json_object_get(res, "id")));
        }
        const char *n = json_string_value(json_object_get(r.json, "nextCursor"));
        snprintf(next, nextlen, "%s", n ? n : "");
    }
    e2e_response_free(&r);
    return st;
}

static void test_cursor_across_nodes(void)
{
    char p1[1024], p2[3][1024], c1[256], c2[256], path[512];
    CHECK(list_page(node(0), "/Users?cursor=&count=3", p1, sizeof p1, c1, sizeof c1) == 200, "first page");
    CHECK(c1[0] && strlen(p1) > 0, "first page has items and a nextCursor");
    snprintf(path, sizeof path, "/Users?count=3&cursor=%s", c1);
    for (int n = 0; n < NODES; n++) {
        long st = list_page(node(n), path, p2[n], sizeof p2[n], c2, sizeof c2);
        CHECK(st == 200, "node %d: cursor of node 0 answered %ld, want 200", n, st);
        CHECK(p2[n][0] && strstr(p1, p2[n]) == NULL, "node %d: second page \"%s\" repeats the first \"%s\"", n,
              p2[n], p1);
        CHECK(strcmp(p2[n], p2[0]) == 0, "node %d: second page \"%s\", node 0 said \"%s\"", n, p2[n], p2[0]);
    }
}

/* ---- 7. a gap-free change feed under concurrent writes on all nodes ------------------------- */

/* The server root ("http://127.0.0.1:PORT") + /admin/v1/tenants/default + path. */
static void admin_url(const struct e2e_server *s, char *out, size_t n, const char *path)
{
    const char *p = strstr(s->base_url, "/scim/v2");
    snprintf(out, n, "%.*s/admin/v1/tenants/default%s", p ? (int)(p - s->base_url) : (int)strlen(s->base_url),
             s->base_url, path);
}

static json_t *admin_get(const struct e2e_server *s, const char *path)
{
    char url[512];
    admin_url(s, url, sizeof url, path);
    return get_json(s, url);
}

static void *feed_writer(void *arg)
{
    struct pw *w = arg;
    pthread_barrier_wait(w->bar);
    for (int i = 0; i < 10; i++) {
        char name[64], id[64], path[128], ops[256];
        snprintf(name, sizeof name, "feed-%d-%d@example.com", w->index, i);
        long st = post_user(node(w->index + i), name, id, sizeof id);
        CHECK(st == 201, "create %s: %ld", name, st);
        if (st != 201)
            continue;
        snprintf(path, sizeof path, "/Users/%s", id);
        snprintf(ops, sizeof ops, "[{\"op\":\"replace\",\"path\":\"displayName\",\"value\":\"Feed %d %d\"}]",
                 w->index, i);
        st = patch(node(w->index + i + 1), path, ops, NULL);
        CHECK(st == 200 || st == 204, "rename %s: %ld", name, st);
    }
    return NULL;
}

/* Reads the whole feed from node n, checking seq is 1, 2, 3, ...: the number of events, or -1. */
static long read_feed(int n, int64_t *latest, int *created, int *updated)
{
    int64_t after = 0, expect = 1;
    *created = *updated = 0;
    for (;;) {
        char path[128];
        snprintf(path, sizeof path, "/events?after=%lld&count=1000", (long long)after);
        json_t *page = admin_get(node(n), path);
        CHECK(page != NULL, "node %d: GET events after %lld", n, (long long)after);
        if (!page)
            return -1;
        json_t *items = json_object_get(page, "items"), *ev;
        size_t i;
        *latest = json_integer_value(json_object_get(page, "latestSeq"));
        json_array_foreach(items, i, ev) {
            int64_t seq = json_integer_value(json_object_get(ev, "seq"));
            char want_id[64];
            snprintf(want_id, sizeof want_id, "%s-%lld", "", (long long)seq);
            const char *eid = json_string_value(json_object_get(ev, "id"));
            const char *dash = eid ? strrchr(eid, '-') : NULL;
            CHECK(seq == expect, "node %d: event seq %lld, want %lld (gap or reorder)", n, (long long)seq,
                  (long long)expect);
            CHECK(dash && strcmp(dash, want_id) == 0, "node %d: event id %s for seq %lld", n, eid ? eid : "(none)",
                  (long long)seq);
            const char *type = json_string_value(json_object_get(ev, "type"));
            const char *un = json_string_value(json_object_get(ev, "userName"));
            if (un && strncmp(un, "feed-", 5) == 0 && type) {
                *created += strcmp(type, "user.created") == 0;
                *updated += strcmp(type, "user.updated") == 0;
            }
            expect = seq + 1;
        }
        size_t count = json_array_size(items);
        json_decref(page);
        if (count == 0)
            break;
        after = expect - 1;
    }
    return (long)(expect - 1);
}

static void test_feed_gap_free(void)
{
    pthread_t th[6];
    struct pw w[6];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 6);
    for (int i = 0; i < 6; i++) {
        w[i] = (struct pw){i, &bar};
        pthread_create(&th[i], NULL, feed_writer, &w[i]);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    long total0 = -1;
    for (int n = 0; n < NODES; n++) {
        int64_t latest = 0;
        int created = 0, updated = 0;
        long total = read_feed(n, &latest, &created, &updated);
        CHECK(total > 0 && total == latest, "node %d: %ld events read, latestSeq %lld", n, total, (long long)latest);
        CHECK(created == 60 && updated == 60, "node %d: %d user.created and %d user.updated of feed-*, want 60 each",
              n, created, updated);
        if (n == 0)
            total0 = total;
        CHECK(total == total0, "node %d: %ld events, node 0 saw %ld", n, total, total0);
    }
}

/* ---- 8. long-poll sees a commit of another node ------------------------------------------ */

struct poll_arg {
    int64_t after;
    json_t *page;
    double seconds;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *long_poll(void *arg)
{
    struct poll_arg *a = arg;
    char path[128];
    double t0 = now_s();
    snprintf(path, sizeof path, "/events?after=%lld&count=10&wait=15", (long long)a->after);
    a->page = admin_get(node(1), path);
    a->seconds = now_s() - t0;
    return NULL;
}

static void test_long_poll_other_node(void)
{
    json_t *page = admin_get(node(0), "/events?after=0&count=1");
    struct poll_arg a = {.after = page ? json_integer_value(json_object_get(page, "latestSeq")) : 0};
    json_decref(page);
    pthread_t th;
    pthread_create(&th, NULL, long_poll, &a);
    struct timespec pause = {0, 500000000L};
    nanosleep(&pause, NULL); /* the poll is waiting on node 1 by now */
    CHECK(post_user(node(2), "long-poll@example.com", NULL, 0) == 201, "create on node 2");
    pthread_join(th, NULL);
    json_t *ev = json_array_get(json_object_get(a.page, "items"), 0);
    const char *un = json_string_value(json_object_get(ev, "userName"));
    CHECK(un && strcmp(un, "long-poll@example.com") == 0, "long-poll on node 1 returned %s", un ? un : "nothing");
    CHECK(json_integer_value(json_object_get(ev, "seq")) == a.after + 1, "long-poll event seq");
    /* the node polls the database every second for other nodes' commits */
    CHECK(a.seconds < 5.0, "long-poll took %.1f s", a.seconds);
    json_decref(a.page);
}

int main(void)
{
    if (!e2e_backend_pg()) {
        fprintf(stderr, "multinode: needs SCIMD_TEST_BACKEND=postgresql; skipped\n");
        return E2E_SKIP;
    }
    e2e_global_init();
    setenv("E2E_TOKEN_SCOPES", "scim:read scim:write admin", 1); /* the feed is an admin API */
    int started = 0;
    const char *args[] = {"--threads", "8"};
    struct e2e_opts opts = {args, 2, NULL, 0};
    if (e2e_server_start(&nodes[0], &opts) == 0) {
        started = 1;
        for (int i = 1; i < NODES && started; i++)
            started = e2e_server_start_on(&nodes[i], &opts, nodes[0].db) == 0;
    }
    if (started) {
        test_no_lost_update();
        test_if_match_race();
        test_unique_username();
        test_members();
        test_revocation();
        test_cursor_across_nodes();
        test_feed_gap_free();
        test_long_poll_other_node();
    }
    int ok = started && failures == 0;
    for (int i = NODES - 1; i >= 0; i--)
        e2e_server_cleanup(&nodes[i], ok);
    printf("multinode: %s (%d failures)\n", ok ? "ok" : "FAILED", failures);
    return ok ? 0 : 1;
}
