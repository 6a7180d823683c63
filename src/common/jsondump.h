/* A faster json_dumps for responses. */
#ifndef SCIM_COMMON_JSONDUMP_H
#define SCIM_COMMON_JSONDUMP_H

#include <jansson.h>

/* The text json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) returns, byte for byte (malloc'ed, or
 * NULL where json_dumps gives NULL or on out of memory), in about a third of the instructions:
 * jansson's dump formats every container's address with snprintf into a hash table to detect
 * cycles, ~90,000 instructions for a one-user ListResponse (BENCHMARKS.md "Read path"). Trees
 * holding a real number, a string that is not valid UTF-8, or nesting deeper than 512 levels are
 * handed to json_dumps itself. */
char *scim_json_dumps_compact(const json_t *v);

struct scim_buf;
/* Appends the compact text of `v` (as scim_json_dumps_compact writes it) to `b`; 0, or -1 on out
 * of memory (b then holds what it held before). For writers that stream a document piece by
 * piece (scim_render). */
int scim_json_dump_append(struct scim_buf *b, const json_t *v);
/* Appends the JSON string literal of the n bytes at s, escaped as jansson escapes them; 0 or -1
 * (out of memory). */
int scim_json_dump_string(struct scim_buf *b, const char *s, size_t n);

#endif
