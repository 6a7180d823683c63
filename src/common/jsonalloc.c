#include "common/jsonalloc.h"

#include <jansson.h>
#include <stdlib.h>

static _Thread_local bool json_oom;

static void *tracking_malloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        json_oom = true;
    return p;
}

static void tracking_free(void *p)
{
    free(p);
}

void scim_json_alloc_init(void)
{
    json_set_alloc_funcs(tracking_malloc, tracking_free);
}

void scim_json_oom_clear(void)
{
    json_oom = false;
}

bool scim_json_oom(void)
{
    return json_oom;
}
