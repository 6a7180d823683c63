/* e2e/pg_restart: the PostgreSQL server goes away under a stream of writes and comes back.
 * Four threads POST users without pause while the test cluster is stopped for 2 seconds and
 * started again (scripts/pg-test-cluster.sh restart 2). Checks:
 *  - every request gets an HTTP answer within a bounded time (no hang, no crash);
 *  - a failed write is a 503 SCIM Error with Retry-After (and at least one is seen);
 *  - afterwards scimd (never restarted) serves writes again;
 *  - every acknowledged (201) user is present.
 * Runs only on PostgreSQL with the script's cluster; exits 77 (skipped) otherwise. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e.h"

#define WRITERS 4
#define MAX_ACKED 20000
#define MAX_REQUEST_MS 15000

static struct e2e_server srv;
static atomic_int stop_writers;
static atomic_int failures;
static atomic_int unavailable; /* 503s seen */
static atomic_int after_ok;    /* 201s after the server came back */
static atomic_int phase;       /* 0 before, 1 during, 2 after the restart */

static char acked[MAX_ACKED][40];
static atomic_int n_acked;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void *writer(void *arg)
{
    int index = (int)(long)arg;
    for (int i = 0; !atomic_load(&stop_writers); i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"w%d-%d\"}", index, i);
        struct e2e_response r;
        long t0 = now_ms();
        int rc = e2e_request(&srv, "POST", "/Users", NULL, body, &r);
        long took = now_ms() - t0;
        if (rc != 0 || took > MAX_REQUEST_MS) {
            fprintf(stderr, "FAIL w%d-%d: no answer in time (%ld ms): %s\n", index, i, took, r.error);
            atomic_fetch_add(&failures, 1);
        } else if (r.status == 201) {
            int k = atomic_fetch_add(&n_acked, 1);
            if (k < MAX_ACKED)
                snprintf(acked[k], sizeof acked[k], "%s", json_string_value(json_object_get(r.json, "id")));
            if (atomic_load(&phase) == 2)
                atomic_fetch_add(&after_ok, 1);
        } else if (r.status == 503) {
            const char *schema = json_string_value(json_array_get(json_object_get(r.json, "schemas"), 0));
            if (!r.retry_after || !schema || strcmp(schema, "urn:ietf:params:scim:api:messages:2.0:Error") != 0) {
                fprintf(stderr, "FAIL 503 without Retry-After or SCIM Error body: %s\n", r.body);
                atomic_fetch_add(&failures, 1);
            }
            atomic_fetch_add(&unavailable, 1);
        } else {
            fprintf(stderr, "FAIL w%d-%d: status %ld: %s\n", index, i, r.status, r.body);
            atomic_fetch_add(&failures, 1);
        }
        long status = r.status;
        e2e_response_free(&r);
        if (status == 503) {
            struct timespec ts = {0, 50 * 1000000L}; /* a client would wait Retry-After */
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void)
{
    if (!e2e_backend_pg()) {
        fprintf(stderr, "pg_restart: needs SCIMD_TEST_BACKEND=postgresql; skipped\n");
        return E2E_SKIP;
    }
    if (e2e_pg_cluster("status", NULL) != 0) {
        fprintf(stderr, "pg_restart: the database is not scripts/pg-test-cluster.sh's cluster; skipped\n");
        return E2E_SKIP;
    }
    e2e_global_init();
    if (e2e_server_start(&srv, NULL) != 0) {
        e2e_server_cleanup(&srv, 0);
        return 1;
    }
    pthread_t th[WRITERS];
    for (long i = 0; i < WRITERS; i++)
        pthread_create(&th[i], NULL, writer, (void *)i);
    sleep_ms(1000);
    int before = atomic_load(&n_acked);
    atomic_store(&phase, 1);
    long t0 = now_ms();
    int rc = e2e_pg_cluster("restart", "2");
    fprintf(stderr, "pg_restart: cluster restarted (exit %d) in %ld ms\n", rc, now_ms() - t0);
    atomic_store(&phase, 2);
    /* writes must succeed again without restarting scimd */
    long deadline = now_ms() + 20000;
    while (atomic_load(&after_ok) < 20 && now_ms() < deadline)
        sleep_ms(100);
    atomic_store(&stop_writers, 1);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);

    int ok = rc == 0;
    if (before == 0) {
        fprintf(stderr, "FAIL no write succeeded before the restart\n");
        ok = 0;
    }
    if (atomic_load(&unavailable) == 0) {
        fprintf(stderr, "FAIL no 503 during a 2 s outage\n");
        ok = 0;
    }
    if (atomic_load(&after_ok) < 20) {
        fprintf(stderr, "FAIL only %d writes succeeded after the restart\n", atomic_load(&after_ok));
        ok = 0;
    }
    int n = atomic_load(&n_acked);
    if (n > MAX_ACKED)
        n = MAX_ACKED;
    int missing = 0;
    for (int i = 0; i < n; i++) {
        char path[96];
        snprintf(path, sizeof path, "/Users/%s", acked[i]);
        struct e2e_response r;
        if (e2e_request(&srv, "GET", path, NULL, NULL, &r) != 0 || r.status != 200) {
            if (missing++ < 5)
                fprintf(stderr, "FAIL acknowledged user %s: GET %ld\n", acked[i], r.status);
        }
        e2e_response_free(&r);
    }
    ok = ok && missing == 0 && atomic_load(&failures) == 0;
    printf("pg_restart: %d acknowledged writes (%d before the restart, %d after), %d answered 503, %d missing, "
           "%d failures: %s\n",
           n, before, atomic_load(&after_ok), atomic_load(&unavailable), missing, atomic_load(&failures),
           ok ? "ok" : "FAILED");
    e2e_server_cleanup(&srv, ok);
    return ok ? 0 : 1;
}
