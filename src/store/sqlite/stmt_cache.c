/* Prepared-statement cache of one SQLite connection (stmt_cache.h). */
#include "store/sqlite/stmt_cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: a cheap first test before strcmp. */
static uint64_t hash_sql(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int scim_stmt_cache_get(struct scim_stmt_cache *c, sqlite3 *db, const char *sql,
                        sqlite3_stmt **out)
{
    uint64_t h = hash_sql(sql);
    int victim = 0;
    *out = NULL;
    for (int i = 0; i < SCIM_STMT_CACHE_SIZE; i++) {
        if (c->e[i].sql && c->e[i].hash == h && strcmp(c->e[i].sql, sql) == 0) {
            c->e[i].used = ++c->tick;
            *out = c->e[i].stmt;
            return SQLITE_OK;
        }
        if (!c->e[i].sql)
            victim = i;
        else if (c->e[victim].sql && c->e[i].used < c->e[victim].used)
            victim = i;
    }
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    size_t len = strlen(sql) + 1;
    char *copy = malloc(len);
    if (!copy) {
        /* fail (a 500) rather than hand out a statement nobody would finalize */
        sqlite3_finalize(s);
        return SQLITE_NOMEM;
    }
    memcpy(copy, sql, len);
    sqlite3_finalize(c->e[victim].stmt);
    free(c->e[victim].sql);
    c->e[victim].sql = copy;
    c->e[victim].hash = h;
    c->e[victim].used = ++c->tick;
    c->e[victim].stmt = s;
    *out = s;
    return SQLITE_OK;
}

void scim_stmt_cache_clear(struct scim_stmt_cache *c)
{
    for (int i = 0; i < SCIM_STMT_CACHE_SIZE; i++) {
        sqlite3_finalize(c->e[i].stmt);
        free(c->e[i].sql);
        c->e[i].stmt = NULL;
        c->e[i].sql = NULL;
    }
}

/* Handles with a cache. Changed only when connections open and close; looked up under the
 * mutex (a handful of entries). */
static pthread_mutex_t attached_mu = PTHREAD_MUTEX_INITIALIZER;
static struct attached {
    sqlite3 *db;
    struct scim_stmt_cache *c;
} *attached;
static size_t n_attached, cap_attached;

void scim_stmt_cache_attach(struct scim_stmt_cache *c, sqlite3 *db)
{
    pthread_mutex_lock(&attached_mu);
    if (n_attached == cap_attached) {
        size_t ncap = cap_attached ? cap_attached * 2 : 16;
        struct attached *na = realloc(attached, ncap * sizeof(*na));
        if (!na) { /* the handle simply gets uncached statements */
            pthread_mutex_unlock(&attached_mu);
            return;
        }
        attached = na;
        cap_attached = ncap;
    }
    attached[n_attached++] = (struct attached){db, c};
    pthread_mutex_unlock(&attached_mu);
}

void scim_stmt_cache_detach(sqlite3 *db)
{
    pthread_mutex_lock(&attached_mu);
    for (size_t i = 0; i < n_attached; i++)
        if (attached[i].db == db) {
            attached[i] = attached[--n_attached];
            break;
        }
    if (n_attached == 0) {
        free(attached);
        attached = NULL;
        cap_attached = 0;
    }
    pthread_mutex_unlock(&attached_mu);
}

static struct scim_stmt_cache *cache_of(sqlite3 *db)
{
    struct scim_stmt_cache *c = NULL;
    pthread_mutex_lock(&attached_mu);
    for (size_t i = 0; i < n_attached; i++)
        if (attached[i].db == db) {
            c = attached[i].c;
            break;
        }
    pthread_mutex_unlock(&attached_mu);
    return c;
}

static bool cached(const struct scim_stmt_cache *c, const sqlite3_stmt *q)
{
    for (int i = 0; i < SCIM_STMT_CACHE_SIZE; i++)
        if (c->e[i].stmt == q)
            return true;
    return false;
}

int scim_stmt_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    struct scim_stmt_cache *c = cache_of(db);
    if (c) {
        int rc = scim_stmt_cache_get(c, db, sql, out);
        if (rc != SQLITE_OK || !sqlite3_stmt_busy(*out))
            return rc;
    }
    *out = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, out, NULL);
    if (rc != SQLITE_OK)
        *out = NULL;
    return rc;
}

void scim_stmt_release(sqlite3_stmt *q)
{
    if (!q)
        return;
    struct scim_stmt_cache *c = cache_of(sqlite3_db_handle(q));
    if (c && cached(c, q)) {
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
    } else {
        sqlite3_finalize(q);
    }
}
