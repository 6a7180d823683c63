/* bench/gen: writes the benchmark directory as JSON Lines for `scimctl import`.
 *
 *   gen N [SPARE]
 *
 * Users 1..N+SPARE (SPARE defaults to min(N, 10000)): userName "user<i>@bench.example", a name,
 * a work email, externalId, active. Ids are deterministic UUID-shaped strings, so the load
 * scripts can name any user without reading a list:
 *   user i  -> %08x-0000-4000-8000-%012x (i, i)
 *   group j -> %08x-0000-4000-9000-%012x (j, j)
 * Groups: 1 "bench-empty" (no members), 2 "bench-10" (users 1..10, by userName),
 * 3 "bench-10k" (users 1..min(N,10000), by id), 4 "bench-all" (users 1..N, by id; only when
 * N > 10000). The SPARE users belong to no group: group-add/remove move them in and out.
 * Plain C, no dependencies: builds with `cc -O2 -o gen gen.c`. */
#include <stdio.h>
#include <stdlib.h>

static void user_id(char *out, size_t n, long i)
{
    snprintf(out, n, "%08lx-0000-4000-8000-%012lx", (unsigned long)i, (unsigned long)i);
}

static void group(long j, const char *name, long members, int by_name)
{
    char id[64];
    printf("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
           "\"id\":\"%08lx-0000-4000-9000-%012lx\",\"displayName\":\"%s\",\"members\":[",
           (unsigned long)j, (unsigned long)j, name);
    for (long i = 1; i <= members; i++) {
        if (by_name) {
            printf("%s{\"userName\":\"user%ld@bench.example\"}", i > 1 ? "," : "", i);
        } else {
            user_id(id, sizeof id, i);
            printf("%s{\"value\":\"%s\"}", i > 1 ? "," : "", id);
        }
    }
    printf("]}\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: gen N [SPARE]\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    long spare = argc > 2 ? strtol(argv[2], NULL, 10) : (n < 10000 ? n : 10000);
    if (n < 10 || n > 100000000 || spare < 1 || spare > 100000000) {
        fprintf(stderr, "gen: N must be 10-100000000 and SPARE 1-100000000\n");
        return 2;
    }
    static char buf[1 << 20];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    char id[64];
    for (long i = 1; i <= n + spare; i++) {
        user_id(id, sizeof id, i);
        printf("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"%s\","
               "\"userName\":\"user%ld@bench.example\",\"externalId\":\"ext-%ld\","
               "\"name\":{\"givenName\":\"Given%ld\",\"familyName\":\"Family%ld\"},"
               "\"displayName\":\"Given%ld Family%ld\",\"active\":true,"
               "\"emails\":[{\"value\":\"user%ld@bench.example\",\"type\":\"work\",\"primary\":true}]}\n",
               id, i, i, i, i, i, i, i);
    }
    group(1, "bench-empty", 0, 0);
    group(2, "bench-10", 10, 1);
    group(3, "bench-10k", n < 10000 ? n : 10000, 0);
    if (n > 10000)
        group(4, "bench-all", n, 0);
    return fflush(stdout) == 0 ? 0 : 1;
}
