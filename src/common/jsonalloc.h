/* jansson's allocator, routed through malloc with out-of-memory tracking.
 *
 * jansson does not always report a failed allocation: json_loadb may answer a syntax error,
 * or even succeed with a value missing, and callers often ignore json_object_set_new's result.
 * With scim_json_alloc_init() installed, every failed jansson allocation sets a per-thread
 * flag, so that the request being served can be failed with a 500 before anything built from
 * incomplete JSON is parsed further or written. */
#ifndef SCIM_COMMON_JSONALLOC_H
#define SCIM_COMMON_JSONALLOC_H

#include <stdbool.h>

/* Installs the tracking allocator (json_set_alloc_funcs). Call once at start-up, before any
 * JSON value exists. Without it the flag below is simply never set. */
void scim_json_alloc_init(void);
/* Clears this thread's flag (at the start of a request). */
void scim_json_oom_clear(void);
/* True when a jansson allocation failed on this thread since the last clear. */
bool scim_json_oom(void);

#endif
