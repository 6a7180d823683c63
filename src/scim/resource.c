/* Resource normalisation, validation, projection and output finishing.
 *
 * Input is accepted the way real identity providers send it (IDP-CLIENTS.md quirks 2, 11, 16, 17,
 * 27, 29, 31, 32, 34): names in any case, string booleans, single values for arrays, read-only
 * and unknown attributes. Everything tolerated is recorded as a compat bit so the request log
 * shows which deviation was needed. */
#include "scim/resource.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/jsondump.h"
#include "common/util.h"
#include "scim/compat.h"

#define PATH_MAX_LEN 256

/* ---- small helpers --------------------------------------------------------------------- */

static bool is_members(const struct scim_attr *a)
{
    return a->type == SCIM_T_COMPLEX && a->multi_valued && strcmp(a->name, "members") == 0;
}

/* A single-valued complex attribute with a "value" sub-attribute (the enterprise manager):
 * clients send it as a bare string or a one-element array. */
static bool is_value_complex(const struct scim_attr *a)
{
    return a->type == SCIM_T_COMPLEX && !a->multi_valued && scim_attr_sub(a, "value") != NULL;
}

/* Attributes whose "$ref" the server derives on output (scim_resource_finish), so a client's
 * own "$ref" (often null or stale) is not stored. */
static bool ref_is_derived(const struct scim_attr *a)
{
    return strcmp(a->name, "members") == 0 || strcmp(a->name, "groups") == 0 ||
           strcmp(a->name, "manager") == 0;
}

static const struct scim_schema *ext_of(const struct scim_resource_type *rt, const char *urn)
{
    for (size_t i = 0; i < rt->n_extensions; i++)
        if (scim_streq_ci(rt->extensions[i].schema->id, urn))
            return rt->extensions[i].schema;
    return NULL;
}

/* The value of `key` in `obj`, matching the key case-insensitively. */
static json_t *get_ci(json_t *obj, const char *key, const char **found)
{
    const char *k;
    json_t *v;
    json_t *exact = json_object_get(obj, key);
    if (exact) {
        if (found)
            *found = key;
        return exact;
    }
    json_object_foreach(obj, k, v) {
        if (scim_streq_ci(k, key)) {
            if (found)
                *found = k;
            return v;
        }
    }
    return NULL;
}

/* The object under `key` in `parent`, created when absent; NULL on out of memory. */
static json_t *child_obj(json_t *parent, const char *key)
{
    json_t *o = json_object_get(parent, key);
    if (json_is_object(o))
        return o;
    o = json_object();
    if (!o || json_object_set_new(parent, key, o) < 0)
        return NULL;
    return o;
}

static void join_path(char *buf, const char *parent, const char *name)
{
    if (parent && *parent)
        snprintf(buf, PATH_MAX_LEN, "%s.%s", parent, name);
    else
        snprintf(buf, PATH_MAX_LEN, "%s", name);
}

/* ---- value normalisation ------------------------------------------------------------- */

static int norm_value(const struct scim_registry *reg, const struct scim_attr *attr,
                      const char *path, json_t *value, bool as_element, json_t **out,
                      uint32_t *compat, struct scim_err *err);

static int bad_type(struct scim_err *err, const char *path, const char *what)
{
    return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE, "attribute \"%s\" must be %s", path, what);
}

static int norm_scalar(const struct scim_attr *attr, const char *path, json_t *value, json_t **out,
                       uint32_t *compat, struct scim_err *err)
{
    json_t *r = NULL;
    switch (attr->type) {
    case SCIM_T_STRING:
    case SCIM_T_BINARY:
    case SCIM_T_REFERENCE:
        if (!json_is_string(value))
            return bad_type(err, path, "a string");
        r = json_copy(value);
        break;
    case SCIM_T_DATETIME: {
        int64_t us;
        /* Kept as sent (Entra wants values stored verbatim); only the syntax is checked. */
        if (!json_is_string(value) || scim_datetime_parse(json_string_value(value), &us) < 0)
            return bad_type(err, path, "a dateTime");
        r = json_copy(value);
        break;
    }
    case SCIM_T_BOOLEAN:
        if (json_is_boolean(value)) {
            r = json_copy(value);
        } else if (json_is_string(value) && scim_streq_ci(json_string_value(value), "true")) {
            r = json_true();
            *compat |= SCIM_COMPAT_STRING_BOOLEAN;
        } else if (json_is_string(value) && scim_streq_ci(json_string_value(value), "false")) {
            r = json_false();
            *compat |= SCIM_COMPAT_STRING_BOOLEAN;
        } else {
            return bad_type(err, path, "a boolean");
        }
        break;
    case SCIM_T_INTEGER:
        if (json_is_integer(value)) {
            r = json_copy(value);
        } else if (json_is_real(value)) {
            double d = json_real_value(value);
            /* 3.0 is an integer written as a real; 3.5 is not. */
            if (!(d >= -9.0e18 && d <= 9.0e18) || (double)(json_int_t)d != d)
                return bad_type(err, path, "an integer");
            r = json_integer((json_int_t)d);
        } else {
            return bad_type(err, path, "an integer");
        }
        break;
    case SCIM_T_DECIMAL:
        if (!json_is_number(value))
            return bad_type(err, path, "a number");
        r = json_copy(value);
        break;
    case SCIM_T_COMPLEX:
        return bad_type(err, path, "an object");
    }
    if (!r)
        return scim_err_nomem(err);
    *out = r;
    return 0;
}

static int norm_complex(const struct scim_registry *reg, const struct scim_attr *attr,
                        const char *path, json_t *value, json_t **out, uint32_t *compat,
                        struct scim_err *err)
{
    json_t *res = NULL;
    const char *k;
    json_t *v;
    char sub_path[PATH_MAX_LEN];

    if (json_is_string(value) && is_members(attr)) {
        *compat |= SCIM_COMPAT_MEMBER_BARE_STRING;
    } else if (json_is_string(value) && is_value_complex(attr)) {
        *compat |= SCIM_COMPAT_MANAGER_STRING;
    } else if (!json_is_object(value)) {
        return bad_type(err, path, "an object");
    }
    res = json_object();
    if (!res)
        return scim_err_nomem(err);
    if (json_is_string(value)) {
        if (json_object_set_new(res, "value", json_copy(value)) < 0)
            goto nomem;
        goto done;
    }
    json_object_foreach(value, k, v) {
        const struct scim_attr *sub = scim_attr_sub(attr, k);
        json_t *nv = NULL;
        if (!sub && is_members(attr) && scim_streq_ci(k, "displayName")) {
            /* MS collection #27 sends "displayName"; an explicit "display" wins. */
            *compat |= SCIM_COMPAT_MEMBER_DISPLAYNAME;
            if (json_object_get(res, "display"))
                continue;
            sub = scim_attr_sub(attr, "display");
        }
        if (!sub) {
            *compat |= SCIM_COMPAT_READONLY_INPUT_IGNORED;
            continue;
        }
        if (json_is_null(v))
            continue;
        if (sub->mutability == SCIM_MUT_READONLY) {
            *compat |= SCIM_COMPAT_READONLY_INPUT_IGNORED;
            continue;
        }
        if (strcmp(sub->name, "$ref") == 0 && ref_is_derived(attr))
            continue;
        join_path(sub_path, path, sub->name);
        if (norm_value(reg, sub, sub_path, v, false, &nv, compat, err) < 0)
            goto fail;
        if (nv && json_object_set_new(res, sub->name, nv) < 0)
            goto nomem;
    }
done:
    /* A member without a value designates nothing (RFC 7643 §4.2): skip it. */
    if (is_members(attr) && !json_is_string(json_object_get(res, "value"))) {
        json_decref(res);
        res = NULL;
    } else if (json_object_size(res) == 0) {
        json_decref(res);
        res = NULL;
    }
    *out = res;
    return 0;
nomem:
    scim_err_nomem(err);
fail:
    json_decref(res);
    return -1;
}

static int norm_element(const struct scim_registry *reg, const struct scim_attr *attr,
                        const char *path, json_t *value, json_t **out, uint32_t *compat,
                        struct scim_err *err)
{
    if (json_is_null(value))
        return 0;
    if (attr->type == SCIM_T_COMPLEX)
        return norm_complex(reg, attr, path, value, out, compat, err);
    return norm_scalar(attr, path, value, out, compat, err);
}

static int check_primary(const char *path, json_t *arr, struct scim_err *err)
{
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(arr, i, e) {
        if (json_is_true(json_object_get(e, "primary")))
            n++;
    }
    if (n > 1)
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                            "attribute \"%s\" has more than one primary value", path);
    return 0;
}

static int norm_value(const struct scim_registry *reg, const struct scim_attr *attr,
                      const char *path, json_t *value, bool as_element, json_t **out,
                      uint32_t *compat, struct scim_err *err)
{
    *out = NULL;
    if (!value || json_is_null(value))
        return 0;
    if (attr->multi_valued && !as_element) {
        json_t *arr = json_array();
        json_t *e = NULL;
        if (!arr)
            return scim_err_nomem(err);
        if (json_is_array(value)) {
            size_t i;
            json_t *item;
            json_array_foreach(value, i, item) {
                e = NULL;
                if (norm_element(reg, attr, path, item, &e, compat, err) < 0)
                    goto fail;
                if (e && json_array_append_new(arr, e) < 0)
                    goto nomem;
            }
        } else {
            if (norm_element(reg, attr, path, value, &e, compat, err) < 0)
                goto fail;
            if (e && json_array_append_new(arr, e) < 0)
                goto nomem;
        }
        if (json_array_size(arr) == 0) {
            json_decref(arr);
            return 0;
        }
        if (attr->type == SCIM_T_COMPLEX && check_primary(path, arr, err) < 0)
            goto fail;
        *out = arr;
        return 0;
    nomem:
        scim_err_nomem(err);
    fail:
        json_decref(arr);
        return -1;
    }
    if (!attr->multi_valued && attr->type == SCIM_T_COMPLEX && json_is_array(value)) {
        /* Entra sends the manager as [{"value":...}] (quirk 32). */
        if (json_array_size(value) == 0)
            return 0;
        if (json_array_size(value) > 1)
            return bad_type(err, path, "an object");
        *compat |= SCIM_COMPAT_MANAGER_STRING;
        value = json_array_get(value, 0);
    }
    return norm_element(reg, attr, path, value, out, compat, err);
}

int scim_value_normalize(const struct scim_registry *reg, const struct scim_attr *attr,
                         json_t *value, bool as_element, json_t **out, uint32_t *compat,
                         struct scim_err *err)
{
    uint32_t dummy = 0;
    *out = NULL;
    if (!attr)
        return scim_err_internal(err, "scim_value_normalize without an attribute");
    return norm_value(reg, attr, attr->name, value, as_element, out, compat ? compat : &dummy, err);
}

/* ---- resource normalisation --------------------------------------------------------- */

static const struct scim_schema *schema_by_prefix(const struct scim_registry *reg, const char *s,
                                                  size_t len)
{
    for (size_t i = 0; i < scim_registry_schema_count(reg); i++) {
        const struct scim_schema *sc = scim_registry_schema_at(reg, i);
        if (strlen(sc->id) == len && scim_strncasecmp(sc->id, s, len) == 0)
            return sc;
    }
    return NULL;
}

/* Stores one attribute of the body. `schema` is the URN the key was qualified with (NULL:
 * unqualified); `name` may be dotted ("name.givenName"). */
static int put_attr(const struct scim_registry *reg, const struct scim_resource_type *rt,
                    struct scim_input *in, const struct scim_schema *schema, const char *name,
                    json_t *value, uint32_t *compat, struct scim_err *err)
{
    char nm[PATH_MAX_LEN], path[PATH_MAX_LEN];
    const char *sub = NULL;
    const struct scim_schema *sch = NULL;
    const struct scim_attr *a = NULL;
    json_t *nv = NULL, *target;
    const char *dot = strchr(name, '.');

    if (strlen(name) >= sizeof(nm)) {
        *compat |= SCIM_COMPAT_READONLY_INPUT_IGNORED;
        return 0;
    }
    snprintf(nm, sizeof(nm), "%s", name);
    if (dot) {
        nm[dot - name] = '\0';
        sub = nm + (dot - name) + 1;
    }
    if (scim_resolve_attr(rt, schema ? schema->id : NULL, nm, NULL, &sch, &a, NULL) < 0) {
        *compat |= SCIM_COMPAT_READONLY_INPUT_IGNORED;
        return 0;
    }
    if (json_is_null(value))
        return 0;
    if (a->mutability == SCIM_MUT_READONLY) {
        *compat |= SCIM_COMPAT_READONLY_INPUT_IGNORED;
        return 0;
    }
    if (a->mutability == SCIM_MUT_WRITEONLY && sch == rt->schema &&
        strcmp(a->name, "password") == 0 && !sub) {
        if (!json_is_string(value))
            return bad_type(err, "password", "a string");
        char *pw = scim_strdup(json_string_value(value));
        if (!pw)
            return scim_err_nomem(err);
        free(in->password);
        in->password = pw;
        return 0;
    }
    if (is_members(a) && sch == rt->schema && !sub) {
        if (norm_value(reg, a, a->name, value, false, &nv, compat, err) < 0)
            return -1;
        /* An explicit (possibly empty) array is kept, so PUT can tell "no members" from
         * "members not given". */
        if (!nv && json_is_array(value) && !(nv = json_array()))
            return scim_err_nomem(err);
        json_decref(in->members);
        in->members = nv;
        return 0;
    }

    if (sub) {
        const struct scim_attr *s = scim_attr_sub(a, sub);
        if (a->multi_valued || !s || s->mutability == SCIM_MUT_READONLY ||
            strchr(sub, '.') != NULL) {
            *compat |= SCIM_COMPAT_READONLY_INPUT_IGNORED;
            return 0;
        }
        snprintf(path, sizeof(path), "%s.%s", a->name, s->name);
        if (norm_value(reg, s, path, value, false, &nv, compat, err) < 0)
            return -1;
        if (!nv)
            return 0;
        target = (sch && sch != rt->schema) ? child_obj(in->doc, sch->id) : in->doc;
        if (!target || !(target = child_obj(target, a->name)) ||
            json_object_set_new(target, s->name, nv) < 0) {
            json_decref(nv);
            return scim_err_nomem(err);
        }
        return 0;
    }

    if (norm_value(reg, a, a->name, value, false, &nv, compat, err) < 0)
        return -1;
    if (!nv)
        return 0;
    target = (sch && sch != rt->schema) ? child_obj(in->doc, sch->id) : in->doc;
    if (!target || json_object_set_new(target, a->name, nv) < 0) {
        if (!target)
            json_decref(nv);
        return scim_err_nomem(err);
    }
    return 0;
}

static int norm_key(const struct scim_registry *reg, const struct scim_resource_type *rt,
                    struct scim_input *in, const char *key, json_t *value, uint32_t *compat,
                    struct scim_err *err)
{
    const char *rest = NULL;
    size_t ul;

    if (scim_streq_ci(key, "schemas")) {
        /* The output schemas are derived from the attributes present (quirk 16). */
        size_t i;
        json_t *u;
        json_array_foreach(value, i, u) {
            const char *s = json_string_value(u);
            if (!s || !(scim_streq_ci(s, rt->schema->id) || ext_of(rt, s)))
                *compat |= SCIM_COMPAT_UNKNOWN_SCHEMA_URN;
        }
        return 0;
    }
    ul = scim_registry_split_urn(reg, key, &rest);
    if (ul > 0) {
        const struct scim_schema *sc = schema_by_prefix(reg, key, ul);
        if (!sc || (sc != rt->schema && !ext_of(rt, sc->id))) {
            *compat |= SCIM_COMPAT_UNKNOWN_SCHEMA_URN;
            return 0;
        }
        if (*rest == '\0') {
            const char *k;
            json_t *v;
            if (json_is_null(value))
                return 0;
            if (!json_is_object(value))
                return bad_type(err, sc->id, "an object");
            json_object_foreach(value, k, v) {
                if (put_attr(reg, rt, in, sc, k, v, compat, err) < 0)
                    return -1;
            }
            return 0;
        }
        if (key[ul] == '.')
            *compat |= SCIM_COMPAT_URN_DOT_SEPARATOR;
        return put_attr(reg, rt, in, sc, rest, value, compat, err);
    }
    if (scim_strncasecmp(key, "urn:", 4) == 0) {
        *compat |= SCIM_COMPAT_UNKNOWN_SCHEMA_URN;
        return 0;
    }
    return put_attr(reg, rt, in, NULL, key, value, compat, err);
}

static bool required_missing(const struct scim_attr *a, json_t *v)
{
    if (!v || json_is_null(v))
        return true;
    if (a->type == SCIM_T_STRING || a->type == SCIM_T_REFERENCE || a->type == SCIM_T_BINARY)
        return !json_is_string(v) || json_string_length(v) == 0;
    if (a->multi_valued)
        return !json_is_array(v) || json_array_size(v) == 0;
    return false;
}

static int check_schema_attrs(const struct scim_schema *sc, json_t *obj, bool required,
                              struct scim_err *err)
{
    for (size_t i = 0; i < sc->n_attrs; i++) {
        const struct scim_attr *a = &sc->attrs[i];
        json_t *v = json_object_get(obj, a->name);
        if (required && a->required && a->mutability != SCIM_MUT_READONLY &&
            required_missing(a, v))
            return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                "missing required attribute %s", a->name);
        if (a->multi_valued && a->type == SCIM_T_COMPLEX && json_is_array(v) &&
            check_primary(a->name, v, err) < 0)
            return -1;
    }
    return 0;
}

int scim_resource_validate(const struct scim_resource_type *rt, json_t *doc, struct scim_err *err)
{
    if (!json_is_object(doc))
        return scim_err_internal(err, "resource is not an object");
    if (check_schema_attrs(rt->schema, doc, true, err) < 0)
        return -1;
    for (size_t i = 0; i < rt->n_extensions; i++) {
        json_t *ext = json_object_get(doc, rt->extensions[i].schema->id);
        if (!json_is_object(ext) && !rt->extensions[i].required)
            continue;
        if (check_schema_attrs(rt->extensions[i].schema, ext, true, err) < 0)
            return -1;
    }
    return 0;
}

int scim_resource_normalize(const struct scim_registry *reg, const struct scim_resource_type *rt,
                            json_t *body, enum scim_norm_mode mode, struct scim_input *out,
                            uint32_t *compat, struct scim_err *err)
{
    const char *key;
    json_t *value;
    uint32_t dummy = 0;

    /* CREATE and REPLACE accept the same body; immutability on PUT is checked separately. */
    (void)mode;
    if (!compat)
        compat = &dummy;
    out->doc = NULL;
    out->members = NULL;
    out->password = NULL;
    if (!json_is_object(body))
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_SYNTAX, "request body must be a JSON object");
    if (!(out->doc = json_object()))
        return scim_err_nomem(err);
    json_object_foreach(body, key, value) {
        if (norm_key(reg, rt, out, key, value, compat, err) < 0)
            goto fail;
    }
    /* An extension object whose attributes were all dropped is not kept. */
    for (size_t i = 0; i < rt->n_extensions; i++) {
        const char *id = rt->extensions[i].schema->id;
        json_t *ext = json_object_get(out->doc, id);
        if (ext && json_object_size(ext) == 0)
            json_object_del(out->doc, id);
    }
    if (scim_resource_validate(rt, out->doc, err) < 0)
        goto fail;
    return 0;
fail:
    scim_input_release(out);
    return -1;
}

void scim_input_release(struct scim_input *in)
{
    if (!in)
        return;
    json_decref(in->doc);
    json_decref(in->members);
    if (in->password) {
        /* The caller normally wipes it after hashing; wipe again on error paths. */
        volatile char *p = in->password;
        while (*p)
            *p++ = '\0';
        free(in->password);
    }
    in->doc = NULL;
    in->members = NULL;
    in->password = NULL;
}

/* ---- immutability ---------------------------------------------------------------------- */

static int immutable_in(const struct scim_schema *sc, json_t *old_obj, json_t *new_obj,
                        const char *prefix, struct scim_err *err)
{
    for (size_t i = 0; i < sc->n_attrs; i++) {
        const struct scim_attr *a = &sc->attrs[i];
        json_t *ov = json_object_get(old_obj, a->name);
        json_t *nv = json_object_get(new_obj, a->name);
        if (!ov || json_is_null(ov) || !nv)
            continue;
        if (a->mutability == SCIM_MUT_IMMUTABLE) {
            if (!json_equal(ov, nv))
                return scim_err_set(err, 400, SCIM_TYPE_MUTABILITY,
                                    "attribute \"%s%s\" is immutable", prefix, a->name);
            continue;
        }
        if (a->type != SCIM_T_COMPLEX || a->multi_valued || !json_is_object(ov))
            continue;
        for (size_t j = 0; j < a->n_sub_attrs; j++) {
            const struct scim_attr *s = &a->sub_attrs[j];
            json_t *osv = json_object_get(ov, s->name);
            json_t *nsv = json_object_get(nv, s->name);
            if (s->mutability != SCIM_MUT_IMMUTABLE || !osv || json_is_null(osv) || !nsv)
                continue;
            if (!json_equal(osv, nsv))
                return scim_err_set(err, 400, SCIM_TYPE_MUTABILITY,
                                    "attribute \"%s%s.%s\" is immutable", prefix, a->name,
                                    s->name);
        }
    }
    return 0;
}

int scim_resource_check_immutable(const struct scim_resource_type *rt, json_t *old_doc,
                                  json_t *new_doc, struct scim_err *err)
{
    char prefix[PATH_MAX_LEN];
    if (!json_is_object(old_doc) || !json_is_object(new_doc))
        return 0;
    if (immutable_in(rt->schema, old_doc, new_doc, "", err) < 0)
        return -1;
    for (size_t i = 0; i < rt->n_extensions; i++) {
        const struct scim_schema *ext = rt->extensions[i].schema;
        snprintf(prefix, sizeof(prefix), "%s:", ext->id);
        if (immutable_in(ext, json_object_get(old_doc, ext->id), json_object_get(new_doc, ext->id),
                         prefix, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- attributes / excludedAttributes ------------------------------------------------- */

struct attr_ref {
    const struct scim_schema *schema; /* the schema of a whole-schema reference */
    const struct scim_attr *attr;     /* NULL: unknown (selects nothing) or whole schema */
    const struct scim_attr *sub;
    bool whole_schema;
};

struct scim_attrlist {
    size_t n;
    struct attr_ref refs[];
};

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '$';
}

/* Parses one entry into *r. Returns 1 if well-formed, 0 if malformed. */
static int parse_entry(const struct scim_registry *reg, const struct scim_resource_type *rt,
                       char *tok, struct attr_ref *r)
{
    const char *rest = tok;
    const struct scim_schema *sc = NULL;
    size_t ul = scim_registry_split_urn(reg, tok, &rest);
    char *dot;
    memset(r, 0, sizeof(*r));

    if (ul > 0) {
        sc = schema_by_prefix(reg, tok, ul);
        if (*rest == '\0') {
            if (sc == rt->schema || (sc && ext_of(rt, sc->id))) {
                r->whole_schema = true;
                r->schema = sc;
            }
            return 1;
        }
    } else if (scim_strncasecmp(tok, "urn:", 4) == 0) {
        /* An unknown URN: well-formed if it only has URN characters; it selects nothing. */
        for (const char *p = tok; *p; p++)
            if (!name_char(*p) && *p != ':' && *p != '.')
                return 0;
        return 1;
    }
    dot = NULL;
    for (char *p = (char *)rest; *p; p++) {
        if (*p == '.') {
            if (dot || p == rest || p[1] == '\0')
                return 0;
            dot = p;
        } else if (!name_char(*p)) {
            return 0;
        }
    }
    if (*rest == '\0')
        return 0;
    if (dot)
        *dot = '\0';
    if (scim_resolve_attr(rt, sc ? sc->id : NULL, rest, dot ? dot + 1 : NULL, &r->schema, &r->attr,
                          &r->sub) < 0) {
        r->attr = NULL;
        r->sub = NULL;
    }
    r->schema = NULL;
    return 1;
}

int scim_attrlist_parse(const struct scim_registry *reg, const struct scim_resource_type *rt,
                        const char *param, struct scim_attrlist **out, uint32_t *compat,
                        struct scim_err *err)
{
    char *copy = NULL, *p, *tok;
    size_t max = 1;
    struct scim_attrlist *l = NULL;
    uint32_t dummy = 0;

    *out = NULL;
    if (!compat)
        compat = &dummy;
    if (!param || !*param)
        return 0;
    for (p = (char *)param; *p; p++)
        if (*p == ',')
            max++;
    copy = scim_strdup(param);
    l = calloc(1, sizeof(*l) + max * sizeof(l->refs[0]));
    if (!copy || !l) {
        free(copy);
        free(l);
        return scim_err_nomem(err);
    }
    tok = copy;
    while (tok) {
        char *end, *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        while (*tok == ' ' || *tok == '\t')
            tok++;
        end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*tok) {
            if (parse_entry(reg, rt, tok, &l->refs[l->n]))
                l->n++;
            else
                *compat |= SCIM_COMPAT_INVALID_ATTRIBUTES_PARAM;
        }
        tok = comma ? comma + 1 : NULL;
    }
    free(copy);
    if (l->n == 0) {
        /* Nothing usable: behave as if the parameter was absent (quirk 34). */
        free(l);
        return 0;
    }
    *out = l;
    return 0;
}

void scim_attrlist_free(struct scim_attrlist *l)
{
    free(l);
}

/* Whether the list names `a` as a whole (or its whole schema). */
static bool ref_whole(const struct scim_attrlist *l, const struct scim_schema *sc,
                      const struct scim_attr *a)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct attr_ref *r = &l->refs[i];
        if ((r->attr == a && !r->sub) || (r->whole_schema && sc && r->schema == sc))
            return true;
    }
    return false;
}

static bool ref_whole_schema(const struct scim_attrlist *l, const struct scim_schema *sc)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->refs[i].whole_schema && l->refs[i].schema == sc)
            return true;
    return false;
}

static bool ref_any(const struct scim_attrlist *l, const struct scim_attr *a)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->refs[i].attr == a)
            return true;
    return false;
}

static bool ref_sub(const struct scim_attrlist *l, const struct scim_attr *a,
                    const struct scim_attr *sub)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->refs[i].attr == a && l->refs[i].sub == sub)
            return true;
    return false;
}

enum sel { SEL_SKIP, SEL_WHOLE, SEL_INCLUDE_SUBS, SEL_EXCLUDE_SUBS };

static enum sel decide(const struct scim_schema *sc, const struct scim_attr *a,
                       const struct scim_attrlist *attributes, const struct scim_attrlist *excluded)
{
    if (a->returned == SCIM_RET_NEVER)
        return SEL_SKIP;
    if (a->returned == SCIM_RET_ALWAYS)
        return SEL_WHOLE;
    if (attributes) {
        if (ref_whole(attributes, sc, a))
            return SEL_WHOLE;
        return ref_any(attributes, a) ? SEL_INCLUDE_SUBS : SEL_SKIP;
    }
    if (a->returned == SCIM_RET_REQUEST)
        return SEL_SKIP;
    if (excluded) {
        if (ref_whole(excluded, sc, a))
            return SEL_SKIP;
        if (ref_any(excluded, a))
            return SEL_EXCLUDE_SUBS;
    }
    return SEL_WHOLE;
}

bool scim_projection_includes(const struct scim_resource_type *rt, const struct scim_attrlist *attributes,
                              const struct scim_attrlist *excluded, const char *attr)
{
    const struct scim_schema *sc = rt->schema;
    const struct scim_attr *a = scim_schema_attr(rt->schema, attr);
    if (!a) {
        a = scim_common_attr(attr);
        sc = NULL;
    }
    if (!a)
        return attributes == NULL;
    return decide(sc, a, attributes, excluded) != SEL_SKIP;
}

/* A value for the projected copy: containers are copied (the caller may change them), scalars
 * are shared. Nothing in scimd changes a scalar in place (no json_string_set and the like),
 * and sharing saves an allocation and a free per attribute of every resource rendered. */
static json_t *share(json_t *v)
{
    return json_is_object(v) || json_is_array(v) ? json_deep_copy(v) : json_incref(v);
}

/* One element (object) of a complex value, filtered by sub-attribute. NULL if nothing is left
 * or on out of memory (*oom set). */
static json_t *filter_object(const struct scim_attr *a, json_t *obj, enum sel how,
                             const struct scim_attrlist *l, bool *oom)
{
    const char *k;
    json_t *v;
    json_t *res = json_object();
    if (!res) {
        *oom = true;
        return NULL;
    }
    json_object_foreach(obj, k, v) {
        const struct scim_attr *s = scim_attr_sub(a, k);
        bool keep;
        if (s && s->returned == SCIM_RET_NEVER)
            keep = false;
        else if (how == SEL_INCLUDE_SUBS)
            keep = s && (s->returned == SCIM_RET_ALWAYS || ref_sub(l, a, s));
        else if (how == SEL_EXCLUDE_SUBS)
            keep = !s || s->returned == SCIM_RET_ALWAYS || !ref_sub(l, a, s);
        else
            keep = !s || s->returned != SCIM_RET_REQUEST;
        if (keep && json_object_set_new(res, k, share(v)) < 0) {
            *oom = true;
            break;
        }
    }
    if (*oom || json_object_size(res) == 0) {
        json_decref(res);
        return NULL;
    }
    return res;
}

/* Adds the projected value of attribute `a` under `key` to `dst`; -1 on out of memory. */
static int add_projected(json_t *dst, const char *key, const struct scim_attr *a, json_t *v,
                         enum sel how, const struct scim_attrlist *attributes,
                         const struct scim_attrlist *excluded)
{
    const struct scim_attrlist *l = how == SEL_INCLUDE_SUBS ? attributes : excluded;
    json_t *nv = NULL;
    bool oom = false;

    if (how == SEL_SKIP)
        return 0;
    if (a->type != SCIM_T_COMPLEX) {
        nv = share(v);
        if (!nv)
            return -1;
    } else if (json_is_object(v)) {
        nv = filter_object(a, v, how, l, &oom);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        nv = json_array();
        if (!nv)
            return -1;
        json_array_foreach(v, i, e) {
            json_t *ne = json_is_object(e) ? filter_object(a, e, how, l, &oom) : share(e);
            if (oom || (ne && json_array_append_new(nv, ne) < 0)) {
                json_decref(nv);
                return -1;
            }
        }
        /* A sub-attribute selection that matched nothing drops the attribute. */
        if (json_array_size(nv) == 0 && how == SEL_INCLUDE_SUBS) {
            json_decref(nv);
            nv = NULL;
        }
    } else {
        nv = share(v);
    }
    if (oom)
        return -1;
    if (!nv)
        return 0;
    return json_object_set_new(dst, key, nv);
}

json_t *scim_project(const struct scim_resource_type *rt, json_t *resource,
                     const struct scim_attrlist *attributes, const struct scim_attrlist *excluded)
{
    const char *key;
    json_t *v;
    json_t *out = json_object();
    if (!out)
        return NULL;
    if (!json_is_object(resource))
        return out;
    json_object_foreach(resource, key, v) {
        const struct scim_schema *sc = rt->schema;
        const struct scim_schema *ext;
        const struct scim_attr *a;
        if (scim_streq_ci(key, "schemas")) {
            if (json_object_set_new(out, key, share(v)) < 0)
                goto fail;
            continue;
        }
        if ((ext = ext_of(rt, key))) {
            const char *k2;
            json_t *v2;
            json_t *sub = json_object();
            if (!sub)
                goto fail;
            if (json_is_object(v)) {
                json_object_foreach(v, k2, v2) {
                    const struct scim_attr *ea = scim_schema_attr(ext, k2);
                    int rc;
                    if (ea)
                        rc = add_projected(sub, k2, ea, v2, decide(ext, ea, attributes, excluded),
                                           attributes, excluded);
                    else if (!attributes || ref_whole_schema(attributes, ext))
                        rc = json_object_set_new(sub, k2, share(v2));
                    else
                        rc = 0;
                    if (rc < 0) {
                        json_decref(sub);
                        goto fail;
                    }
                }
            }
            if (json_object_size(sub) == 0) {
                json_decref(sub);
                continue;
            }
            if (json_object_set_new(out, ext->id, sub) < 0)
                goto fail;
            continue;
        }
        a = scim_schema_attr(rt->schema, key);
        if (!a) {
            a = scim_common_attr(key);
            sc = NULL;
        }
        if (!a) {
            if (!attributes && json_object_set_new(out, key, share(v)) < 0)
                goto fail;
            continue;
        }
        if (add_projected(out, key, a, v, decide(sc, a, attributes, excluded), attributes,
                          excluded) < 0)
            goto fail;
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* ---- output finishing ---------------------------------------------------------------- */

static int set_ref(json_t *elem, const char *base, const char *endpoint)
{
    const char *id = json_string_value(json_object_get(elem, "value"));
    struct scim_buf b;
    int rc;
    if (!json_is_object(elem) || !id)
        return 0;
    scim_buf_init(&b, 0);
    if (scim_buf_printf(&b, "%s%s/%s", base, endpoint, id) < 0) {
        scim_buf_release(&b);
        return -1;
    }
    rc = json_object_set_new(elem, "$ref", json_string(scim_buf_str(&b)));
    scim_buf_release(&b);
    return rc;
}

static int set_refs(json_t *arr, const char *base, bool by_type, const char *endpoint)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *ep = endpoint;
        if (by_type) {
            const char *type = json_string_value(json_object_get(e, "type"));
            ep = type && scim_streq_ci(type, "Group") ? "/Groups" : "/Users";
        }
        if (set_ref(e, base, ep) < 0)
            return -1;
    }
    return 0;
}

int scim_resource_finish(const struct scim_resource_type *rt, json_t *resource, const char *base_url)
{
    json_t *tmp = NULL, *schemas = NULL, *meta;
    const char *key;
    json_t *v;
    char *base = NULL;
    const char *id;
    int rc = -1;
    size_t blen;

    if (!json_is_object(resource))
        return -1;
    base = scim_strdup(base_url ? base_url : "");
    if (!base)
        return -1;
    blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        base[--blen] = '\0';

    schemas = json_array();
    if (!schemas || json_array_append_new(schemas, json_string(rt->schema->id)) < 0)
        goto out;
    for (size_t i = 0; i < rt->n_extensions; i++) {
        const char *ext_id = rt->extensions[i].schema->id;
        const char *found = NULL;
        json_t *ext = get_ci(resource, ext_id, &found);
        if (!ext)
            continue;
        if (strcmp(found, ext_id) != 0) {
            /* Rename a key stored in another case to the canonical URN. */
            json_incref(ext);
            json_object_del(resource, found);
            if (json_object_set_new(resource, ext_id, ext) < 0)
                goto out;
        }
        if (json_array_append_new(schemas, json_string(ext_id)) < 0)
            goto out;
        json_t *mgr = json_object_get(ext, "manager");
        if (json_is_object(mgr) && scim_schema_attr(rt->extensions[i].schema, "manager") &&
            set_ref(mgr, base, "/Users") < 0)
            goto out;
    }
    if (set_refs(json_object_get(resource, "members"), base, true, NULL) < 0 ||
        set_refs(json_object_get(resource, "groups"), base, false, "/Groups") < 0)
        goto out;

    id = json_string_value(json_object_get(resource, "id"));
    meta = json_object_get(resource, "meta");
    if (!json_is_object(meta)) {
        meta = json_object();
        if (!meta || json_object_set_new(resource, "meta", meta) < 0)
            goto out;
    }
    if (!json_object_get(meta, "resourceType") &&
        json_object_set_new(meta, "resourceType", json_string(rt->name)) < 0)
        goto out;
    if (id) {
        struct scim_buf b;
        scim_buf_init(&b, 0);
        if (scim_buf_printf(&b, "%s%s/%s", base, rt->endpoint, id) < 0 ||
            json_object_set_new(meta, "location", json_string(scim_buf_str(&b))) < 0) {
            scim_buf_release(&b);
            goto out;
        }
        scim_buf_release(&b);
    }

    /* Rebuild in reading order: schemas, id, externalId, attributes, meta last. */
    tmp = json_object();
    if (!tmp || json_object_update(tmp, resource) < 0)
        goto out;
    json_object_clear(resource);
    if (json_object_set(resource, "schemas", schemas) < 0)
        goto out;
    if ((v = json_object_get(tmp, "id")) && json_object_set(resource, "id", v) < 0)
        goto out;
    if ((v = json_object_get(tmp, "externalId")) && json_object_set(resource, "externalId", v) < 0)
        goto out;
    json_object_foreach(tmp, key, v) {
        if (strcmp(key, "schemas") == 0 || strcmp(key, "id") == 0 ||
            strcmp(key, "externalId") == 0 || strcmp(key, "meta") == 0)
            continue;
        if (json_object_set(resource, key, v) < 0)
            goto out;
    }
    if (json_object_set(resource, "meta", json_object_get(tmp, "meta")) < 0)
        goto out;
    rc = 0;
out:
    json_decref(tmp);
    json_decref(schemas);
    free(base);
    return rc;
}

/* ---- rendering: finish, project and serialise in one pass ------------------------------ */

/* A member that scim_resource_finish adds to an object (meta.location, "$ref"): it replaces a
 * member of the same name in place, or is appended; with only_if_absent (meta.resourceType) an
 * existing member wins. */
struct extra {
    const char *key;
    const char *val; /* the string value */
    bool only_if_absent;
    bool seen;
};

struct rctx {
    struct scim_buf *b;
    const struct scim_resource_type *rt;
    const struct scim_attrlist *attributes, *excluded;
    const char *base;
    struct scim_buf tmp; /* for "$ref" values */
};

/* Writes the separator and `"key":` (key NULL inside an array). */
static int put_key(struct scim_buf *b, const char *key, bool *first)
{
    if (!*first && scim_buf_addc(b, ',') < 0)
        return -1;
    *first = false;
    if (!key)
        return 0;
    if (scim_json_dump_string(b, key, strlen(key)) < 0 || scim_buf_addc(b, ':') < 0)
        return -1;
    return 0;
}

static int put_kv(struct scim_buf *b, const char *key, const json_t *v, bool *first)
{
    return put_key(b, key, first) < 0 || scim_json_dump_append(b, v) < 0 ? -1 : 0;
}

static int put_kstr(struct scim_buf *b, const char *key, const char *s, bool *first)
{
    return put_key(b, key, first) < 0 || scim_json_dump_string(b, s, strlen(s)) < 0 ? -1 : 0;
}

static bool keep_sub(const struct scim_attr *a, const char *k, enum sel how,
                     const struct scim_attrlist *l)
{
    const struct scim_attr *s = scim_attr_sub(a, k);
    if (s && s->returned == SCIM_RET_NEVER)
        return false;
    if (how == SEL_INCLUDE_SUBS)
        return s && (s->returned == SCIM_RET_ALWAYS || ref_sub(l, a, s));
    if (how == SEL_EXCLUDE_SUBS)
        return !s || s->returned == SCIM_RET_ALWAYS || !ref_sub(l, a, s);
    return !s || s->returned != SCIM_RET_REQUEST;
}

/* filter_object, written: `key:{...}` with the kept members of obj (NULL: none) and the
 * extras; nothing at all when no member is kept. */
static int put_filtered(struct scim_buf *b, const char *key, const struct scim_attr *a, json_t *obj,
                        enum sel how, const struct scim_attrlist *l, struct extra *ex, size_t nex,
                        bool *first)
{
    size_t mark = b->len;
    bool was_first = *first, inner = true;
    const char *k;
    json_t *v;
    if (put_key(b, key, first) < 0 || scim_buf_addc(b, '{') < 0)
        return -1;
    if (obj) {
        json_object_foreach(obj, k, v) {
            const struct extra *over = NULL;
            for (size_t i = 0; i < nex; i++)
                if (strcmp(ex[i].key, k) == 0) {
                    ex[i].seen = true;
                    if (!ex[i].only_if_absent)
                        over = &ex[i];
                }
            if (!keep_sub(a, k, how, l))
                continue;
            if ((over ? put_kstr(b, k, over->val, &inner) : put_kv(b, k, v, &inner)) < 0)
                return -1;
        }
    }
    for (size_t i = 0; i < nex; i++)
        if (!ex[i].seen && keep_sub(a, ex[i].key, how, l) &&
            put_kstr(b, ex[i].key, ex[i].val, &inner) < 0)
            return -1;
    if (inner) { /* nothing kept: the object is left out */
        scim_buf_truncate(b, mark);
        *first = was_first;
        return 0;
    }
    return scim_buf_addc(b, '}');
}

/* The "$ref" scim_resource_finish gives an element of members/groups/manager, or NULL. */
static const char *ref_of(struct rctx *c, json_t *elem, const char *endpoint)
{
    const char *id = json_string_value(json_object_get(elem, "value"));
    if (!json_is_object(elem) || !id)
        return NULL;
    if (!endpoint) {
        const char *type = json_string_value(json_object_get(elem, "type"));
        endpoint = type && scim_streq_ci(type, "Group") ? "/Groups" : "/Users";
    }
    scim_buf_reset(&c->tmp);
    if (scim_buf_adds(&c->tmp, c->base) < 0 || scim_buf_adds(&c->tmp, endpoint) < 0 ||
        scim_buf_addc(&c->tmp, '/') < 0 || scim_buf_adds(&c->tmp, id) < 0)
        return NULL;
    return scim_buf_str(&c->tmp);
}

/* add_projected, written. ref_endpoint: the elements of this array get "$ref" ("" = by their
 * type); ex/nex: extras of a single complex value (v NULL: an object of the extras alone). */
static int put_projected(struct rctx *c, const char *key, const struct scim_attr *a, json_t *v,
                         enum sel how, const char *ref_endpoint, struct extra *ex, size_t nex,
                         bool *first)
{
    struct scim_buf *b = c->b;
    const struct scim_attrlist *l = how == SEL_INCLUDE_SUBS ? c->attributes : c->excluded;
    if (how == SEL_SKIP)
        return 0;
    bool has_ex = ex && nex > 0;
    if (a->type != SCIM_T_COMPLEX || !(json_is_object(v) || json_is_array(v) || has_ex))
        return put_kv(b, key, v, first);
    if (!json_is_array(v))
        return put_filtered(b, key, a, json_is_object(v) ? v : NULL, how, l, ex, nex, first);
    size_t mark = b->len, i;
    bool was_first = *first, inner = true;
    json_t *e;
    if (put_key(b, key, first) < 0 || scim_buf_addc(b, '[') < 0)
        return -1;
    json_array_foreach(v, i, e) {
        if (!json_is_object(e)) {
            if (put_kv(b, NULL, e, &inner) < 0)
                return -1;
            continue;
        }
        struct extra ref = {"$ref", NULL, false, false};
        if (ref_endpoint)
            ref.val = ref_of(c, e, *ref_endpoint ? ref_endpoint : NULL);
        if (ref_endpoint && !ref.val && json_string_value(json_object_get(e, "value")))
            return -1; /* out of memory building the $ref */
        if (put_filtered(b, NULL, a, e, how, l, &ref, ref.val ? 1 : 0, &inner) < 0)
            return -1;
    }
    if (inner && how == SEL_INCLUDE_SUBS) { /* a selection that matched nothing */
        scim_buf_truncate(b, mark);
        *first = was_first;
        return 0;
    }
    return scim_buf_addc(b, ']');
}

/* One member of the finished resource, projected (the body of scim_project's loop). */
static int put_top(struct rctx *c, const char *key, json_t *v, struct extra *meta_ex, size_t n_meta,
                   bool *first)
{
    const struct scim_resource_type *rt = c->rt;
    const struct scim_schema *sc = rt->schema, *ext;
    const struct scim_attr *a;
    struct scim_buf *b = c->b;

    if (scim_streq_ci(key, "schemas"))
        return put_kv(b, key, v, first);
    if ((ext = ext_of(rt, key))) {
        size_t mark = b->len;
        bool was_first = *first, inner = true;
        const char *k2;
        json_t *v2;
        if (put_key(b, ext->id, first) < 0 || scim_buf_addc(b, '{') < 0)
            return -1;
        if (json_is_object(v)) {
            json_object_foreach(v, k2, v2) {
                const struct scim_attr *ea = scim_schema_attr(ext, k2);
                int rc = 0;
                if (ea) {
                    enum sel how = decide(ext, ea, c->attributes, c->excluded);
                    struct extra ref = {"$ref", NULL, false, false};
                    if (strcmp(k2, "manager") == 0 && json_is_object(v2) &&
                        scim_schema_attr(ext, "manager")) {
                        ref.val = ref_of(c, v2, "/Users");
                        if (!ref.val && json_string_value(json_object_get(v2, "value")))
                            return -1;
                    }
                    rc = put_projected(c, k2, ea, v2, how, NULL, &ref, ref.val ? 1 : 0, &inner);
                } else if (!c->attributes || ref_whole_schema(c->attributes, ext)) {
                    rc = put_kv(b, k2, v2, &inner);
                }
                if (rc < 0)
                    return -1;
            }
        }
        if (inner) {
            scim_buf_truncate(b, mark);
            *first = was_first;
            return 0;
        }
        return scim_buf_addc(b, '}');
    }
    a = scim_schema_attr(rt->schema, key);
    if (!a) {
        a = scim_common_attr(key);
        sc = NULL;
    }
    if (!a)
        return c->attributes ? 0 : put_kv(b, key, v, first);
    enum sel how = decide(sc, a, c->attributes, c->excluded);
    const char *ref_ep = strcmp(key, "members") == 0 ? "" : strcmp(key, "groups") == 0 ? "/Groups" : NULL;
    if (strcmp(key, "meta") == 0)
        return put_projected(c, key, a, json_is_object(v) ? v : NULL, how, NULL, meta_ex, n_meta,
                             first);
    return put_projected(c, key, a, v, how, ref_ep, NULL, 0, first);
}

/* An extension key stored in another case than its URN: finish renames it, which moves it to
 * the end. */
static bool renamed_ext(const struct scim_resource_type *rt, json_t *resource, const char *key)
{
    for (size_t i = 0; i < rt->n_extensions; i++) {
        const char *ext_id = rt->extensions[i].schema->id;
        const char *found = NULL;
        if (get_ci(resource, ext_id, &found) && strcmp(found, key) == 0 && strcmp(found, ext_id) != 0)
            return true;
    }
    return false;
}

int scim_resource_location(const struct scim_resource_type *rt, const char *base_url, const char *id,
                           struct scim_buf *out)
{
    size_t blen = base_url ? strlen(base_url) : 0;
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    if (scim_buf_add(out, base_url ? base_url : "", blen) < 0 ||
        scim_buf_adds(out, rt->endpoint) < 0 || scim_buf_addc(out, '/') < 0 ||
        scim_buf_adds(out, id) < 0)
        return -1;
    return 0;
}

int scim_render(struct scim_buf *out, const struct scim_resource_type *rt, json_t *resource,
                const struct scim_attrlist *attributes, const struct scim_attrlist *excluded,
                const char *base_url)
{
    struct rctx c = {out, rt, attributes, excluded, NULL, {0}};
    struct scim_buf base, loc;
    const char *key;
    json_t *v;
    bool first = true;
    int rc = -1;
    size_t mark = out->len;

    if (!json_is_object(resource))
        return -1;
    scim_buf_init(&base, 0);
    scim_buf_init(&loc, 0);
    scim_buf_init(&c.tmp, 0);
    size_t blen = base_url ? strlen(base_url) : 0;
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    if (scim_buf_add(&base, base_url ? base_url : "", blen) < 0)
        goto out;
    c.base = scim_buf_str(&base);

    const char *id = json_string_value(json_object_get(resource, "id"));
    json_t *meta = json_object_get(resource, "meta");
    struct extra meta_ex[2];
    size_t n_meta = 0;
    meta_ex[n_meta++] = (struct extra){"resourceType", rt->name, true, false};
    if (id) {
        if (scim_resource_location(rt, c.base, id, &loc) < 0)
            goto out;
        meta_ex[n_meta++] = (struct extra){"location", scim_buf_str(&loc), false, false};
    }

    if (scim_buf_addc(out, '{') < 0)
        goto out;
    /* schemas: the core schema and each extension present (scim_resource_finish), always
     * returned */
    if (put_key(out, "schemas", &first) < 0 || scim_buf_addc(out, '[') < 0 ||
        scim_json_dump_string(out, rt->schema->id, strlen(rt->schema->id)) < 0)
        goto out;
    for (size_t i = 0; i < rt->n_extensions; i++) {
        const char *ext_id = rt->extensions[i].schema->id;
        if (get_ci(resource, ext_id, NULL) &&
            (scim_buf_addc(out, ',') < 0 || scim_json_dump_string(out, ext_id, strlen(ext_id)) < 0))
            goto out;
    }
    if (scim_buf_addc(out, ']') < 0)
        goto out;
    /* then the order of scim_resource_finish: id, externalId, the rest, renamed extensions,
     * meta */
    if ((v = json_object_get(resource, "id")) && put_top(&c, "id", v, NULL, 0, &first) < 0)
        goto out;
    if ((v = json_object_get(resource, "externalId")) && put_top(&c, "externalId", v, NULL, 0, &first) < 0)
        goto out;
    json_object_foreach(resource, key, v) {
        if (strcmp(key, "schemas") == 0 || strcmp(key, "id") == 0 ||
            strcmp(key, "externalId") == 0 || strcmp(key, "meta") == 0 ||
            (rt->n_extensions && scim_strncasecmp(key, "urn:", 4) == 0 && renamed_ext(rt, resource, key)))
            continue;
        if (put_top(&c, key, v, NULL, 0, &first) < 0)
            goto out;
    }
    for (size_t i = 0; i < rt->n_extensions; i++) {
        const char *ext_id = rt->extensions[i].schema->id;
        const char *found = NULL;
        json_t *ext = get_ci(resource, ext_id, &found);
        if (ext && strcmp(found, ext_id) != 0 && put_top(&c, ext_id, ext, NULL, 0, &first) < 0)
            goto out;
    }
    if (put_top(&c, "meta", meta, meta_ex, n_meta, &first) < 0 || scim_buf_addc(out, '}') < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        scim_buf_truncate(out, mark);
    scim_buf_release(&base);
    scim_buf_release(&loc);
    scim_buf_release(&c.tmp);
    return rc;
}
