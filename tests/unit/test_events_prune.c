/* Unit tests of the change feed's retention (scim_store_events_prune) and of the pruned-position
 * answer of scim_store_events_read (410), on SQLite in memory or, with
 * SCIMD_TEST_BACKEND=postgresql, a fresh PostgreSQL database (testdb.h): prune by count and by
 * age, per tenant, events held by an enabled webhook, seq continuing after a prune that emptied
 * the feed, and a backlog larger than one delete slice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/util.h"
#include "store/store.h"
#include "testdb.h"

struct fx {
    struct scim_store *st;
    int64_t tenant;
    int users;
    char pgname[64];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct scim_err err;
    char uri[512] = "sqlite::memory:";
    assert_non_null(f);
    if (testdb_pg())
        assert_int_equal(testdb_create(uri, sizeof uri, f->pgname), 0);
    assert_int_equal(scim_store_open(uri, NULL, &f->st, &err), 0);
    assert_int_equal(scim_store_tenant_default(f->st, &f->tenant, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    scim_store_free(&f->st);
    if (f->pgname[0])
        testdb_drop(f->pgname);
    free(f);
    return 0;
}

/* n user creations in `tenant`: one event each */
static void users(struct fx *f, int64_t tenant, int n)
{
    struct scim_err err;
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "user%d", f->users++);
        json_t *doc = json_pack("{s:s}", "userName", name);
        assert_int_equal(scim_store_create(f->st, tenant, SCIM_RT_USER, doc, NULL, NULL, 0, NULL,
                                           NULL, &err), 0);
        json_decref(doc);
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t prune(struct fx *f, int64_t before_us, int64_t max)
{
    struct scim_err err;
    int64_t gone = -1;
    assert_int_equal(scim_store_events_prune(f->st, before_us, max, &gone, &err), 0);
    return gone;
}

/* The kept events of a tenant (at most 1000): first and last seq, and their number. */
static void kept(struct fx *f, int64_t tenant, int64_t *first, int64_t *lastk, size_t *n)
{
    struct scim_err err;
    json_t *evs = NULL;
    int64_t latest = 0;
    assert_int_equal(scim_store_events_list(f->st, tenant, 0, 1000, &evs, &latest, &err), 0);
    *n = json_array_size(evs);
    *first = *n ? (int64_t)json_integer_value(json_object_get(json_array_get(evs, 0), "seq")) : 0;
    *lastk = *n ? (int64_t)json_integer_value(json_object_get(json_array_get(evs, *n - 1), "seq"))
                : 0;
    /* the kept events are gap-free */
    if (*n)
        assert_int_equal(*lastk - *first + 1, (int64_t)*n);
    json_decref(evs);
}

/* scim_store_events_read at `after`: expect 0 (with `want` events) or 410 (with oldest). */
static void read_ok(struct fx *f, int64_t after, size_t want)
{
    struct scim_err err;
    json_t *evs = NULL;
    int64_t last = -1, oldest = -1;
    assert_int_equal(scim_store_events_read(f->st, f->tenant, after, 100, 0, &evs, &last, &oldest,
                                            &err), 0);
    assert_int_equal(json_array_size(evs), want);
    if (want)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(evs, 0), "seq")),
                         after + 1);
    json_decref(evs);
}

static void read_gone(struct fx *f, int64_t after, int64_t oldest_want, int64_t last_want)
{
    struct scim_err err;
    json_t *evs = NULL;
    int64_t last = -1, oldest = -1;
    char want[64];
    scim_err_clear(&err);
    assert_int_equal(scim_store_events_read(f->st, f->tenant, after, 100, 0, &evs, &last, &oldest,
                                            &err), -1);
    assert_null(evs);
    assert_int_equal(err.status, 410);
    assert_int_equal(oldest, oldest_want);
    assert_int_equal(last, last_want);
    snprintf(want, sizeof want, "oldest available event is seq %lld", (long long)oldest_want);
    assert_non_null(strstr(err.detail, want));
    assert_non_null(strstr(err.detail, "pruned"));
    /* a long-poll on a pruned position answers at once, not after the wait */
    int64_t t0 = scim_mono_us();
    assert_int_equal(scim_store_events_read(f->st, f->tenant, after, 100, 3000, &evs, &last,
                                            &oldest, &err), -1);
    assert_int_equal(err.status, 410);
    assert_true(scim_mono_us() - t0 < 1000000);
}

static void test_prune_count(void **state)
{
    struct fx *f = *state;
    int64_t a, b;
    size_t n;
    users(f, f->tenant, 10);
    assert_int_equal(prune(f, 0, 0), 0); /* no rule: nothing */
    assert_int_equal(prune(f, 0, 20), 0);
    assert_int_equal(prune(f, 0, 4), 6);
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(a, 7);
    assert_int_equal(b, 10);
    assert_int_equal(n, 4);
    assert_int_equal(prune(f, 0, 4), 0); /* idempotent */
    read_ok(f, 6, 4);                    /* just before the oldest: nothing missed */
    read_ok(f, 8, 2);
    read_ok(f, 10, 0);
    read_gone(f, 5, 7, 10);
    read_gone(f, 0, 7, 10);
    /* the lenient list still answers what is kept (webhook delivery) */
    struct scim_err err;
    json_t *evs = NULL;
    assert_int_equal(scim_store_events_list(f->st, f->tenant, 0, 100, &evs, NULL, &err), 0);
    assert_int_equal(json_array_size(evs), 4);
    json_decref(evs);
    assert_int_equal(prune(f, 0, 1), 3);
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(a, 10);
    assert_int_equal(n, 1);
}

static void test_prune_all_then_seq_continues(void **state)
{
    struct fx *f = *state;
    int64_t a, b;
    size_t n;
    users(f, f->tenant, 5);
    sleep_ms(5);
    /* every event is older than "now": the feed becomes empty */
    assert_int_equal(prune(f, scim_now_us(), 0), 5);
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(n, 0);
    read_ok(f, 5, 0);        /* a reader that had everything */
    read_gone(f, 0, 6, 5);   /* nothing kept: the oldest available is the next one */
    read_gone(f, 4, 6, 5);
    users(f, f->tenant, 2); /* numbering continues: never reused */
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(a, 6);
    assert_int_equal(b, 7);
    read_ok(f, 5, 2);
    read_gone(f, 3, 6, 7);
}

static void test_prune_age(void **state)
{
    struct fx *f = *state;
    int64_t a, b;
    size_t n;
    users(f, f->tenant, 3);
    sleep_ms(10);
    int64_t cut = scim_now_us();
    sleep_ms(10);
    users(f, f->tenant, 4);
    assert_int_equal(prune(f, cut - 60 * 1000000LL, 0), 0); /* none that old */
    assert_int_equal(prune(f, cut, 0), 3);
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(a, 4);
    assert_int_equal(b, 7);
    /* both rules: either one selects; here the count (keep 2) goes further than the age */
    assert_int_equal(prune(f, cut, 2), 2);
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(a, 6);
    assert_int_equal(n, 2);
    read_gone(f, 3, 6, 7);
}

static void test_prune_per_tenant(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    struct scim_tenant t2;
    int64_t a, b;
    size_t n;
    assert_int_equal(scim_store_tenant_create(f->st, "other", &t2, &err), 0);
    users(f, f->tenant, 6);
    users(f, t2.id, 3);
    assert_int_equal(prune(f, 0, 3), 3); /* only the default tenant is over the limit */
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(a, 4);
    assert_int_equal(n, 3);
    kept(f, t2.id, &a, &b, &n);
    assert_int_equal(a, 1);
    assert_int_equal(n, 3);
    scim_tenant_release(&t2);
}

static void test_prune_webhook_hold(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    json_t *hook = NULL, *all = json_pack("[s]", "*");
    int64_t a, b;
    size_t n;
    users(f, f->tenant, 2); /* seq 1-2: before the webhook, not held */
    assert_int_equal(scim_store_webhook_create(f->st, f->tenant, "http://127.0.0.1:9/h", "whsec_0123456789abcdef0123", all,
                                               true, &hook, &err), 0);
    const char *id = json_string_value(json_object_get(hook, "id"));
    users(f, f->tenant, 5); /* seq 3-7: undelivered */
    sleep_ms(5);
    /* neither the count nor the age may take what the webhook has still to deliver */
    assert_int_equal(prune(f, scim_now_us(), 1), 2);
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(a, 3);
    assert_int_equal(b, 7);
    /* the webhook delivers up to 5: 3-5 may go now */
    struct scim_webhook_job job;
    memset(&job, 0, sizeof job);
    assert_int_equal(scim_store_webhook_claim(f->st, "test-node", scim_now_us(), 60000000, &job,
                                              &err), 1);
    assert_int_equal(job.cursor, 2);
    assert_int_equal(scim_store_webhook_progress(f->st, &job, "test-node", 5, 0, 0, 200, NULL, 0,
                                                 &err), 0);
    scim_webhook_job_release(&job);
    assert_int_equal(prune(f, 0, 1), 3);
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(a, 6);
    assert_int_equal(n, 2);
    /* a disabled webhook holds nothing */
    json_t *upd = NULL;
    assert_int_equal(scim_store_webhook_update(f->st, f->tenant, id, NULL, NULL, NULL, 0, &upd,
                                               &err), 0);
    json_decref(upd);
    assert_int_equal(prune(f, 0, 1), 1);
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(a, 7);
    assert_int_equal(n, 1);
    /* re-enabled it holds again (from its cursor, 5); deleted it holds nothing */
    assert_int_equal(scim_store_webhook_update(f->st, f->tenant, id, NULL, NULL, NULL, 1, &upd,
                                               &err), 0);
    json_decref(upd);
    sleep_ms(5);
    assert_int_equal(prune(f, scim_now_us(), 0), 0); /* 7 held */
    assert_int_equal(scim_store_webhook_delete(f->st, f->tenant, id, &err), 0);
    assert_int_equal(prune(f, scim_now_us(), 0), 1);
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(n, 0);
    json_decref(hook);
    json_decref(all);
}

/* More than one delete slice (4000 rows): every row goes, none beyond the cut. */
static void test_prune_slices(void **state)
{
    struct fx *f = *state;
    int64_t a, b;
    size_t n;
    users(f, f->tenant, 4105);
    assert_int_equal(prune(f, 0, 100), 4005);
    kept(f, f->tenant, &a, &b, &n);
    assert_int_equal(a, 4006);
    assert_int_equal(b, 4105);
    assert_int_equal(n, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prune_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_all_then_seq_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_per_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_webhook_hold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_slices, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
