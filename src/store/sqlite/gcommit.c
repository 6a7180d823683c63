/* Group commit for the SQLite backend (gcommit.h). One mutex guards the turn and the batch
 * bookkeeping; the SQL itself runs outside it, by the thread holding the turn, so threads
 * arriving during a COMMIT (its fsync) queue up and form the next batch. */
#include <stdio.h>

#include "common/log.h"
#include "store/sqlite/gcommit.h"

/* A job waiting for its batch's COMMIT (lives on the waiting thread's stack). */
struct scim_gc_wait {
    struct scim_gc_wait *next;
    struct scim_err *err;
    int rc;
    bool done;
};

static const char *const gc_sql[SCIM_GC_NSTMT] = {
    [SCIM_GC_BEGIN] = "BEGIN IMMEDIATE",
    [SCIM_GC_COMMIT] = "COMMIT",
    [SCIM_GC_ROLLBACK] = "ROLLBACK",
    [SCIM_GC_SAVEPOINT] = "SAVEPOINT scim_job",
    [SCIM_GC_RELEASE] = "RELEASE scim_job",
    [SCIM_GC_ROLLBACK_TO] = "ROLLBACK TO scim_job",
};

int scim_gc_init(struct scim_gc *g, sqlite3 *db, bool *in_tx, bool *committing, int max_batch,
                 struct scim_err *err)
{
    *g = (struct scim_gc){.db = db, .in_tx = in_tx, .committing = committing,
                          .max_batch = max_batch > 0 ? max_batch : 1};
    /* prepared once: the per-job statements then never allocate */
    for (int i = 0; i < SCIM_GC_NSTMT; i++) {
        if (sqlite3_prepare_v3(db, gc_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &g->st[i], NULL) !=
            SQLITE_OK) {
            scim_err_internal(err, "sqlite prepare %s: %s", gc_sql[i], sqlite3_errmsg(db));
            for (int j = 0; j < i; j++)
                sqlite3_finalize(g->st[j]);
            return -1;
        }
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->turn_cv, NULL);
    pthread_cond_init(&g->done_cv, NULL);
    return 0;
}

void scim_gc_destroy(struct scim_gc *g)
{
    if (g->jobs)
        scim_debug("sqlite_group_commit jobs=%llu batches=%llu failed_commits=%llu",
                   (unsigned long long)g->jobs, (unsigned long long)g->batches,
                   (unsigned long long)g->commits_failed);
    for (int i = 0; i < SCIM_GC_NSTMT; i++)
        sqlite3_finalize(g->st[i]);
    pthread_cond_destroy(&g->done_cv);
    pthread_cond_destroy(&g->turn_cv);
    pthread_mutex_destroy(&g->mu);
}

static int run(struct scim_gc *g, int i)
{
    int rc = sqlite3_step(g->st[i]);
    sqlite3_reset(g->st[i]);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int fail(struct scim_gc *g, struct scim_err *err, int i)
{
    return scim_err_internal(err, "sqlite %s: %s (%d)", gc_sql[i], sqlite3_errmsg(g->db),
                             sqlite3_extended_errcode(g->db));
}

void scim_gc_enter(struct scim_gc *g)
{
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    while (g->busy)
        pthread_cond_wait(&g->turn_cv, &g->mu);
    g->waiting--;
    g->busy = true;
    g->holder = pthread_self();
    g->jobs++;
    pthread_mutex_unlock(&g->mu);
}

int scim_gc_begin(struct scim_gc *g, struct scim_err *err)
{
    /* tx_open and sp_open are only touched by the thread holding the turn */
    if (!g->tx_open) {
        if (run(g, SCIM_GC_BEGIN) < 0)
            return fail(g, err, SCIM_GC_BEGIN);
        g->tx_open = true;
        *g->in_tx = true;
    }
    if (run(g, SCIM_GC_SAVEPOINT) < 0)
        return fail(g, err, SCIM_GC_SAVEPOINT);
    g->sp_open = true;
    return 0;
}

/* Turn held, mu not held: ends the batch transaction, by COMMIT when `commit`, else by
 * ROLLBACK. 0 only when the COMMIT succeeded; the reason of a failure goes to why. */
static int end_tx(struct scim_gc *g, bool commit, char *why, size_t whylen)
{
    int rc = -1;
    if (commit) {
        *g->committing = true;
        rc = run(g, SCIM_GC_COMMIT);
        *g->committing = false;
        if (rc < 0)
            snprintf(why, whylen, "sqlite COMMIT of a group-commit batch: %s (%d)",
                     sqlite3_errmsg(g->db), sqlite3_extended_errcode(g->db));
    }
    /* a failed COMMIT can leave the transaction open: nothing of it may survive */
    if (!sqlite3_get_autocommit(g->db))
        run(g, SCIM_GC_ROLLBACK);
    *g->in_tx = false;
    return rc;
}

/* Turn held, mu not held. Adds the finished job's wait `w` (NULL for a failed job) to the
 * batch, then either leaves the transaction open for the next waiting job or ends it (COMMIT;
 * ROLLBACK when abort_batch) and answers every wait of the batch; gives up the turn; and waits
 * for w's answer. Returns w's result (0 for w == NULL). */
static int finish(struct scim_gc *g, struct scim_gc_wait *w, bool abort_batch, const char *abort_why)
{
    pthread_mutex_lock(&g->mu);
    if (w) {
        w->next = g->batch;
        g->batch = w;
        g->batch_n++;
    }
    if (abort_batch || !g->tx_open || g->waiting == 0 || g->batch_n >= g->max_batch) {
        bool commit = !abort_batch && g->tx_open && g->batch_n > 0;
        char why[320];
        int rc = -1;
        snprintf(why, sizeof why, "%s", abort_why ? abort_why : "group commit: no open transaction");
        if (g->tx_open) {
            pthread_mutex_unlock(&g->mu);
            rc = end_tx(g, commit, why, sizeof why);
            pthread_mutex_lock(&g->mu);
            g->tx_open = false;
        }
        if (commit) {
            if (rc == 0)
                g->batches++;
            else
                g->commits_failed++;
        }
        for (struct scim_gc_wait *x = g->batch; x; x = x->next) {
            x->rc = commit ? rc : -1;
            if (x->rc < 0)
                scim_err_internal(x->err, "%s", why);
            x->done = true;
        }
        g->batch = NULL;
        g->batch_n = 0;
        pthread_cond_broadcast(&g->done_cv);
    }
    g->busy = false;
    pthread_cond_signal(&g->turn_cv);
    while (w && !w->done)
        pthread_cond_wait(&g->done_cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return w ? w->rc : 0;
}

/* Turn held: undoes the holder's savepoint. False when that is impossible (SQLite rolled the
 * whole transaction back by itself, or the ROLLBACK TO failed): the batch must then go. */
static bool undo_job(struct scim_gc *g)
{
    bool ok = true;
    if (g->sp_open)
        ok = !sqlite3_get_autocommit(g->db) && run(g, SCIM_GC_ROLLBACK_TO) == 0 &&
             run(g, SCIM_GC_RELEASE) == 0;
    else if (g->tx_open)
        ok = !sqlite3_get_autocommit(g->db);
    g->sp_open = false;
    return ok;
}

static const char undo_failed[] =
    "group commit: a failed job could not be rolled back to its savepoint; batch rolled back";

int scim_gc_commit(struct scim_gc *g, struct scim_err *err)
{
    struct scim_gc_wait w = {.err = err};
    if (!g->sp_open || !g->tx_open) {
        scim_err_internal(err, "group commit: commit without an open job");
        finish(g, NULL, !undo_job(g), undo_failed);
        return -1;
    }
    /* every statement of the job ran in the transaction only if it is still open: SQLite rolls
     * it back by itself on some errors, and a job that ignored such an error must not count */
    if (sqlite3_get_autocommit(g->db)) {
        g->sp_open = false;
        return finish(g, &w, true, "group commit: the batch transaction was rolled back by SQLite");
    }
    if (run(g, SCIM_GC_RELEASE) < 0) {
        fail(g, err, SCIM_GC_RELEASE);
        finish(g, NULL, !undo_job(g), undo_failed);
        return -1;
    }
    g->sp_open = false;
    return finish(g, &w, false, NULL);
}

void scim_gc_leave(struct scim_gc *g)
{
    pthread_mutex_lock(&g->mu);
    bool mine = g->busy && pthread_equal(g->holder, pthread_self());
    pthread_mutex_unlock(&g->mu);
    if (mine)
        finish(g, NULL, !undo_job(g), undo_failed);
}
