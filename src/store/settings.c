/* Tenant settings (provisioning policies): defaults, validation, (de)serialisation, and the
 * tenant struct helpers. Backend-independent: backends store the JSON text only. */
#include <string.h>

#include "store/store.h"

int scim_tenant_settings_init(struct scim_tenant_settings *s, struct scim_err *err)
{
    memset(s, 0, sizeof *s);
    s->scim_enabled = true;
    s->username_changes = SCIM_USERNAME_ALLOW;
    s->email_changes = SCIM_EMAIL_ALLOW;
    s->delete_mode = SCIM_DELETE_HARD;
    s->default_groups = json_array();
    return s->default_groups ? 0 : scim_err_nomem(err);
}

void scim_tenant_settings_release(struct scim_tenant_settings *s)
{
    json_decref(s->default_groups);
    s->default_groups = NULL;
}

static const char *const bool_keys[] = {"scim_enabled", "allow_manual_updates", "link_existing_users",
                                        "link_existing_groups", "unique_emails"};

static bool *bool_slot(struct scim_tenant_settings *s, size_t i)
{
    bool *slots[] = {&s->scim_enabled, &s->allow_manual_updates, &s->link_existing_users,
                     &s->link_existing_groups, &s->unique_emails};
    return slots[i];
}

/* The index of `v` in `names`, or -1. */
static int enum_index(json_t *v, const char *const *names, int n)
{
    const char *t = json_string_value(v);
    for (int i = 0; t && i < n; i++)
        if (strcmp(t, names[i]) == 0)
            return i;
    return -1;
}

static const char *const username_names[] = {"allow", "reject"};
static const char *const email_names[] = {"allow", "ignore", "reject"};
static const char *const delete_names[] = {"delete", "deactivate"};

int scim_tenant_settings_apply(struct scim_tenant_settings *s, json_t *patch, struct scim_err *err)
{
    struct scim_tenant_settings n = *s;
    const char *key;
    json_t *v;

    if (!json_is_object(patch))
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE, "settings must be a JSON object");
    /* validate everything on a copy first so that a bad key changes nothing */
    json_object_foreach(patch, key, v) {
        size_t i;
        for (i = 0; i < sizeof bool_keys / sizeof bool_keys[0]; i++)
            if (strcmp(key, bool_keys[i]) == 0)
                break;
        if (i < sizeof bool_keys / sizeof bool_keys[0]) {
            if (!json_is_boolean(v))
                return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                    "setting %s must be true or false", key);
            *bool_slot(&n, i) = json_is_true(v);
        } else if (strcmp(key, "username_changes") == 0) {
            int k = enum_index(v, username_names, 2);
            if (k < 0)
                return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                    "setting username_changes must be \"allow\" or \"reject\"");
            n.username_changes = (enum scim_username_changes)k;
        } else if (strcmp(key, "email_changes") == 0) {
            int k = enum_index(v, email_names, 3);
            if (k < 0)
                return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                    "setting email_changes must be \"allow\", \"ignore\" or \"reject\"");
            n.email_changes = (enum scim_email_changes)k;
        } else if (strcmp(key, "delete_mode") == 0) {
            int k = enum_index(v, delete_names, 2);
            if (k < 0)
                return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                    "setting delete_mode must be \"delete\" or \"deactivate\"");
            n.delete_mode = (enum scim_delete_mode)k;
        } else if (strcmp(key, "default_groups") == 0) {
            size_t i2;
            json_t *g;
            if (!json_is_array(v))
                return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                    "setting default_groups must be an array of group ids");
            json_array_foreach(v, i2, g) {
                if (!json_is_string(g) || !*json_string_value(g))
                    return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                        "setting default_groups must be an array of group ids");
            }
            n.default_groups = v; /* borrowed until copied below */
        } else {
            return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE, "unknown setting %s", key);
        }
    }
    if (n.default_groups != s->default_groups) {
        json_t *copy = json_deep_copy(n.default_groups);
        if (!copy)
            return scim_err_nomem(err);
        json_decref(s->default_groups);
        n.default_groups = copy;
    }
    *s = n;
    return 0;
}

int scim_tenant_settings_parse(const char *text, struct scim_tenant_settings *s,
                               struct scim_err *err)
{
    json_error_t je;
    json_t *v;
    int rc;

    if (scim_tenant_settings_init(s, err) < 0)
        return -1;
    if (!text || !*text)
        return 0;
    if (!(v = json_loads(text, 0, &je))) {
        scim_tenant_settings_release(s);
        return scim_err_internal(err, "stored tenant settings are not JSON: %s", je.text);
    }
    rc = scim_tenant_settings_apply(s, v, err);
    json_decref(v);
    if (rc < 0) {
        scim_tenant_settings_release(s);
        err->status = 500;
    }
    return rc;
}

json_t *scim_tenant_settings_json(const struct scim_tenant_settings *s)
{
    return json_pack("{s:b, s:b, s:O, s:s, s:b, s:b, s:s, s:b, s:s}", "scim_enabled",
                     s->scim_enabled, "allow_manual_updates", s->allow_manual_updates,
                     "default_groups", s->default_groups, "username_changes",
                     username_names[s->username_changes], "link_existing_users",
                     s->link_existing_users, "link_existing_groups", s->link_existing_groups,
                     "email_changes", email_names[s->email_changes], "unique_emails",
                     s->unique_emails, "delete_mode", delete_names[s->delete_mode]);
}

void scim_tenant_release(struct scim_tenant *t)
{
    scim_tenant_settings_release(&t->settings);
}

bool scim_tenant_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');
        if (!ok)
            return false;
    }
    return true;
}
