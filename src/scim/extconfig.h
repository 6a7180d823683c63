/* Operator-declared extension schemas (issue 3): a JSON configuration file describing extra
 * schemas (a licence type, a cost centre, product roles...) that are attached to the User or
 * Group resource type. Once loaded into the registry they behave like the enterprise extension:
 * validated on input, stored, returned, usable in filters, PATCH paths and sortBy, and published
 * in /Schemas and /ResourceTypes. The file format is described in docs/extensions.md.
 *
 * Loading happens once at start-up, after scim_registry_new and before the registry is shared
 * (the registry is read-only afterwards). */
#ifndef SCIM_SCIM_EXTCONFIG_H
#define SCIM_SCIM_EXTCONFIG_H

#include <jansson.h>

#include "common/err.h"
#include "scim/schema.h"

/* Largest configuration file read, in bytes. */
#define SCIM_EXTCONFIG_MAX_FILE (1024 * 1024)

/* Reads the configuration file at `path`, validates every schema in it and adds them all to
 * `reg` (scim_registry_add_schema). Nothing is added when the document is invalid (only an
 * out-of-memory failure while adding can leave the first schemas added).
 * On failure returns -1 with err->detail of the form
 *   "<path>: $.schemas[0].attributes[2].type: unknown type \"strng\" (expected one of ...)"
 * i.e. the file, the JSON path of the offending value, and what is wrong (for a JSON syntax
 * error: "<path>:<line>:<column>: <parser message>"); status 400 for a problem in the file or
 * an unreadable file, 500 for out of memory. */
int scim_extconfig_load_file(struct scim_registry *reg, const char *path, struct scim_err *err);

/* As scim_extconfig_load_file for an already parsed document (`config` is borrowed); `origin`
 * names the source at the start of error details (e.g. the file name). */
int scim_extconfig_load_json(struct scim_registry *reg, json_t *config, const char *origin,
                             struct scim_err *err);

#endif
