/* A per-connection cache of prepared statements keyed by their SQL text, for the statements
 * the list query generates (filter, sort and paging shapes). Preparing one of those costs more
 * than running it (a lookup by userName: ~270,000 instructions to parse and plan, BENCHMARKS.md
 * "Read path"), and IdPs send the same few shapes again and again, with only the bound values
 * changing. Bounded (SCIM_STMT_CACHE_SIZE entries, least recently used evicted), so a client
 * sending ever new filter shapes cannot grow it.
 *
 * Not thread-safe: one cache per connection, used by the thread holding the connection. */
#ifndef SCIM_STORE_SQLITE_STMT_CACHE_H
#define SCIM_STORE_SQLITE_STMT_CACHE_H

#include <sqlite3.h>
#include <stdint.h>

#define SCIM_STMT_CACHE_SIZE 16

struct scim_stmt_cache {
    struct {
        char *sql;         /* malloc'ed; NULL = free slot */
        uint64_t hash;
        uint64_t used;     /* tick of the last use (LRU) */
        sqlite3_stmt *stmt;
    } e[SCIM_STMT_CACHE_SIZE];
    uint64_t tick;
};

/* The prepared statement for `sql` on `db`, prepared on a miss. It stays owned by the cache:
 * the caller resets it and clears its bindings after use (sqlite3_reset,
 * sqlite3_clear_bindings) and never finalizes it. SQLITE_OK, or the sqlite3_prepare error code
 * (or SQLITE_NOMEM) with *out NULL. */
int scim_stmt_cache_get(struct scim_stmt_cache *c, sqlite3 *db, const char *sql,
                        sqlite3_stmt **out);
/* Finalizes every statement (before closing the connection). */
void scim_stmt_cache_clear(struct scim_stmt_cache *c);

#endif
