/* Provisioning policies applied to SCIM updates of users (docs/policies.md). The policies that
 * need atomicity (unique e-mails, linking, revival, default groups, deactivation) are enforced
 * by the store inside its transactions; these two only compare the old and new attributes. */
#include "api/internal.h"

#include <string.h>

bool api_policy_user_active(const struct api_req *r)
{
    return r->have_tenant && (r->tenant.settings.username_changes != SCIM_USERNAME_ALLOW ||
                              r->tenant.settings.email_changes != SCIM_EMAIL_ALLOW);
}

/* Absent and empty e-mail lists are the same list. */
static bool emails_equal(json_t *a, json_t *b)
{
    if (json_array_size(a) == 0 && json_array_size(b) == 0)
        return true;
    return a && b && json_equal(a, b);
}

int api_policy_user_update(struct api_req *r, json_t *old_doc, json_t *new_doc,
                           struct scim_err *err)
{
    const struct scim_tenant_settings *s = &r->tenant.settings;
    if (!r->have_tenant)
        return 0;
    if (s->username_changes == SCIM_USERNAME_REJECT) {
        const char *a = json_string_value(json_object_get(old_doc, "userName"));
        const char *b = json_string_value(json_object_get(new_doc, "userName"));
        if (a && b && strcmp(a, b) != 0)
            return scim_err_set(err, 400, SCIM_TYPE_MUTABILITY,
                                "userName cannot be changed in this tenant (username_changes is reject)");
    }
    if (s->email_changes != SCIM_EMAIL_ALLOW) {
        json_t *a = json_object_get(old_doc, "emails");
        json_t *b = json_object_get(new_doc, "emails");
        if (emails_equal(a, b))
            return 0;
        if (s->email_changes == SCIM_EMAIL_REJECT)
            return scim_err_set(err, 400, SCIM_TYPE_MUTABILITY,
                                "emails cannot be changed in this tenant (email_changes is reject)");
        /* ignore: the e-mails stay as first provisioned */
        if (a ? json_object_set(new_doc, "emails", a) < 0 : json_object_del(new_doc, "emails") < 0)
            return a ? scim_err_nomem(err) : 0;
    }
    return 0;
}
