/* Allocator settings (memtune.h). */
#include "common/memtune.h"

#include <stdlib.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void scim_malloc_tune(void)
{
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
    if (getenv("MALLOC_ARENA_MAX"))
        return; /* the operator's choice */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 2)
        n = 2;
    if (n > 64)
        n = 64;
    mallopt(M_ARENA_MAX, (int)n);
#endif
}
