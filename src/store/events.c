/* Event computation of the change feed: pure functions over JSON, so that every backend emits
 * exactly the same events for the same write. */
#include "store/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static const char *const known_types[] = {
    "user.created",  "user.updated",  "user.deactivated",   "user.reactivated",
    "user.deleted",  "group.created", "group.updated",      "group.deleted",
    "group.member_added", "group.member_removed",
};

bool scim_event_type_known(const char *type)
{
    for (size_t i = 0; i < sizeof known_types / sizeof known_types[0]; i++)
        if (strcmp(known_types[i], type) == 0)
            return true;
    return false;
}

bool scim_event_type_match(const json_t *types, const char *type)
{
    size_t i;
    const json_t *t;
    json_array_foreach(types, i, t) {
        const char *s = json_string_value(t);
        if (s && (strcmp(s, "*") == 0 || strcmp(s, type) == 0))
            return true;
    }
    return false;
}

/* Keys of a resource that are not attributes of the change feed's "changed" list: identity,
 * metadata, and memberships (those have their own events). */
static bool not_an_attribute(const char *key)
{
    static const char *const skip[] = {"schemas", "id", "meta", "members", "groups", "_state"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strcmp(key, skip[i]) == 0)
            return true;
    return false;
}

/* SCIM: a user without "active" is active. */
static bool is_active(json_t *doc)
{
    json_t *a = json_object_get(doc, "active");
    return !json_is_false(a);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* The sorted names of the top-level attributes that differ between the two docs. */
static json_t *changed_names(json_t *old_doc, json_t *new_doc, bool skip_active)
{
    json_t *names = json_array();
    const char *key;
    json_t *v;
    if (!names)
        return NULL;
    json_object_foreach(old_doc, key, v) {
        if (not_an_attribute(key) || (skip_active && strcmp(key, "active") == 0))
            continue;
        if (!json_equal(v, json_object_get(new_doc, key)) &&
            json_array_append_new(names, json_string(key)) < 0)
            goto fail;
    }
    json_object_foreach(new_doc, key, v) {
        if (not_an_attribute(key) || (skip_active && strcmp(key, "active") == 0))
            continue;
        if (!json_object_get(old_doc, key) && json_array_append_new(names, json_string(key)) < 0)
            goto fail;
    }
    size_t n = json_array_size(names);
    if (n > 1) {
        json_t **tmp = malloc(n * sizeof *tmp);
        if (!tmp)
            goto fail;
        for (size_t i = 0; i < n; i++)
            tmp[i] = json_incref(json_array_get(names, i));
        qsort(tmp, n, sizeof *tmp, cmp_str);
        json_array_clear(names);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(names, tmp[i]);
        free(tmp);
        if (json_array_size(names) != n)
            goto fail;
    }
    return names;
fail:
    json_decref(names);
    return NULL;
}

/* The common part of a resource event: type, resourceType, resourceId, names, active. */
static json_t *base_event(const char *type, enum scim_rtype kind, const char *id, json_t *doc)
{
    json_t *ev = json_pack("{s:s, s:s, s:s}", "type", type, "resourceType",
                           kind == SCIM_RT_USER ? "User" : "Group", "resourceId", id);
    if (!ev)
        return NULL;
    json_t *un = json_object_get(doc, "userName"), *dn = json_object_get(doc, "displayName");
    if ((kind == SCIM_RT_USER && json_is_string(un) &&
         json_object_set(ev, "userName", un) < 0) ||
        (json_is_string(dn) && json_object_set(ev, "displayName", dn) < 0) ||
        (kind == SCIM_RT_USER && doc &&
         json_object_set_new(ev, "active", json_boolean(is_active(doc))) < 0)) {
        json_decref(ev);
        return NULL;
    }
    return ev;
}

static int append(json_t *events, json_t *ev, struct scim_err *err)
{
    if (!ev || json_array_append_new(events, ev) < 0)
        return scim_err_nomem(err);
    return 0;
}

int scim_events_resource(json_t *events, enum scim_rtype kind, const char *id, json_t *old_doc,
                         json_t *new_doc, unsigned flags, struct scim_err *err)
{
    bool user = kind == SCIM_RT_USER;
    const char *pfx = user ? "user" : "group";
    char type[32];
    json_t *ev;
    if (!json_is_array(events) || !id)
        return scim_err_internal(err, "events: bad arguments");
    if (!old_doc && !new_doc)
        return 0;
    if (!old_doc || !new_doc) {
        bool created = old_doc == NULL;
        snprintf(type, sizeof type, "%s.%s", pfx, created ? "created" : "deleted");
        ev = base_event(type, kind, id, created ? new_doc : old_doc);
        if (ev && created && (flags & SCIM_EV_REVIVED) && json_object_set_new(ev, "revived", json_true()) < 0)
            json_decref(ev), ev = NULL;
        if (ev && !created && (flags & SCIM_EV_DEPROVISIONED) &&
            (json_object_set_new(ev, "deprovisioned", json_true()) < 0 ||
             json_object_set_new(ev, "active", json_false()) < 0))
            json_decref(ev), ev = NULL;
        return append(events, ev, err);
    }
    json_t *changed = changed_names(old_doc, new_doc, user);
    if (!changed)
        return scim_err_nomem(err);
    if ((flags & SCIM_EV_PASSWORD) && json_array_append_new(changed, json_string("password")) < 0) {
        json_decref(changed);
        return scim_err_nomem(err);
    }
    if (json_array_size(changed) > 0 || (flags & SCIM_EV_LINKED)) {
        snprintf(type, sizeof type, "%s.updated", pfx);
        ev = base_event(type, kind, id, new_doc);
        if (ev && (json_object_set(ev, "changed", changed) < 0 ||
                   ((flags & SCIM_EV_LINKED) && json_object_set_new(ev, "linked", json_true()) < 0)))
            json_decref(ev), ev = NULL;
        if (append(events, ev, err) < 0) {
            json_decref(changed);
            return -1;
        }
    }
    json_decref(changed);
    if (user && is_active(old_doc) != is_active(new_doc)) {
        ev = base_event(is_active(new_doc) ? "user.reactivated" : "user.deactivated", kind, id, new_doc);
        return append(events, ev, err);
    }
    return 0;
}

int scim_events_member(json_t *events, const char *group_id, const char *group_name,
                       const char *member_id, int member_kind, bool added, struct scim_err *err)
{
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type",
                           added ? "group.member_added" : "group.member_removed", "resourceType",
                           "Group", "resourceId", group_id, "groupId", group_id, "memberId",
                           member_id);
    if (ev && group_name && json_object_set_new(ev, "displayName", json_string(group_name)) < 0)
        json_decref(ev), ev = NULL;
    if (ev && member_kind >= 0 &&
        json_object_set_new(ev, "memberType",
                            json_string(member_kind == SCIM_RT_USER ? "User" : "Group")) < 0)
        json_decref(ev), ev = NULL;
    return append(events, ev, err);
}

int scim_event_finish(json_t *ev, int64_t tenant_id, int64_t seq, int64_t time_us)
{
    char id[48], ts[SCIM_DATETIME_LEN];
    snprintf(id, sizeof id, "%lld-%lld", (long long)tenant_id, (long long)seq);
    scim_datetime_format(time_us, ts);
    if (json_object_set_new(ev, "id", json_string(id)) < 0 ||
        json_object_set_new(ev, "seq", json_integer((json_int_t)seq)) < 0 ||
        json_object_set_new(ev, "time", json_string(ts)) < 0)
        return -1;
    return 0;
}
