/* Group commit on the SQLite writer connection (src/store/sqlite/gcommit.h): batches, a failed
 * job inside a batch, a failed COMMIT, and concurrent creates through the store on a file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "scim/schema.h"
#include "store/sqlite/gcommit.h"
#include "store/store.h"

struct gfx {
    char path[64];
    sqlite3 *db;
    bool in_tx, committing;
    struct scim_gc g;
};

static int guard(void *arg)
{
    const struct gfx *f = arg;
    return f->in_tx && !f->committing;
}

static void gfx_open(struct gfx *f)
{
    struct scim_err err;
    scim_err_clear(&err);
    snprintf(f->path, sizeof f->path, "/tmp/scimd-gc-XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(sqlite3_open(f->path, &f->db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(f->db,
                                  "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                  "CREATE TABLE p(id INTEGER PRIMARY KEY);"
                                  "CREATE TABLE t(v INTEGER, p INTEGER REFERENCES p(id) "
                                  "DEFERRABLE INITIALLY DEFERRED);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_commit_hook(f->db, guard, f);
    assert_int_equal(scim_gc_init(&f->g, f->db, &f->in_tx, &f->committing, 64, &err), 0);
}

static void gfx_close(struct gfx *f)
{
    scim_gc_destroy(&f->g);
    sqlite3_close(f->db);
    char side[80];
    unlink(f->path);
    snprintf(side, sizeof side, "%s-wal", f->path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", f->path);
    unlink(side);
}

static int count_rows(struct gfx *f)
{
    sqlite3_stmt *q;
    int n = -1;
    if (sqlite3_prepare_v2(f->db, "SELECT count(*) FROM t", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return n;
}

/* One job: v is inserted; fk = 1 makes it violate the deferred foreign key (the COMMIT fails);
 * fail = 1 makes the job fail after its insert (it is left, not committed). */
struct job {
    struct gfx *f;
    int v, fk, fail;
    int rc;
    struct scim_err err;
};

static void *run_job(void *arg)
{
    struct job *j = arg;
    char sql[96];
    scim_err_clear(&j->err);
    scim_gc_enter(&j->f->g);
    j->rc = -1;
    if (scim_gc_begin(&j->f->g, &j->err) == 0) {
        snprintf(sql, sizeof sql, "INSERT INTO t(v, p) VALUES (%d, %s)", j->v, j->fk ? "999" : "NULL");
        if (sqlite3_exec(j->f->db, sql, NULL, NULL, NULL) == SQLITE_OK && !j->fail) {
            j->rc = scim_gc_commit(&j->f->g, &j->err);
            return NULL;
        }
    }
    scim_gc_leave(&j->f->g);
    return NULL;
}

static int waiting(struct gfx *f)
{
    pthread_mutex_lock(&f->g.mu);
    int n = f->g.waiting;
    pthread_mutex_unlock(&f->g.mu);
    return n;
}

/* The first job holds the turn until `n` others wait, so all of them form one batch. */
static void *first_job(void *arg)
{
    struct job *j = arg;
    scim_err_clear(&j->err);
    scim_gc_enter(&j->f->g);
    assert_int_equal(scim_gc_begin(&j->f->g, &j->err), 0);
    assert_int_equal(sqlite3_exec(j->f->db, "INSERT INTO t(v) VALUES (1)", NULL, NULL, NULL), SQLITE_OK);
    while (waiting(j->f) < j->fail) /* fail: here the number of jobs to wait for */
        usleep(1000);
    j->rc = scim_gc_commit(&j->f->g, &j->err);
    return NULL;
}

static void run_batch(struct gfx *f, struct job *jobs, int n)
{
    pthread_t th[8];
    jobs[0].fail = n - 1;
    pthread_create(&th[0], NULL, first_job, &jobs[0]);
    while (!f->g.tx_open) /* job 0 holds the turn with the batch open */
        usleep(1000);
    for (int i = 1; i < n; i++)
        pthread_create(&th[i], NULL, run_job, &jobs[i]);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

/* Jobs 2 and 4 fail: the batch's three others commit, once, without them. */
static void test_failed_job_leaves_nothing(void **state)
{
    (void)state;
    struct gfx f;
    gfx_open(&f);
    struct job jobs[5];
    for (int i = 0; i < 5; i++)
        jobs[i] = (struct job){.f = &f, .v = i + 1, .fail = i == 1 || i == 3};
    run_batch(&f, jobs, 5);
    assert_int_equal(jobs[0].rc, 0);
    assert_int_equal(jobs[2].rc, 0);
    assert_int_equal(jobs[4].rc, 0);
    assert_int_equal(jobs[1].rc, -1);
    assert_int_equal(jobs[3].rc, -1);
    assert_int_equal(count_rows(&f), 3);
    assert_int_equal(f.g.jobs, 5);
    assert_int_equal(f.g.batches, 1);
    assert_false(f.in_tx);
    assert_int_equal(sqlite3_get_autocommit(f.db), 1);
    gfx_close(&f);
}

/* The COMMIT fails (deferred foreign key): every job of the batch fails, none is written. */
static void test_failed_commit_fails_all(void **state)
{
    (void)state;
    struct gfx f;
    gfx_open(&f);
    struct job jobs[3];
    for (int i = 0; i < 3; i++)
        jobs[i] = (struct job){.f = &f, .v = i + 1, .fk = i == 2};
    run_batch(&f, jobs, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(jobs[i].rc, -1);
        assert_int_equal(jobs[i].err.status, 500);
    }
    assert_int_equal(count_rows(&f), 0);
    assert_int_equal(f.g.commits_failed, 1);
    assert_false(f.in_tx);
    /* the connection is usable again: a lone job commits at once */
    struct job lone = {.f = &f, .v = 7};
    run_job(&lone);
    assert_int_equal(lone.rc, 0);
    assert_int_equal(count_rows(&f), 1);
    assert_int_equal(f.g.batches, 1);
    gfx_close(&f);
}

/* A commit hook veto inside a job (a stray COMMIT) fails that job only. */
static void test_stray_commit_vetoed(void **state)
{
    (void)state;
    struct gfx f;
    gfx_open(&f);
    struct scim_err err;
    scim_err_clear(&err);
    scim_gc_enter(&f.g);
    assert_int_equal(scim_gc_begin(&f.g, &err), 0);
    assert_int_equal(sqlite3_exec(f.db, "INSERT INTO t(v) VALUES (1)", NULL, NULL, NULL), SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(f.db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    scim_gc_leave(&f.g);
    assert_int_equal(count_rows(&f), 0);
    assert_false(f.in_tx);
    gfx_close(&f);
}

/* ---- through the store: concurrent creates on a file, some of them conflicting ---- */

#define THREADS 8
#define PER_THREAD 60

struct cfx {
    struct scim_store *st;
    int64_t tenant;
    int t;
    int ok, conflict, other;
};

static void *creator(void *arg)
{
    struct cfx *c = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        /* every third name is shared by all threads: exactly one of them creates it */
        char name[64];
        if (i % 3 == 0)
            snprintf(name, sizeof name, "shared%d@example.com", i);
        else
            snprintf(name, sizeof name, "t%d-%d@example.com", c->t, i);
        json_t *doc = json_pack("{s:[s], s:s}", "schemas", SCIM_SCHEMA_USER, "userName", name);
        struct scim_err err;
        scim_err_clear(&err);
        json_t *out = NULL;
        int rc = scim_store_create(c->st, c->tenant, SCIM_RT_USER, doc, NULL, NULL, 0, &out, NULL, &err);
        if (rc == 0 && json_is_string(json_object_get(out, "id")))
            c->ok++;
        else if (rc < 0 && err.status == 409)
            c->conflict++;
        else
            c->other++;
        json_decref(out);
        json_decref(doc);
    }
    return NULL;
}

static void test_store_concurrent_creates(void **state)
{
    (void)state;
    char path[64] = "/tmp/scimd-gcs-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    char uri[96];
    snprintf(uri, sizeof uri, "sqlite:%s", path);
    struct scim_registry *reg = scim_registry_new();
    struct scim_store_opts o = {.reg = reg};
    struct scim_store *st = NULL;
    struct scim_err err;
    scim_err_clear(&err);
    int64_t tenant;
    assert_int_equal(scim_store_open(uri, &o, &st, &err), 0);
    assert_int_equal(scim_store_tenant_default(st, &tenant, &err), 0);
    pthread_t th[THREADS];
    struct cfx c[THREADS];
    for (int t = 0; t < THREADS; t++) {
        c[t] = (struct cfx){.st = st, .tenant = tenant, .t = t};
        pthread_create(&th[t], NULL, creator, &c[t]);
    }
    int ok = 0, conflict = 0, other = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        ok += c[t].ok;
        conflict += c[t].conflict;
        other += c[t].other;
    }
    int shared = PER_THREAD / 3;
    assert_int_equal(other, 0);
    assert_int_equal(conflict, shared * (THREADS - 1));
    assert_int_equal(ok, THREADS * PER_THREAD - shared * (THREADS - 1));
    /* what was acknowledged is what is there, after reopening the file */
    scim_store_free(&st);
    assert_int_equal(scim_store_open(uri, &o, &st, &err), 0);
    struct scim_store_query q = {.start_index = 1, .count = 0};
    struct scim_store_page page = {0};
    assert_int_equal(scim_store_list(st, tenant, SCIM_RT_USER, &q, &page, &err), 0);
    assert_int_equal(page.total, ok);
    json_decref(page.resources);
    scim_store_free(&st);
    scim_registry_free(&reg);
    char side[96];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_job_leaves_nothing),
        cmocka_unit_test(test_failed_commit_fails_all),
        cmocka_unit_test(test_stray_commit_vetoed),
        cmocka_unit_test(test_store_concurrent_creates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
