/* Private to the SQLite backend: the WAL checkpointer of the group-commit writer.
 *
 * SQLite normally checkpoints inside the COMMIT that pushes the WAL past 1000 frames, on the
 * committing connection. On the group-commit writer that would stall every queued write (and
 * the batch's responses) for the whole checkpoint, which writes and fsyncs the database file.
 * Instead the writer's WAL hook pokes this thread, which runs a PASSIVE checkpoint on its own
 * connection; PASSIVE never blocks the writer or the readers. Past 10,000 WAL frames the writer
 * checkpoints itself (ckpt.c says why), so that the WAL cannot grow without bound. */
#ifndef SCIM_STORE_SQLITE_CKPT_H
#define SCIM_STORE_SQLITE_CKPT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "common/err.h"

struct scim_ckpt {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    sqlite3 *db;
    bool want, stop, running;
    unsigned long long runs; /* checkpoints made (statistics) */
};

/* Opens the checkpointer's connection to `path`, starts its thread and installs the WAL hook
 * on `writer` (which replaces the writer's automatic checkpoints). 0, or -1 with 500. */
int scim_ckpt_start(struct scim_ckpt *k, const char *path, sqlite3 *writer, struct scim_err *err);
/* Stops the thread (after the checkpoint it may be running) and closes its connection.
 * No-op if scim_ckpt_start did not succeed. */
void scim_ckpt_stop(struct scim_ckpt *k);

#endif
