/* Prepared-statement cache of one SQLite connection (stmt_cache.h). */
#include "store/sqlite/stmt_cache.h"

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
