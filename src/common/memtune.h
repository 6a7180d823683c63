/* Process-wide allocator settings for the server. */
#ifndef SCIM_COMMON_MEMTUNE_H
#define SCIM_COMMON_MEMTUNE_H

/* Caps glibc malloc's arenas at the number of CPUs (at least 2) unless MALLOC_ARENA_MAX is set
 * in the environment. Each worker thread otherwise gets an arena of its own that keeps the
 * memory of the largest response it built (a ListResponse page of 1,000 users: several MiB);
 * with 8 threads the export of 1M users reached 67-81 MiB of RSS, 41 MiB with 2 arenas
 * (BENCHMARKS.md "Read path"). Call once, before any thread starts. No-op without glibc. */
void scim_malloc_tune(void);

#endif
