/* Schema registry: the RFC 7643 core and enterprise schemas as static tables, plus the resource
 * types that use them. Characteristics follow the RFC 7643 §8.7.1 representation; the
 * descriptions are our own wording (except "User Account", which clients check for). */
#include "scim/schema.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Shorthands for the tables below: every characteristic not named is the RFC default
 * (single-valued, optional, caseExact false, readWrite, returned default, uniqueness none). */
#define STR(n, d) {.name = n, .type = SCIM_T_STRING, .description = d}
#define STRC(n, d, cv) {.name = n, .type = SCIM_T_STRING, .description = d, .canonical_values = cv}
#define BOOL(n, d) {.name = n, .type = SCIM_T_BOOLEAN, .description = d}
#define REF(n, d, rt) {.name = n, .type = SCIM_T_REFERENCE, .description = d, .reference_types = rt}
#define MULTI(n, d, subs)                                                                        \
    {.name = n, .type = SCIM_T_COMPLEX, .multi_valued = true, .description = d,                  \
     .sub_attrs = subs, .n_sub_attrs = N(subs)}

static const char *const ref_external[] = {"external", NULL};
static const char *const ref_user[] = {"User", NULL};
static const char *const ref_user_group[] = {"User", "Group", NULL};

static const char *const cv_email[] = {"work", "home", "other", NULL};
static const char *const cv_phone[] = {"work", "home", "mobile", "fax", "pager", "other", NULL};
static const char *const cv_im[] = {"aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo", NULL};
static const char *const cv_photo[] = {"photo", "thumbnail", NULL};
static const char *const cv_address[] = {"work", "home", "other", NULL};
static const char *const cv_group_membership[] = {"direct", "indirect", NULL};
static const char *const cv_member_type[] = {"User", "Group", NULL};

/* --- common attributes (RFC 7643 §3.1) ---------------------------------------------------- */

static const struct scim_attr meta_subs[] = {
    {.name = "resourceType", .type = SCIM_T_STRING, .case_exact = true,
     .mutability = SCIM_MUT_READONLY, .description = "Name of the resource's type."},
    {.name = "created", .type = SCIM_T_DATETIME, .mutability = SCIM_MUT_READONLY,
     .description = "When the resource was added."},
    {.name = "lastModified", .type = SCIM_T_DATETIME, .mutability = SCIM_MUT_READONLY,
     .description = "When the resource last changed."},
    {.name = "location", .type = SCIM_T_REFERENCE, .case_exact = true,
     .mutability = SCIM_MUT_READONLY, .reference_types = ref_external,
     .description = "Absolute URI of the resource."},
    {.name = "version", .type = SCIM_T_STRING, .case_exact = true,
     .mutability = SCIM_MUT_READONLY, .description = "Entity tag of the current state."},
};

static const struct scim_attr common_attrs[] = {
    {.name = "id", .type = SCIM_T_STRING, .case_exact = true, .mutability = SCIM_MUT_READONLY,
     .returned = SCIM_RET_ALWAYS, .uniqueness = SCIM_UNIQ_SERVER,
     .description = "Server-assigned stable identifier."},
    {.name = "externalId", .type = SCIM_T_STRING, .case_exact = true,
     .description = "Identifier assigned by the provisioning client."},
    {.name = "meta", .type = SCIM_T_COMPLEX, .mutability = SCIM_MUT_READONLY,
     .description = "Resource metadata.", .sub_attrs = meta_subs, .n_sub_attrs = N(meta_subs)},
};

/* --- User (RFC 7643 §4.1) --------------------------------------------------------------- */

static const struct scim_attr name_subs[] = {
    STR("formatted", "Full name, formatted for display."),
    STR("familyName", "Last name."),
    STR("givenName", "First name."),
    STR("middleName", "Middle name(s)."),
    STR("honorificPrefix", "Title before the name, e.g. Dr."),
    STR("honorificSuffix", "Suffix after the name, e.g. Jr."),
};

static const struct scim_attr email_subs[] = {
    STR("value", "The e-mail address."),
    STR("display", "Label for display."),
    STRC("type", "Kind of address.", cv_email),
    BOOL("primary", "Whether this is the preferred address."),
};

static const struct scim_attr phone_subs[] = {
    STR("value", "The phone number."),
    STR("display", "Label for display."),
    STRC("type", "Kind of number.", cv_phone),
    BOOL("primary", "Whether this is the preferred number."),
};

static const struct scim_attr im_subs[] = {
    STR("value", "The messaging address."),
    STR("display", "Label for display."),
    STRC("type", "Messaging service.", cv_im),
    BOOL("primary", "Whether this is the preferred address."),
};

static const struct scim_attr photo_subs[] = {
    REF("value", "URL of the image.", ref_external),
    STR("display", "Label for display."),
    STRC("type", "Kind of image.", cv_photo),
    BOOL("primary", "Whether this is the preferred image."),
};

static const struct scim_attr address_subs[] = {
    STR("formatted", "Full postal address, formatted for display."),
    STR("streetAddress", "Street, house number and similar."),
    STR("locality", "City or locality."),
    STR("region", "State or region."),
    STR("postalCode", "Postal code."),
    STR("country", "Country (ISO 3166-1 alpha-2)."),
    STRC("type", "Kind of address.", cv_address),
    BOOL("primary", "Whether this is the preferred address."),
};

static const struct scim_attr user_group_subs[] = {
    {.name = "value", .type = SCIM_T_STRING, .mutability = SCIM_MUT_READONLY,
     .description = "id of the group."},
    {.name = "$ref", .type = SCIM_T_REFERENCE, .mutability = SCIM_MUT_READONLY,
     .reference_types = ref_user_group, .description = "URI of the group."},
    {.name = "display", .type = SCIM_T_STRING, .mutability = SCIM_MUT_READONLY,
     .description = "Name of the group."},
    {.name = "type", .type = SCIM_T_STRING, .mutability = SCIM_MUT_READONLY,
     .canonical_values = cv_group_membership, .description = "Direct or inherited membership."},
};

static const struct scim_attr generic_subs[] = {
    STR("value", "The value."),
    STR("display", "Label for display."),
    STR("type", "Kind of value."),
    BOOL("primary", "Whether this is the preferred value."),
};

static const struct scim_attr cert_subs[] = {
    {.name = "value", .type = SCIM_T_BINARY, .description = "DER certificate, base64."},
    STR("display", "Label for display."),
    STR("type", "Kind of certificate."),
    BOOL("primary", "Whether this is the preferred certificate."),
};

static const struct scim_attr user_attrs[] = {
    {.name = "userName", .type = SCIM_T_STRING, .required = true,
     .uniqueness = SCIM_UNIQ_SERVER, .description = "Unique login name of the user."},
    {.name = "name", .type = SCIM_T_COMPLEX, .description = "Parts of the user's name.",
     .sub_attrs = name_subs, .n_sub_attrs = N(name_subs)},
    STR("displayName", "Name shown to people."),
    STR("nickName", "Casual name."),
    REF("profileUrl", "URL of the user's profile page.", ref_external),
    STR("title", "Job title."),
    STR("userType", "Relationship to the organisation, e.g. Employee."),
    STR("preferredLanguage", "Preferred language (RFC 7231 Accept-Language form)."),
    STR("locale", "Locale for formatting (BCP 47)."),
    STR("timezone", "Time zone (IANA name)."),
    BOOL("active", "Whether the account may be used."),
    {.name = "password", .type = SCIM_T_STRING, .mutability = SCIM_MUT_WRITEONLY,
     .returned = SCIM_RET_NEVER, .description = "Clear-text password, write only."},
    MULTI("emails", "E-mail addresses.", email_subs),
    MULTI("phoneNumbers", "Telephone numbers.", phone_subs),
    MULTI("ims", "Instant messaging addresses.", im_subs),
    MULTI("photos", "Images of the user.", photo_subs),
    MULTI("addresses", "Postal addresses.", address_subs),
    {.name = "groups", .type = SCIM_T_COMPLEX, .multi_valued = true,
     .mutability = SCIM_MUT_READONLY, .description = "Groups the user belongs to.",
     .sub_attrs = user_group_subs, .n_sub_attrs = N(user_group_subs)},
    MULTI("entitlements", "Entitlements held.", generic_subs),
    MULTI("roles", "Roles held.", generic_subs),
    MULTI("x509Certificates", "Certificates of the user.", cert_subs),
};

/* --- Enterprise User (RFC 7643 §4.3) ------------------------------------------------------ */

static const struct scim_attr manager_subs[] = {
    STR("value", "id of the manager's User resource."),
    REF("$ref", "URI of the manager's User resource.", ref_user),
    {.name = "displayName", .type = SCIM_T_STRING, .mutability = SCIM_MUT_READONLY,
     .description = "Name of the manager."},
};

static const struct scim_attr enterprise_attrs[] = {
    STR("employeeNumber", "Identifier assigned by the organisation."),
    STR("costCenter", "Cost center."),
    STR("organization", "Organisation name."),
    STR("division", "Division name."),
    STR("department", "Department name."),
    {.name = "manager", .type = SCIM_T_COMPLEX, .description = "The user's manager.",
     .sub_attrs = manager_subs, .n_sub_attrs = N(manager_subs)},
};

/* --- Group (RFC 7643 §4.2) ---------------------------------------------------------------- */

/* RFC 7643 §4.2: sub-attributes of members are immutable (values are added or removed whole). */
static const struct scim_attr member_subs[] = {
    {.name = "value", .type = SCIM_T_STRING, .mutability = SCIM_MUT_IMMUTABLE,
     .description = "id of the member resource."},
    {.name = "$ref", .type = SCIM_T_REFERENCE, .mutability = SCIM_MUT_IMMUTABLE,
     .reference_types = ref_user_group, .description = "URI of the member resource."},
    {.name = "display", .type = SCIM_T_STRING, .mutability = SCIM_MUT_IMMUTABLE,
     .description = "Name of the member."},
    {.name = "type", .type = SCIM_T_STRING, .mutability = SCIM_MUT_IMMUTABLE,
     .canonical_values = cv_member_type, .description = "Kind of member resource."},
};

static const struct scim_attr group_attrs[] = {
    {.name = "displayName", .type = SCIM_T_STRING, .required = true,
     .description = "Name of the group."},
    {.name = "members", .type = SCIM_T_COMPLEX, .multi_valued = true,
     .description = "Users and groups in the group.", .sub_attrs = member_subs,
     .n_sub_attrs = N(member_subs)},
};

static const struct scim_schema schema_user = {
    .id = SCIM_SCHEMA_USER, .name = "User", .description = "User Account",
    .attrs = user_attrs, .n_attrs = N(user_attrs)};
static const struct scim_schema schema_enterprise = {
    .id = SCIM_SCHEMA_ENTERPRISE, .name = "EnterpriseUser",
    .description = "Enterprise User",
    .attrs = enterprise_attrs, .n_attrs = N(enterprise_attrs)};
static const struct scim_schema schema_group = {
    .id = SCIM_SCHEMA_GROUP, .name = "Group", .description = "Group",
    .attrs = group_attrs, .n_attrs = N(group_attrs)};

/* --- registry --------------------------------------------------------------------------- */

struct scim_registry {
    const struct scim_schema **schemas; /* publication order */
    size_t n_schemas, cap_schemas;
    struct scim_schema **owned; /* added schemas, freed with the registry */
    size_t n_owned;
    struct scim_resource_type rts[SCIM_RT_COUNT];
};

static int push_schema(struct scim_registry *reg, const struct scim_schema *s)
{
    if (reg->n_schemas == reg->cap_schemas) {
        size_t cap = reg->cap_schemas ? 2 * reg->cap_schemas : 8;
        const struct scim_schema **p = realloc(reg->schemas, cap * sizeof(*p));
        if (!p)
            return -1;
        reg->schemas = p;
        reg->cap_schemas = cap;
    }
    reg->schemas[reg->n_schemas++] = s;
    return 0;
}

struct scim_registry *scim_registry_new(void)
{
    struct scim_registry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return NULL;
    if (push_schema(reg, &schema_user) < 0 || push_schema(reg, &schema_enterprise) < 0 ||
        push_schema(reg, &schema_group) < 0) {
        scim_registry_free(&reg);
        return NULL;
    }
    struct scim_resource_type *u = &reg->rts[SCIM_RT_USER];
    u->kind = SCIM_RT_USER;
    u->id = "User";
    u->name = "User";
    u->endpoint = "/Users";
    u->description = "User Account";
    u->schema = &schema_user;
    u->extensions[0].schema = &schema_enterprise;
    u->extensions[0].required = false;
    u->n_extensions = 1;

    struct scim_resource_type *g = &reg->rts[SCIM_RT_GROUP];
    g->kind = SCIM_RT_GROUP;
    g->id = "Group";
    g->name = "Group";
    g->endpoint = "/Groups";
    g->description = "Group";
    g->schema = &schema_group;
    return reg;
}

static void free_strv(const char *const *v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free((char *)v[i]);
    free((void *)v);
}

static void free_attrs(const struct scim_attr *attrs, size_t n)
{
    if (!attrs)
        return;
    for (size_t i = 0; i < n; i++) {
        free((char *)attrs[i].name);
        free((char *)attrs[i].description);
        free_strv(attrs[i].canonical_values);
        free_strv(attrs[i].reference_types);
        free_attrs(attrs[i].sub_attrs, attrs[i].n_sub_attrs);
    }
    free((void *)attrs);
}

void scim_schema_free(struct scim_schema *schema)
{
    if (!schema)
        return;
    free((char *)schema->id);
    free((char *)schema->name);
    free((char *)schema->description);
    free_attrs(schema->attrs, schema->n_attrs);
    free(schema);
}

void scim_registry_free(struct scim_registry **reg)
{
    if (!reg || !*reg)
        return;
    for (size_t i = 0; i < (*reg)->n_owned; i++)
        scim_schema_free((*reg)->owned[i]);
    free((*reg)->owned);
    free((*reg)->schemas);
    free(*reg);
    *reg = NULL;
}

size_t scim_registry_schema_count(const struct scim_registry *reg)
{
    return reg->n_schemas;
}

const struct scim_schema *scim_registry_schema_at(const struct scim_registry *reg, size_t i)
{
    return i < reg->n_schemas ? reg->schemas[i] : NULL;
}

const struct scim_schema *scim_registry_schema(const struct scim_registry *reg, const char *urn)
{
    if (!urn)
        return NULL;
    for (size_t i = 0; i < reg->n_schemas; i++)
        if (scim_streq_ci(reg->schemas[i]->id, urn))
            return reg->schemas[i];
    return NULL;
}

const struct scim_resource_type *scim_registry_rt(const struct scim_registry *reg, enum scim_rtype kind)
{
    return &reg->rts[kind == SCIM_RT_GROUP ? SCIM_RT_GROUP : SCIM_RT_USER];
}

const struct scim_resource_type *scim_registry_rt_find(const struct scim_registry *reg, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < SCIM_RT_COUNT; i++) {
        const struct scim_resource_type *rt = &reg->rts[i];
        if (scim_streq_ci(name, rt->id) || scim_streq_ci(name, rt->name) ||
            scim_streq_ci(name, rt->endpoint) || scim_streq_ci(name, rt->endpoint + 1))
            return rt;
    }
    return NULL;
}

static const struct scim_attr *find_attr(const struct scim_attr *attrs, size_t n, const char *name)
{
    if (!attrs || !name)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (scim_streq_ci(attrs[i].name, name))
            return &attrs[i];
    return NULL;
}

const struct scim_attr *scim_schema_attr(const struct scim_schema *schema, const char *name)
{
    return schema ? find_attr(schema->attrs, schema->n_attrs, name) : NULL;
}

const struct scim_attr *scim_attr_sub(const struct scim_attr *attr, const char *name)
{
    if (!attr || attr->type != SCIM_T_COMPLEX)
        return NULL;
    return find_attr(attr->sub_attrs, attr->n_sub_attrs, name);
}

const struct scim_attr *scim_common_attr(const char *name)
{
    return find_attr(common_attrs, N(common_attrs), name);
}

/* Fills the outputs for `attr` found in `schema`, resolving `sub` when given. */
static int resolved(const struct scim_schema *schema, const struct scim_attr *attr, const char *sub,
                    const struct scim_schema **schema_out, const struct scim_attr **attr_out,
                    const struct scim_attr **sub_out)
{
    const struct scim_attr *s = NULL;
    if (sub) {
        s = scim_attr_sub(attr, sub);
        if (!s)
            return -1;
    }
    if (schema_out)
        *schema_out = schema;
    if (attr_out)
        *attr_out = attr;
    if (sub_out)
        *sub_out = s;
    return 0;
}

int scim_resolve_attr(const struct scim_resource_type *rt, const char *urn, const char *name,
                      const char *sub, const struct scim_schema **schema_out,
                      const struct scim_attr **attr_out, const struct scim_attr **sub_out)
{
    const struct scim_attr *a;
    if (!rt || !name)
        return -1;
    if (urn) {
        if (scim_streq_ci(urn, rt->schema->id)) {
            if ((a = scim_schema_attr(rt->schema, name)))
                return resolved(rt->schema, a, sub, schema_out, attr_out, sub_out);
            /* "urn:...:core:2.0:User:meta.created": common attributes belong to every
             * resource, so the core URN qualifies them too. */
            if ((a = scim_common_attr(name)))
                return resolved(NULL, a, sub, schema_out, attr_out, sub_out);
            return -1;
        }
        for (size_t i = 0; i < rt->n_extensions; i++) {
            const struct scim_schema *ext = rt->extensions[i].schema;
            if (scim_streq_ci(urn, ext->id)) {
                a = scim_schema_attr(ext, name);
                return a ? resolved(ext, a, sub, schema_out, attr_out, sub_out) : -1;
            }
        }
        return -1;
    }
    if ((a = scim_schema_attr(rt->schema, name)))
        return resolved(rt->schema, a, sub, schema_out, attr_out, sub_out);
    if ((a = scim_common_attr(name)))
        return resolved(NULL, a, sub, schema_out, attr_out, sub_out);
    for (size_t i = 0; i < rt->n_extensions; i++) {
        const struct scim_schema *ext = rt->extensions[i].schema;
        if ((a = scim_schema_attr(ext, name)))
            return resolved(ext, a, sub, schema_out, attr_out, sub_out);
    }
    return -1;
}

size_t scim_registry_split_urn(const struct scim_registry *reg, const char *s, const char **rest)
{
    size_t best = 0;
    if (!s)
        return 0;
    for (size_t i = 0; i < reg->n_schemas; i++) {
        size_t len = strlen(reg->schemas[i]->id);
        if (len <= best || scim_strncasecmp(s, reg->schemas[i]->id, len) != 0)
            continue;
        /* A bare URN (nothing after it) names the whole schema, e.g. an extension object. */
        if (s[len] == ':' || s[len] == '.' || s[len] == '\0')
            best = len;
    }
    if (best && rest)
        *rest = s[best] ? s + best + 1 : s + best;
    return best;
}

int scim_registry_add_schema(struct scim_registry *reg, enum scim_rtype kind,
                             struct scim_schema *schema, bool required, struct scim_err *err)
{
    if (!schema || !schema->id)
        return scim_err_internal(err, "extension schema without an id");
    if (scim_registry_schema(reg, schema->id))
        return scim_err_set(err, 409, SCIM_TYPE_UNIQUENESS, "schema %s is already registered",
                            schema->id);
    struct scim_resource_type *rt = &reg->rts[kind == SCIM_RT_GROUP ? SCIM_RT_GROUP : SCIM_RT_USER];
    size_t max = sizeof(rt->extensions) / sizeof(rt->extensions[0]);
    if (rt->n_extensions >= max)
        return scim_err_set(err, 500, NULL, "too many extension schemas for %s", rt->name);
    struct scim_schema **owned = realloc(reg->owned, (reg->n_owned + 1) * sizeof(*owned));
    if (!owned)
        return scim_err_nomem(err);
    reg->owned = owned;
    if (push_schema(reg, schema) < 0)
        return scim_err_nomem(err);
    reg->owned[reg->n_owned++] = schema;
    rt->extensions[rt->n_extensions].schema = schema;
    rt->extensions[rt->n_extensions].required = required;
    rt->n_extensions++;
    return 0;
}

const char *scim_atype_name(enum scim_atype t)
{
    switch (t) {
    case SCIM_T_STRING: return "string";
    case SCIM_T_BOOLEAN: return "boolean";
    case SCIM_T_DECIMAL: return "decimal";
    case SCIM_T_INTEGER: return "integer";
    case SCIM_T_DATETIME: return "dateTime";
    case SCIM_T_BINARY: return "binary";
    case SCIM_T_REFERENCE: return "reference";
    case SCIM_T_COMPLEX: return "complex";
    }
    return "string";
}

const char *scim_mutability_name(enum scim_mutability m)
{
    switch (m) {
    case SCIM_MUT_READWRITE: return "readWrite";
    case SCIM_MUT_READONLY: return "readOnly";
    case SCIM_MUT_IMMUTABLE: return "immutable";
    case SCIM_MUT_WRITEONLY: return "writeOnly";
    }
    return "readWrite";
}

const char *scim_returned_name(enum scim_returned r)
{
    switch (r) {
    case SCIM_RET_DEFAULT: return "default";
    case SCIM_RET_ALWAYS: return "always";
    case SCIM_RET_NEVER: return "never";
    case SCIM_RET_REQUEST: return "request";
    }
    return "default";
}

const char *scim_uniqueness_name(enum scim_uniqueness u)
{
    switch (u) {
    case SCIM_UNIQ_NONE: return "none";
    case SCIM_UNIQ_SERVER: return "server";
    case SCIM_UNIQ_GLOBAL: return "global";
    }
    return "none";
}
