/* e2e/webhooks: the change feed and its delivery against a real scimd and a real receiver.
 * - every event type with its payload, a gap-free increasing seq (pull API, after=);
 * - a membership PATCH adding 3 members yields 3 member_added; adding one again yields none;
 * - long-poll: a waiting request returns as soon as a write commits; an idle one after wait;
 * - webhooks: every event delivered, in order, with a valid signature and matching event id;
 *   eventTypes filtering;
 * - retries: the receiver fails 3 times: retried with growing spacing, no reordering;
 * - a hanging receiver does not slow SCIM requests;
 * - restart (kill -9 and SIGTERM) with deliveries pending: all delivered at least once, in order. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "webhook_receiver.h"

#define SECRET "e2e-webhook-secret-0123456789"

static struct e2e_server srv;
static int failures;

static void check(int ok, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(int ok, int line, const char *fmt, ...)
{
    if (ok)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s:%d: ", __FILE__, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}
#define CHECK(c, ...) check((c) ? 1 : 0, __LINE__, __VA_ARGS__)

/* The server root ("http://127.0.0.1:PORT") + path. */
static void admin_url(char *out, size_t n, const char *path)
{
    const char *b = srv.base_url;
    const char *p = strstr(b, "/scim/v2");
    snprintf(out, n, "%.*s/admin/v1/tenants/default%s", p ? (int)(p - b) : (int)strlen(b), b, path);
}

static long req(const char *method, const char *path, const char *body, json_t **out)
{
    struct e2e_response r;
    char url[512];
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    if (strncmp(path, "/admin", 6) == 0) {
        admin_url(url, sizeof url, path + 6);
        path = url;
    }
    long st = 0;
    if (e2e_request(&srv, method, path, strncmp(path, "http", 4) == 0 ? hdrs : NULL, body, &r) == 0)
        st = r.status;
    if (out)
        *out = json_incref(r.json);
    e2e_response_free(&r);
    return st;
}

static char *create_user(const char *name)
{
    char body[256];
    json_t *o = NULL;
    snprintf(body, sizeof body,
             "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"%s\","
             "\"displayName\":\"%s\"}", name, name);
    long st = req("POST", "/Users", body, &o);
    CHECK(st == 201, "create user %s: %ld", name, st);
    char *id = strdup(json_string_value(json_object_get(o, "id")) ? json_string_value(json_object_get(o, "id")) : "");
    json_decref(o);
    return id;
}

static void patch(const char *path, const char *ops)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":%s}", ops);
    long st = req("PATCH", path, body, NULL);
    CHECK(st == 200 || st == 204, "PATCH %s: %ld", path, st);
}

static json_t *events_after(int64_t after, const char *extra)
{
    char path[128];
    json_t *o = NULL;
    snprintf(path, sizeof path, "/admin/events?after=%lld&count=1000%s", (long long)after, extra ? extra : "");
    long st = req("GET", path, NULL, &o);
    CHECK(st == 200, "GET events: %ld", st);
    return o;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Checks the events of the pull API against the expected type list, gap-free from seq 1. */
static json_t *check_feed(const char *const *types, size_t n)
{
    json_t *o = events_after(0, NULL);
    json_t *items = json_object_get(o, "items");
    CHECK(json_array_size(items) == n, "feed has %zu events, want %zu", json_array_size(items), n);
    for (size_t i = 0; i < json_array_size(items) && i < n; i++) {
        json_t *ev = json_array_get(items, i);
        CHECK(json_integer_value(json_object_get(ev, "seq")) == (json_int_t)(i + 1), "seq of #%zu", i);
        CHECK(strcmp(str(ev, "type"), types[i]) == 0, "event #%zu is %s, want %s", i + 1,
              str(ev, "type"), types[i]);
        char id[32];
        snprintf(id, sizeof id, "1-%zu", i + 1);
        CHECK(strcmp(str(ev, "id"), id) == 0, "event id %s, want %s", str(ev, "id"), id);
        CHECK(*str(ev, "time") && *str(ev, "resourceId"), "time and resourceId of #%zu", i + 1);
    }
    json_t *items_ref = json_incref(items);
    json_decref(o);
    return items_ref;
}

struct poll_arg {
    int64_t after;
    int wait;
    int64_t took_ms;
    int64_t done_at_ms; /* wr_now_ms() when the response arrived */
    json_t *result;
};

static void *long_poll(void *p)
{
    struct poll_arg *a = p;
    char extra[32];
    snprintf(extra, sizeof extra, "&wait=%d", a->wait);
    int64_t t0 = wr_now_ms();
    a->result = events_after(a->after, extra);
    a->done_at_ms = wr_now_ms();
    a->took_ms = a->done_at_ms - t0;
    return NULL;
}

/* Waits until the receiver has answered 2xx to every seq up to `last`; returns the time it took
 * or -1 on timeout. */
static int wait_delivered(struct wr *w, int64_t last, int timeout_s)
{
    for (int t = 0; t < timeout_s * 10; t++) {
        int n = wr_count(w);
        int64_t top = 0;
        for (int i = 0; i < n; i++) {
            struct wr_request q;
            wr_get(w, i, &q);
            if (q.status == 200 && q.seq > top)
                top = q.seq;
            json_decref(q.body);
        }
        if (top >= last)
            return 0;
        usleep(100 * 1000);
    }
    return -1;
}

/* The receiver's successful deliveries, deduplicated: first deliveries must come in strictly
 * increasing seq order, cover `from`..`to` without a hole, and carry valid signatures. */
static void check_delivery_order(struct wr *w, int64_t from, int64_t to, const char *what)
{
    int64_t expect = from;
    int n = wr_count(w);
    for (int i = 0; i < n; i++) {
        struct wr_request q;
        wr_get(w, i, &q);
        CHECK(q.sig_ok, "%s: signature of delivery %d (seq %lld) invalid", what, i, (long long)q.seq);
        if (q.status == 200 && q.seq >= from && q.seq <= to) {
            CHECK(q.seq <= expect, "%s: seq %lld delivered before %lld (reordered or hole)", what,
                  (long long)q.seq, (long long)expect);
            if (q.seq == expect)
                expect++;
            char id[32];
            snprintf(id, sizeof id, "1-%lld", (long long)q.seq);
            CHECK(strcmp(q.event_id, id) == 0, "%s: Scimd-Event-Id %s for seq %lld", what,
                  q.event_id, (long long)q.seq);
            CHECK(strcmp(q.event_type, str(q.body, "type")) == 0, "%s: Scimd-Event-Type", what);
        }
        json_decref(q.body);
    }
    CHECK(expect == to + 1, "%s: delivered up to %lld, want %lld", what, (long long)expect - 1,
          (long long)to);
}

static int only_changed(json_t *ev, const char *name)
{
    json_t *c = json_object_get(ev, "changed");
    return json_array_size(c) == 1 && strcmp(json_string_value(json_array_get(c, 0)), name) == 0;
}

static int64_t latest_seq(void)
{
    json_t *o = events_after(0, "&count=1");
    int64_t l = (int64_t)json_integer_value(json_object_get(o, "latestSeq"));
    json_decref(o);
    return l;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    setenv("E2E_TOKEN_SCOPES", "scim:read scim:write admin", 1);
    e2e_global_init();
    struct wr *w = wr_start(SECRET);
    if (!w || e2e_server_start(&srv, NULL) != 0) {
        fprintf(stderr, "cannot start the receiver or scimd\n");
        e2e_server_cleanup(&srv, 0);
        return 1;
    }
    char body[512];
    json_t *o = NULL;

    /* --- webhooks: one for everything, one only for user.deleted ------------------------ */
    snprintf(body, sizeof body, "{\"url\":\"%s\",\"secret\":\"%s\"}", wr_url(w), SECRET);
    CHECK(req("POST", "/admin/webhooks", body, &o) == 201, "create webhook");
    char wh[64];
    snprintf(wh, sizeof wh, "%s", str(o, "id"));
    CHECK(strcmp(str(o, "secret"), SECRET) == 0, "secret shown on create");
    json_decref(o);
    CHECK(req("POST", "/admin/webhooks", "{\"url\":\"http://127.0.0.1:9/x\",\"eventTypes\":[\"user.bogus\"]}",
              NULL) == 400, "unknown event type is 400");
    CHECK(req("POST", "/admin/webhooks", "{\"url\":\"http://127.0.0.1:9/x\",\"eventTypes\":[\"user.deleted\"],"
              "\"enabled\":false}", &o) == 201, "create filtered webhook");
    CHECK(strncmp(str(o, "secret"), "whsec_", 6) == 0, "generated secret: %s", str(o, "secret"));
    char wh2[64];
    snprintf(wh2, sizeof wh2, "%s", str(o, "id"));
    json_decref(o);
    req("GET", "/admin/webhooks", NULL, &o);
    CHECK(json_array_size(json_object_get(o, "items")) == 2, "two webhooks listed");
    CHECK(!json_object_get(json_array_get(json_object_get(o, "items"), 0), "secret"), "secret never listed");
    json_decref(o);

    /* --- every event type ------------------------------------------------------------------ */
    char *u1 = create_user("ann"), *u2 = create_user("ben"), *u3 = create_user("cid");
    CHECK(req("POST", "/Groups", "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
              "\"displayName\":\"staff\"}", &o) == 201, "create group");
    char g[64], gpath[128], path[160], ops[512];
    snprintf(g, sizeof g, "%s", str(o, "id"));
    snprintf(gpath, sizeof gpath, "/Groups/%s", g);
    json_decref(o);
    snprintf(ops, sizeof ops, "[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"%s\"},"
             "{\"value\":\"%s\"},{\"value\":\"%s\"}]}]", u1, u2, u3);
    patch(gpath, ops); /* 3 x member_added */
    snprintf(ops, sizeof ops, "[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"%s\"}]}]", u1);
    patch(gpath, ops); /* already a member: nothing */
    snprintf(path, sizeof path, "/Users/%s", u1);
    patch(path, "[{\"op\":\"replace\",\"path\":\"displayName\",\"value\":\"Ann A.\"}]");
    patch(path, "[{\"op\":\"replace\",\"path\":\"active\",\"value\":false}]");
    patch(path, "[{\"op\":\"replace\",\"path\":\"active\",\"value\":true}]");
    patch(gpath, "[{\"op\":\"replace\",\"path\":\"displayName\",\"value\":\"Staff\"}]");
    snprintf(ops, sizeof ops, "[{\"op\":\"remove\",\"path\":\"members[value eq \\\"%s\\\"]\"}]", u2);
    patch(gpath, ops);
    snprintf(path, sizeof path, "/Users/%s", u3);
    CHECK(req("DELETE", path, NULL, NULL) == 204, "delete cid"); /* member_removed + deleted */
    CHECK(req("PATCH", "/admin/settings", "{\"delete_mode\":\"deactivate\",\"allow_manual_updates\":true}", NULL) == 200, "settings");
    snprintf(path, sizeof path, "/Users/%s", u2);
    CHECK(req("DELETE", path, NULL, NULL) == 204, "deprovision ben");
    CHECK(req("DELETE", gpath, NULL, NULL) == 204, "delete group");
    CHECK(req("POST", "/admin/users", "{\"userName\":\"local-dan\"}", NULL) == 201, "admin-API user");

    json_t *items = events_after(0, NULL);
    json_t *feed = json_object_get(items, "items");
    size_t n = json_array_size(feed);
    for (size_t i = 0; i < n; i++)
        printf("event %s %s\n", str(json_array_get(feed, i), "id"), str(json_array_get(feed, i), "type"));
    json_decref(items);

    static const char *const want[] = {
        "user.created", "user.created", "user.created", "group.created",
        "group.member_added", "group.member_added", "group.member_added",
        "user.updated", "user.deactivated", "user.reactivated", "group.updated",
        "group.member_removed", "group.member_removed", "user.deleted", "user.deleted",
        "group.deleted", "user.created"};
    size_t nwant = sizeof want / sizeof want[0];
    feed = check_feed(want, nwant);
    json_t *e;
    e = json_array_get(feed, 0);
    CHECK(strcmp(str(e, "userName"), "ann") == 0 && strcmp(str(e, "resourceType"), "User") == 0 &&
          strcmp(str(e, "resourceId"), u1) == 0 && json_is_true(json_object_get(e, "active")),
          "user.created payload");
    e = json_array_get(feed, 4);
    CHECK(strcmp(str(e, "groupId"), g) == 0 && strcmp(str(e, "memberId"), u1) == 0 &&
          strcmp(str(e, "memberType"), "User") == 0 && strcmp(str(e, "displayName"), "staff") == 0,
          "member_added payload");
    CHECK(strcmp(str(json_array_get(feed, 5), "memberId"), u2) == 0 &&
          strcmp(str(json_array_get(feed, 6), "memberId"), u3) == 0, "member_added members in order");
    e = json_array_get(feed, 7);
    CHECK(only_changed(e, "displayName") &&
          strcmp(str(e, "displayName"), "Ann A.") == 0, "user.updated changed [displayName]");
    e = json_array_get(feed, 8);
    CHECK(json_is_false(json_object_get(e, "active")) && strcmp(str(e, "resourceId"), u1) == 0,
          "user.deactivated payload");
    e = json_array_get(feed, 10);
    CHECK(only_changed(e, "displayName") &&
          strcmp(str(e, "displayName"), "Staff") == 0, "group.updated changed [displayName]");
    e = json_array_get(feed, 11);
    CHECK(strcmp(str(e, "memberId"), u2) == 0, "member_removed (PATCH remove) is ben");
    e = json_array_get(feed, 12);
    CHECK(strcmp(str(e, "memberId"), u3) == 0 && strcmp(str(e, "groupId"), g) == 0,
          "member_removed (user deleted) is cid");
    e = json_array_get(feed, 13);
    CHECK(strcmp(str(e, "resourceId"), u3) == 0 && !json_object_get(e, "deprovisioned"), "cid deleted");
    e = json_array_get(feed, 14);
    CHECK(strcmp(str(e, "resourceId"), u2) == 0 && json_is_true(json_object_get(e, "deprovisioned")),
          "ben deleted (deprovisioned)");
    e = json_array_get(feed, 16);
    CHECK(strcmp(str(e, "userName"), "local-dan") == 0, "admin-API create is user.created");
    json_decref(feed);

    /* after= */
    o = events_after((int64_t)nwant - 2, NULL);
    CHECK(json_array_size(json_object_get(o, "items")) == 2 &&
          json_integer_value(json_object_get(o, "next")) == (json_int_t)nwant &&
          json_integer_value(json_object_get(o, "latestSeq")) == (json_int_t)nwant, "after=N-2");
    json_decref(o);

    /* --- long-poll ------------------------------------------------------------------------ */
    struct poll_arg pa = {.after = (int64_t)nwant, .wait = 30};
    pthread_t th;
    pthread_create(&th, NULL, long_poll, &pa);
    usleep(1000 * 1000);
    /* The poll must still be waiting when the write happens, and return promptly after it
     * (timed from the write, so that a slow start of the poll on a loaded machine is no error). */
    int64_t write_at = wr_now_ms();
    char *u4 = create_user("eve");
    pthread_join(th, NULL);
    CHECK(pa.done_at_ms >= write_at && pa.done_at_ms - write_at < 5000,
          "long-poll returned %lld ms after the write (must wait for it, then return promptly)",
          (long long)(pa.done_at_ms - write_at));
    e = json_array_get(json_object_get(pa.result, "items"), 0);
    CHECK(strcmp(str(e, "type"), "user.created") == 0 && strcmp(str(e, "userName"), "eve") == 0,
          "long-poll got eve's user.created");
    json_decref(pa.result);
    struct poll_arg idle = {.after = (int64_t)nwant + 1, .wait = 1};
    long_poll(&idle);
    CHECK(json_array_size(json_object_get(idle.result, "items")) == 0 && idle.took_ms >= 900 &&
          idle.took_ms < 4000, "idle long-poll: empty after %lld ms", (long long)idle.took_ms);
    json_decref(idle.result);

    /* --- webhook delivery: all so far, in order, signed ------------------------------------ */
    int64_t last = latest_seq();
    CHECK(wait_delivered(w, last, 20) == 0, "all %lld events delivered", (long long)last);
    check_delivery_order(w, 1, last, "initial");
    /* the receiver got exactly the feed's events */
    o = events_after(0, NULL);
    for (int i = 0; i < wr_count(w); i++) {
        struct wr_request q;
        wr_get(w, i, &q);
        json_t *pe = json_array_get(json_object_get(o, "items"), (size_t)(q.seq - 1));
        CHECK(json_equal(pe, q.body), "delivered body of seq %lld equals the pulled event", (long long)q.seq);
        json_decref(q.body);
    }
    json_decref(o);
    snprintf(path, sizeof path, "/admin/webhooks/%s/deliveries", wh);
    req("GET", path, NULL, &o);
    CHECK(json_integer_value(json_object_get(o, "lastDeliveredSeq")) == last &&
          json_integer_value(json_object_get(o, "pending")) == 0 &&
          json_integer_value(json_object_get(o, "lastStatus")) == 200, "deliveries state");
    json_decref(o);
    snprintf(path, sizeof path, "/admin/webhooks/%s", wh2);
    req("GET", path, NULL, &o);
    CHECK(json_integer_value(json_object_get(json_object_get(o, "delivery"), "pending")) == 2,
          "filtered webhook: 2 user.deleted pending");
    json_decref(o);
    CHECK(req("DELETE", path, NULL, NULL) == 204, "delete webhook");
    CHECK(req("GET", path, NULL, NULL) == 404, "deleted webhook is 404");

    /* --- retries: 3 failures, exponential spacing, no reordering -------------------------- */
    int before = wr_count(w);
    wr_fail_next(w, 3);
    char *u5 = create_user("fay");
    char *u6 = create_user("gus");
    int64_t top = latest_seq();
    CHECK(wait_delivered(w, top, 30) == 0, "delivered after retries");
    int64_t at[8];
    int k = 0;
    for (int i = before; i < wr_count(w) && k < 8; i++) {
        struct wr_request q;
        wr_get(w, i, &q);
        if (q.seq == top - 1)
            at[k++] = q.at_ms;
        json_decref(q.body);
    }
    CHECK(k == 4, "fay's event attempted %d times, want 4", k);
    if (k == 4) {
        int64_t g1 = at[1] - at[0], g2 = at[2] - at[1], g3 = at[3] - at[2];
        printf("retry gaps: %lld %lld %lld ms\n", (long long)g1, (long long)g2, (long long)g3);
        /* 1 s, 2 s, 4 s, each +-20% jitter, plus up to 250 ms of the delivery thread's poll */
        CHECK(g1 >= 700 && g1 <= 1800, "first retry after %lld ms (~1 s)", (long long)g1);
        CHECK(g2 >= 1500 && g2 <= 3200, "second retry after %lld ms (~2 s)", (long long)g2);
        CHECK(g3 >= 3000 && g3 <= 5800, "third retry after %lld ms (~4 s)", (long long)g3);
    }
    check_delivery_order(w, 1, top, "after retries");

    /* --- a hanging receiver does not slow SCIM requests ------------------------------------ */
    wr_hang_ms(w, 6000);
    int64_t worst = 0;
    for (int i = 0; i < 15; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "hang-%02d", i);
        int64_t t0 = wr_now_ms();
        free(create_user(nm));
        int64_t d = wr_now_ms() - t0;
        if (d > worst)
            worst = d;
    }
    CHECK(worst < 2000, "slowest SCIM request while the receiver hangs: %lld ms", (long long)worst);
    wr_hang_ms(w, 0);
    top = latest_seq();
    CHECK(wait_delivered(w, top, 40) == 0, "delivered after the hang");
    check_delivery_order(w, 1, top, "after hang");

    /* --- restart with deliveries pending: kill -9, then SIGTERM ---------------------------- */
    for (int variant = 0; variant < 2; variant++) {
        wr_down(w);
        for (int i = 0; i < 5; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "rs%d-%d", variant, i);
            free(create_user(nm));
        }
        top = latest_seq();
        usleep(300 * 1000); /* let the delivery thread fail and schedule a retry */
        if (variant == 0)
            CHECK(e2e_server_kill9(&srv) == 0, "kill -9");
        else
            CHECK(e2e_server_stop(&srv) == 0, "SIGTERM");
        CHECK(wr_up(w) == 0, "receiver up again");
        CHECK(e2e_server_restart(&srv) == 0, "restart");
        CHECK(wait_delivered(w, top, 40) == 0, "pending events delivered after restart %d", variant);
        check_delivery_order(w, 1, top, variant == 0 ? "after kill -9" : "after SIGTERM");
    }

    /* --- admin: PATCH a webhook, 404 of other paths ----------------------------------------- */
    snprintf(path, sizeof path, "/admin/webhooks/%s", wh);
    CHECK(req("PATCH", path, "{\"enabled\":false}", &o) == 200 && json_is_false(json_object_get(o, "enabled")),
          "PATCH enabled=false");
    json_decref(o);
    CHECK(req("PATCH", path, "{\"colour\":1}", NULL) == 400, "unknown field is 400");
    CHECK(req("GET", "/admin/events?after=x", NULL, NULL) == 400, "after=x is 400");

    free(u1);
    free(u2);
    free(u3);
    free(u4);
    free(u5);
    free(u6);
    wr_free(w);
    printf("%s (%d failures)\n", failures ? "FAILED" : "ok", failures);
    e2e_server_cleanup(&srv, failures == 0);
    return failures ? 1 : 0;
}
