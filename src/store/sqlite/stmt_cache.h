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

#define SCIM_STMT_CACHE_SIZE 48

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

/* Every statement scimd runs through scim_stmt_prepare is cached per connection: preparing
 * costs more than running most of them (a create prepared ~490,000 instructions of SQL per
 * request, webhook polling included, BENCHMARKS.md "Write path"). A connection's cache is
 * attached to its handle while the connection is open; handles without one (short-lived
 * tool connections) get plain statements. */
void scim_stmt_cache_attach(struct scim_stmt_cache *c, sqlite3 *db);
void scim_stmt_cache_detach(sqlite3 *db);
/* The statement for `sql` on `db`: from db's cache when it has one and the cached statement is
 * not in use (a nested use of the same SQL gets a statement of its own), else a new one.
 * SQLITE_OK or the prepare error, *out NULL then. Give it back with scim_stmt_release. */
int scim_stmt_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out);
/* Resets and unbinds a cached statement, finalizes any other; NULL is ignored. */
void scim_stmt_release(sqlite3_stmt *q);

#endif
