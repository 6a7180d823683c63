/* The PATCH engine (RFC 7644 §3.5.2): applies a PatchOp body to a resource in memory.
 *
 * Group membership is never rewritten as a whole list: operations on "members" are turned into
 * a scim_member_change (ids to add, ids to remove, or clear), which the store applies as O(1)
 * row operations per member. Only when an operation filters members on something other than
 * `value eq "<id>"` does the caller need to load the current members first
 * (scim_patch_needs_members); they are then passed in `resource["members"]`.
 *
 * All operations apply to one copy; on any error nothing of the request is kept (the caller
 * discards the resource and the member change). */
#ifndef SCIM_SCIM_PATCH_H
#define SCIM_SCIM_PATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "scim/filter.h"
#include "scim/schema.h"

struct scim_patch_opts {
    const struct scim_registry *reg;
    const struct scim_resource_type *rt;
    struct scim_filter_limits limits; /* for paths and value filters */
    size_t max_operations;            /* 0 = unlimited; more → 400 tooMany */
};

struct scim_member_change {
    bool clear;      /* remove every current member first */
    json_t *add;     /* array of {"value","display"?,"type"?}; NULL when none */
    json_t *remove;  /* array of id strings; NULL when none */
};

struct scim_patch_result {
    uint32_t compat;  /* compatibility behaviours used */
    bool modified;    /* anything changed (attributes or members) */
    json_t *changed;  /* array of top-level attribute names changed (for events), owned */
    char *password;   /* plain text from an add/replace of "password" (Okta password sync), or
                         NULL; never written into the resource. The caller hashes it;
                         scim_patch_result_release wipes and frees it. */
};

/* true if some operation in `body` needs the group's current members loaded (a members filter
 * other than value eq "id", or a path into members' sub-attributes). */
bool scim_patch_needs_members(json_t *body);

/* Validates the PatchOp envelope and applies its operations, in order, to `resource` (a full
 * resource as returned by the store: doc attributes plus id/schemas/meta; members present only
 * if loaded). Attribute changes are made in place on `resource`; membership changes go to *mc
 * (for groups; pass NULL for users). Implements:
 *  - add/replace/remove, op names case-insensitive (compat op_case);
 *  - paths: attr, attr.sub, urn:attr[.sub], attr[filter], attr[filter].sub;
 *  - no-path add/replace with an object whose keys may be attribute names, dotted paths or
 *    URN-qualified paths (compat nopath_dotted_keys); a key "id" equal to the resource's id is
 *    ignored (compat patch_id_in_value);
 *  - add on multi-valued attributes merges (appends new values, a value equal to an existing
 *    one is not duplicated); add on a single-valued attribute replaces (compat add_replaces_single
 *    when it had a value);
 *  - a value with "primary": true clears primary on the other values;
 *  - add/replace on attr[filter].sub with no matching element creates {filter's eq pairs, sub}
 *    (compat create_on_filter_path); replace on attr[filter] with no match: 400 noTarget;
 *  - remove requires a path (400 noTarget); removing a required attribute: 400 mutability (RFC);
 *  - readOnly targets (id, meta, groups): 400 mutability; immutable ones with a value:
 *    400 mutability; values type-checked (400 invalidValue), string booleans coerced;
 *  - "Operations": [] is a no-op (compat empty_operations); extra keys in ops are ignored;
 *  - member removal: members[value eq "x"], members with a value array (remove only those:
 *    compat member_value_remove), members with no value (clear).
 * Afterwards the result is validated (scim_resource_validate). Fills *res (release with
 * scim_patch_result_release). */
int scim_patch_apply(const struct scim_patch_opts *opts, json_t *resource, json_t *body,
                     struct scim_member_change *mc, struct scim_patch_result *res,
                     struct scim_err *err);

void scim_member_change_release(struct scim_member_change *mc);
void scim_patch_result_release(struct scim_patch_result *res);

#endif
