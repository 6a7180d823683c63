/* The change feed's event computation (docs/operations.md, "Change feed and webhooks"), shared
 * by every backend: a backend describes a committed write (kind, old doc, new doc, membership
 * deltas) and gets back the list of events to insert, in its own transaction, with the next
 * sequence numbers of the tenant. No SQL here.
 *
 * An event is a JSON object:
 *   {"id": "<tenant id>-<seq>", "seq": N, "type": "user.updated", "time": "<RFC 3339>",
 *    "resourceType": "User" | "Group", "resourceId": "<id>",
 *    "userName"?, "displayName"?, "active"? (users),
 *    "changed"?: [attribute names] (*.updated), "linked"?: true, "revived"?: true,
 *    "deprovisioned"?: true (user.deleted by delete_mode=deactivate),
 *    "groupId", "memberId", "memberType" (group.member_added / group.member_removed)}
 * The compute functions produce it without id, seq and time (scim_event_finish adds them). */
#ifndef SCIM_STORE_EVENTS_H
#define SCIM_STORE_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "scim/schema.h"

/* Flags of scim_events_resource. */
#define SCIM_EV_LINKED 0x1u        /* a SCIM create took over a local resource: *.updated, linked */
#define SCIM_EV_REVIVED 0x2u       /* a SCIM create revived a deprovisioned user: user.created, revived */
#define SCIM_EV_DEPROVISIONED 0x4u /* delete_mode=deactivate: user.deleted, deprovisioned */
#define SCIM_EV_PASSWORD 0x8u      /* the password changed (it is not in the doc) */

/* Appends to `events` (a JSON array) the events of one write of resource `id`:
 * - old_doc NULL, new_doc set: <kind>.created (user.created with "revived" for SCIM_EV_REVIVED);
 * - old_doc set, new_doc NULL: <kind>.deleted ("deprovisioned" with SCIM_EV_DEPROVISIONED);
 * - both: <kind>.updated listing the changed top-level attribute names (sorted; "password"
 *   with SCIM_EV_PASSWORD; "active" is not listed for users: its transitions are their own
 *   events user.deactivated (true -> false) and user.reactivated (false -> true), emitted after
 *   user.updated; an absent "active" counts as true). Nothing when nothing changed (unless
 *   SCIM_EV_LINKED, which always yields an update event).
 * The docs are resources or stored docs: "schemas", "id", "meta", "members", "groups" and
 * "_state" are not attributes for this purpose. 0, or -1 (500) on out of memory. */
int scim_events_resource(json_t *events, enum scim_rtype kind, const char *id, json_t *old_doc,
                         json_t *new_doc, unsigned flags, struct scim_err *err);

/* Appends group.member_added (added) or group.member_removed for one membership that really
 * changed. `group_name` (the group's displayName) may be NULL; `member_kind` is SCIM_RT_USER,
 * SCIM_RT_GROUP or -1 when unknown (no "memberType"). 0 or -1 (500). */
int scim_events_member(json_t *events, const char *group_id, const char *group_name,
                       const char *member_id, int member_kind, bool added, struct scim_err *err);

/* Completes an event with its tenant-scoped identity: "seq", "id" ("<tenant>-<seq>") and
 * "time" (RFC 3339 of time_us). 0 or -1 on out of memory. */
int scim_event_finish(json_t *ev, int64_t tenant_id, int64_t seq, int64_t time_us);

/* true if an event of `type` is selected by `types`, a JSON array of type names where "*"
 * selects all (NULL or an empty array selects none). */
bool scim_event_type_match(const json_t *types, const char *type);

/* true if `type` is one of the event types above (for validating webhook subscriptions). */
bool scim_event_type_known(const char *type);

#endif
