/* Private to the SQLite backend: group commit on the dedicated writer connection.
 *
 * Concurrent write requests ("jobs") take turns on one connection. Each job runs inside its own
 * SAVEPOINT within a shared BEGIN IMMEDIATE transaction; a job that fails is rolled back to its
 * savepoint and leaves nothing. When a job finishes and other jobs are waiting for their turn
 * (and the batch holds fewer than max_batch jobs), the transaction stays open and the next job
 * runs in it; otherwise the finishing thread commits the batch: one COMMIT, hence one WAL fsync
 * with synchronous=FULL, for every job of the batch. A job's scim_gc_commit returns only after
 * that COMMIT has returned, so a request acknowledged as successful is durable. A failed COMMIT
 * (or a transaction SQLite rolled back by itself) fails every job of the batch.
 * A lone job is never delayed: with nobody waiting it commits at once. docs/INTERNALS.md
 * ("Group commit") has the argument for atomicity and durability. */
#ifndef SCIM_STORE_SQLITE_GCOMMIT_H
#define SCIM_STORE_SQLITE_GCOMMIT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

struct scim_gc_wait;

enum { SCIM_GC_BEGIN, SCIM_GC_COMMIT, SCIM_GC_ROLLBACK, SCIM_GC_SAVEPOINT, SCIM_GC_RELEASE,
       SCIM_GC_ROLLBACK_TO, SCIM_GC_NSTMT };

struct scim_gc {
    pthread_mutex_t mu;
    pthread_cond_t turn_cv; /* a job waits here for its turn on the connection */
    pthread_cond_t done_cv; /* a finished job waits here for its batch's COMMIT */
    sqlite3 *db;
    bool *in_tx, *committing; /* the connection's commit-veto flags (sqlite.c commit_guard) */
    sqlite3_stmt *st[SCIM_GC_NSTMT];
    int max_batch;
    /* under mu */
    bool busy;        /* a job holds the turn */
    pthread_t holder; /* ... this thread */
    int waiting;      /* jobs waiting for the turn */
    bool tx_open;     /* the batch transaction is open */
    bool sp_open;     /* the holder's savepoint is open */
    int batch_n;      /* jobs of the open batch that succeeded so far */
    struct scim_gc_wait *batch; /* their waits, answered by the COMMIT */
    uint64_t jobs, batches, commits_failed; /* statistics */
};

/* Prepares the statements on `db` (a connection used by nothing else) and the locks.
 * in_tx / committing: flags the connection's commit hook reads. 0, or -1 with 500. */
int scim_gc_init(struct scim_gc *g, sqlite3 *db, bool *in_tx, bool *committing, int max_batch,
                 struct scim_err *err);
/* Finalizes the statements (the connection itself belongs to the caller). */
void scim_gc_destroy(struct scim_gc *g);

/* Waits for this thread's turn on the connection. Every call is paired with scim_gc_commit
 * (success) or scim_gc_leave (failure, or a job that never began). */
void scim_gc_enter(struct scim_gc *g);
/* Opens the job: the batch transaction if none is open, then the job's savepoint. On failure
 * (-1, 500 in err) the job still holds the turn: call scim_gc_leave. */
int scim_gc_begin(struct scim_gc *g, struct scim_err *err);
/* Ends a successful job: releases its savepoint, gives up the turn (committing the batch when
 * no other job waits or the batch is full) and returns once the batch's COMMIT has returned:
 * 0 when it committed (the job is durable), -1 with 500 when it did not (nothing of the job
 * was written). Either way the turn is given up: the caller must not use the connection. */
int scim_gc_commit(struct scim_gc *g, struct scim_err *err);
/* Ends a failed job if this thread still holds the turn (no-op otherwise): rolls back to its
 * savepoint (the batch's other jobs are kept) and gives up the turn. If the savepoint cannot
 * be rolled back, the whole batch is rolled back and its jobs fail. */
void scim_gc_leave(struct scim_gc *g);

#endif
