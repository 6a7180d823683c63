/* The WAL checkpointer thread (ckpt.h). */
#include "store/sqlite/ckpt.h"

#include "common/log.h"

/* SQLite's own default threshold (wal_autocheckpoint = 1000 pages) */
#define CKPT_FRAMES 1000
/* The thread's checkpoints never let the WAL restart while the writer keeps committing, so
 * under a sustained write load the WAL grew without bound (measured: 334 MB in 20 s of
 * creates). Past this many frames (~40 MB with 4 KiB pages) the writer checkpoints itself,
 * from its WAL hook (as SQLite's automatic checkpoint does), holding off the next batch while
 * it copies what the thread has not: then the next batch starts the WAL from its beginning. */
#define CKPT_WRITER_FRAMES 10000

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct scim_ckpt *k = arg;
    if (frames >= CKPT_WRITER_FRAMES) {
        /* the thread is not poked meanwhile, so its current run ends and this one gets the
         * checkpoint lock (a run of the thread makes this return SQLITE_BUSY: next commit) */
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (frames >= CKPT_FRAMES) {
        pthread_mutex_lock(&k->mu);
        k->want = true;
        pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    struct scim_ckpt *k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (!k->want && !k->stop)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->stop)
            break;
        k->want = false;
        pthread_mutex_unlock(&k->mu);
        int rc = sqlite3_wal_checkpoint_v2(k->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            scim_warn("sqlite_checkpoint_failed cause=\"%s\"", sqlite3_errmsg(k->db));
        pthread_mutex_lock(&k->mu);
        k->runs++;
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

int scim_ckpt_start(struct scim_ckpt *k, const char *path, sqlite3 *writer, struct scim_err *err)
{
    *k = (struct scim_ckpt){0};
    if (sqlite3_open_v2(path, &k->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        scim_err_internal(err, "sqlite checkpointer open: %s", k->db ? sqlite3_errmsg(k->db) : "out of memory");
        sqlite3_close_v2(k->db);
        k->db = NULL;
        return -1;
    }
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    if (pthread_create(&k->th, NULL, ckpt_main, k) != 0) {
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
        sqlite3_close_v2(k->db);
        k->db = NULL;
        return scim_err_internal(err, "sqlite checkpointer: cannot start its thread");
    }
    k->running = true;
    sqlite3_wal_hook(writer, wal_hook, k);
    return 0;
}

void scim_ckpt_stop(struct scim_ckpt *k)
{
    if (!k->running)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->th, NULL);
    scim_debug("sqlite_checkpointer checkpoints=%llu", k->runs);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    sqlite3_close_v2(k->db);
    k->running = false;
}
