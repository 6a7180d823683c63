/* Resource input normalisation, validation and output projection (RFC 7643 §2, §3, §7;
 * RFC 7644 §3.4.2.5 attributes/excludedAttributes).
 *
 * In-memory form of a resource: a jansson object in SCIM JSON form with canonical attribute
 * names (as spelled in the schema), e.g.
 *   {"schemas":[...],"id":"...","userName":"bjensen","name":{"givenName":"Barbara"},
 *    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7"},
 *    "meta":{"resourceType":"User","created":"...","lastModified":"...","version":"W/\"3\""}}
 * The store keeps a resource's "doc": the same object without schemas, id, meta, members (groups),
 * groups (users) and password. */
#ifndef SCIM_SCIM_RESOURCE_H
#define SCIM_SCIM_RESOURCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "scim/schema.h"

enum scim_norm_mode { SCIM_NORM_CREATE, SCIM_NORM_REPLACE };

/* A normalised client-supplied resource (POST or PUT body). */
struct scim_input {
    json_t *doc;     /* canonical attributes, without id/meta/schemas/members/groups/password */
    json_t *members; /* groups only: array of {"value","display"?,"type"?} or NULL when absent
                      (an explicit "members": [] gives an empty array) */
    char *password;  /* plain text if the body had one (caller hashes, wipes and frees), or NULL */
};

/* Normalises a POST/PUT body for resource type `rt`:
 *  - attribute names matched case-insensitively and rewritten in canonical spelling, also
 *    inside complex values and extension objects (extension keys are URNs, any case);
 *  - values coerced to the attribute type where the intent is unambiguous ("True"/"False"
 *    strings for booleans → compat string_boolean; a single object for a multi-valued attribute
 *    is wrapped in an array); otherwise 400 invalidValue naming the attribute;
 *  - readOnly attributes (id, meta, groups, ...), unknown attributes, unknown schema URNs and
 *    null values are dropped (compat readonly_input_ignored / unknown_schema_urn);
 *  - required attributes checked (userName for User, displayName for Group): 400 invalidValue;
 *  - canonicalValues are not enforced (RFC 7643 allows other values), types are;
 *  - at most one "primary": true per multi-valued attribute (400 invalidValue otherwise);
 *  - groups: members normalised to [{"value","display"?,"type"?}], bare strings wrapped
 *    (compat member_bare_string), "displayName" kept as "display" (compat member_displayname);
 *  - enterprise manager given as a string or a one-element array becomes {"value":...}
 *    (compat manager_string).
 * Compatibility bits used are OR-ed into *compat. On success fills *out (release with
 * scim_input_release). */
int scim_resource_normalize(const struct scim_registry *reg, const struct scim_resource_type *rt,
                            json_t *body, enum scim_norm_mode mode, struct scim_input *out,
                            uint32_t *compat, struct scim_err *err);
void scim_input_release(struct scim_input *in);

/* Normalises one value for attribute `attr` (as above: canonical names, coercion, null/unknown
 * dropping). When `attr` is multi-valued, `as_element` selects whether `value` is one element
 * (true) or the whole attribute value (false, an array or a single element to wrap). Returns a
 * new reference in *out, or NULL in *out when the value normalises to nothing (null). */
int scim_value_normalize(const struct scim_registry *reg, const struct scim_attr *attr,
                         json_t *value, bool as_element, json_t **out, uint32_t *compat,
                         struct scim_err *err);

/* Checks a complete doc after PATCH: required attributes present, single primary.
 * 400 invalidValue on failure. */
int scim_resource_validate(const struct scim_resource_type *rt, json_t *doc, struct scim_err *err);

/* For PUT and PATCH: 400 mutability if an immutable attribute of `old_doc` that had a value is
 * given a different value in `new_doc`. */
int scim_resource_check_immutable(const struct scim_resource_type *rt, json_t *old_doc,
                                  json_t *new_doc, struct scim_err *err);

/* --- Output ---------------------------------------------------------------------------- */

/* A parsed "attributes" or "excludedAttributes" parameter: attribute references resolved against
 * the resource type. */
struct scim_attrlist;

/* Parses a comma-separated list ("userName,name.givenName,urn:...:User:employeeNumber").
 * Unknown attribute names are kept (they simply select nothing). A malformed entry such as
 * `emails[type eq "work"]` is skipped with compat invalid_attributes_param, never an error.
 * *out is NULL for an empty or absent parameter. */
int scim_attrlist_parse(const struct scim_registry *reg, const struct scim_resource_type *rt,
                        const char *param, struct scim_attrlist **out, uint32_t *compat,
                        struct scim_err *err);
void scim_attrlist_free(struct scim_attrlist *l);

/* true if `attr` (a top-level attribute name of the core schema, e.g. "members" or "groups")
 * would be returned under these parameters; lets callers skip loading it. */
bool scim_projection_includes(const struct scim_resource_type *rt, const struct scim_attrlist *attributes,
                              const struct scim_attrlist *excluded, const char *attr);

/* Applies the RFC 7643 "returned" rules and the attributes/excludedAttributes parameters to a
 * full resource, returning a new object: "always" attributes (id, schemas, userName...) are kept,
 * "never" ones (password) dropped, "request" ones only when named in `attributes`. */
json_t *scim_project(const struct scim_resource_type *rt, json_t *resource,
                     const struct scim_attrlist *attributes, const struct scim_attrlist *excluded);

/* Finishes a resource for output: "schemas" lists the core schema and each extension present;
 * meta.location = base_url + endpoint + "/" + id; each element of members/groups/manager gets
 * "$ref" = base_url + "/Users/<value>" or "/Groups/<value>". `base_url` is the absolute SCIM
 * base ("https://host/scim/v2"). Modifies `resource` in place; -1 only on out of memory. */
int scim_resource_finish(const struct scim_resource_type *rt, json_t *resource, const char *base_url);

struct scim_buf;
/* The read path's renderer: appends to `out` the JSON text that
 *     scim_json_dumps_compact(scim_project(rt, R, attributes, excluded))
 * gives, where R is `resource` after scim_resource_finish(rt, resource, base_url) -- byte for
 * byte, for any resource whose member names differ other than by case (stored resources are
 * normalised so) -- without building R or the projected copy and without changing `resource`.
 * Two trees, a rebuild and a third walk to serialise cost about a third of a lookup
 * (BENCHMARKS.md); scim_project and scim_resource_finish remain the reference the unit tests
 * compare it with. -1 on out of memory (out then holds what it held before). */
int scim_render(struct scim_buf *out, const struct scim_resource_type *rt, json_t *resource,
                const struct scim_attrlist *attributes, const struct scim_attrlist *excluded,
                const char *base_url);

/* Appends meta.location of the resource `id`: base_url (trailing '/' removed) + endpoint + "/"
 * + id, as scim_resource_finish sets it. -1 on out of memory. */
int scim_resource_location(const struct scim_resource_type *rt, const char *base_url, const char *id,
                           struct scim_buf *out);

#endif
