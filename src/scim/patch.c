/* The PATCH engine. Every operation is applied to a deep copy of the resource and to a local
 * member change; both are handed to the caller only when the whole request succeeded, so a
 * failing third operation leaves `resource` and *mc exactly as they were (RFC 7644 §3.5.2:
 * a PATCH request is atomic).
 *
 * Error choices where RFC 7644 leaves room:
 *  - a path naming no attribute of the resource type: 400 invalidPath (the path is invalid for
 *    this schema); noTarget is kept for a value filter that selects nothing (§3.12);
 *  - remove on attr[filter] that matches nothing is a no-op (idempotent retries by IdPs),
 *    while replace on attr[filter] without a sub-attribute and no match is 400 noTarget;
 *  - removing (or nulling) a required attribute: 400 mutability (§3.5.2);
 *  - a JSON null value on add/replace means "unassigned" (RFC 7643 §2.5): replace removes the
 *    attribute, add does nothing. */
#include "scim/patch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "scim/compat.h"
#include "scim/resource.h"

enum opkind { OP_ADD, OP_REPLACE, OP_REMOVE };

struct ctx {
    const struct scim_patch_opts *o;
    const struct scim_resource_type *rt;
    json_t *res;         /* the working copy */
    const char *id;      /* the resource's own id, or NULL */
    bool members_loaded; /* resource["members"] was given by the caller */
    bool want_mc;        /* the caller passed a member change */
    struct scim_member_change mc;
    uint32_t compat;
    char *password; /* see scim_patch_result.password */
    struct scim_err *err;
};

/* A resolved attribute reference. `ext` is set when the attribute lives in the extension
 * object resource[schema->id]. */
struct target {
    const struct scim_schema *schema;
    const struct scim_attr *attr;
    const struct scim_attr *sub;
    bool ext;
};

static int apply_nopath(struct ctx *c, enum opkind kind, json_t *value);

/* --- small JSON helpers ---------------------------------------------------------------- */

/* Stored resources carry canonical names, but clients spell them as they like: look keys up
 * case-insensitively everywhere. */
static json_t *get_ci(json_t *obj, const char *name, const char **key_out)
{
    const char *k;
    json_t *v;
    if (!json_is_object(obj))
        return NULL;
    json_object_foreach(obj, k, v) {
        if (scim_streq_ci(k, name)) {
            if (key_out)
                *key_out = k;
            return v;
        }
    }
    return NULL;
}

static void del_ci(json_t *obj, const char *name)
{
    const char *k;
    while (get_ci(obj, name, &k) != NULL)
        json_object_del(obj, k);
}

/* Sets obj[name] (canonical spelling), dropping other spellings; steals `v`. */
static int set_canon_new(json_t *obj, const char *name, json_t *v)
{
    const char *k;
    json_t *cur = get_ci(obj, name, &k);
    if (cur && strcmp(k, name) != 0)
        json_object_del(obj, k);
    return json_object_set_new(obj, name, v);
}

static bool is_member_attr(const struct ctx *c, const struct target *t)
{
    return c->rt->kind == SCIM_RT_GROUP && !t->ext && t->schema == c->rt->schema &&
           scim_streq_ci(t->attr->name, "members");
}

/* Equality of two values of `attr` (a simple attribute or sub-attribute): strings compare
 * case-insensitively unless the attribute is caseExact. */
static bool simple_equal(const struct scim_attr *attr, json_t *a, json_t *b)
{
    if (json_is_string(a) && json_is_string(b) && attr && !attr->case_exact)
        return scim_streq_ci(json_string_value(a), json_string_value(b));
    return json_equal(a, b) != 0;
}

/* Every sub-attribute given in `part` has the same value in `whole`. */
static bool subset_equal(const struct scim_attr *attr, json_t *part, json_t *whole)
{
    const char *k;
    json_t *v;
    if (!json_is_object(part) || !json_is_object(whole))
        return simple_equal(attr, part, whole);
    json_object_foreach(part, k, v) {
        json_t *w = get_ci(whole, k, NULL);
        if (!w || !simple_equal(scim_attr_sub(attr, k), v, w))
            return false;
    }
    return true;
}

/* The element of `arr` that a new element `e` designates: same "value" (and same "type" when
 * both have one; members are keyed by value only), or for elements without "value" one that
 * already holds every sub-attribute of `e`. */
static json_t *find_same(const struct scim_attr *attr, bool is_members, json_t *arr, json_t *e)
{
    size_t i;
    json_t *x;
    json_t *ev = json_is_object(e) ? get_ci(e, "value", NULL) : NULL;
    json_array_foreach(arr, i, x) {
        if (!json_is_object(e)) {
            if (simple_equal(attr, e, x))
                return x;
            continue;
        }
        if (ev) {
            json_t *xv = get_ci(x, "value", NULL);
            if (!xv || !simple_equal(scim_attr_sub(attr, "value"), ev, xv))
                continue;
            if (!is_members) {
                json_t *et = get_ci(e, "type", NULL), *xt = get_ci(x, "type", NULL);
                if (et && xt && !simple_equal(scim_attr_sub(attr, "type"), et, xt))
                    continue;
            }
            return x;
        }
        if (subset_equal(attr, e, x))
            return x;
    }
    return NULL;
}

static bool in_array_ptr(json_t *arr, json_t *x)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (v == x)
            return true;
    return false;
}

/* --- member change bookkeeping ----------------------------------------------------------- */

static long find_id(json_t *arr, const char *id, bool objects)
{
    size_t i;
    json_t *v;
    if (!arr)
        return -1;
    json_array_foreach(arr, i, v) {
        json_t *s = objects ? json_object_get(v, "value") : v;
        if (json_is_string(s) && strcmp(json_string_value(s), id) == 0)
            return (long)i;
    }
    return -1;
}

static int mc_clear(struct ctx *c)
{
    c->mc.clear = true;
    if (c->mc.add)
        json_array_clear(c->mc.add);
    if (c->mc.remove)
        json_array_clear(c->mc.remove);
    return 0;
}

/* An add after a remove of the same id re-adds it; a repeated add updates display/type. */
static int mc_add(struct ctx *c, json_t *member)
{
    const char *id = json_string_value(json_object_get(member, "value"));
    long i = find_id(c->mc.remove, id, false);
    if (i >= 0)
        json_array_remove(c->mc.remove, (size_t)i);
    if (!c->mc.add && !(c->mc.add = json_array()))
        return scim_err_nomem(c->err);
    i = find_id(c->mc.add, id, true);
    if (i >= 0)
        return json_array_set(c->mc.add, (size_t)i, member) ? scim_err_nomem(c->err) : 0;
    return json_array_append(c->mc.add, member) ? scim_err_nomem(c->err) : 0;
}

/* A remove after an add of the same id cancels the add. The id is still listed for removal:
 * it may have been a member before the request. */
static int mc_remove(struct ctx *c, const char *id)
{
    long i = find_id(c->mc.add, id, true);
    if (i >= 0)
        json_array_remove(c->mc.add, (size_t)i);
    if (find_id(c->mc.remove, id, false) >= 0)
        return 0;
    if (!c->mc.remove && !(c->mc.remove = json_array()))
        return scim_err_nomem(c->err);
    return json_array_append_new(c->mc.remove, json_string(id)) ? scim_err_nomem(c->err) : 0;
}

/* Normalises a members value into a new array of {"value","display"?,"type"?}: a single
 * element is wrapped, bare strings become {"value"} (member_bare_string), "displayName" is kept
 * as "display" (member_displayname), "$ref" and unknown keys are dropped. */
static int members_normalize(struct ctx *c, json_t *value, json_t **out)
{
    json_t *arr = json_array(), *src = value;
    size_t i;
    json_t *e;
    *out = NULL;
    if (!arr)
        return scim_err_nomem(c->err);
    if (!json_is_array(value))
        src = NULL;
    for (i = 0; src ? i < json_array_size(src) : i < 1; i++) {
        e = src ? json_array_get(src, i) : value;
        json_t *m = NULL, *v, *d, *t;
        if (json_is_null(e))
            continue;
        if (json_is_string(e)) {
            c->compat |= SCIM_COMPAT_MEMBER_BARE_STRING;
            m = json_pack("{s:O}", "value", e);
        } else if (json_is_object(e)) {
            v = get_ci(e, "value", NULL);
            if (!json_is_string(v) || json_string_length(v) == 0) {
                json_decref(arr);
                return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_VALUE,
                                    "Each member needs a non-empty string \"value\".");
            }
            m = json_pack("{s:O}", "value", v);
            d = get_ci(e, "display", NULL);
            if (!d && (d = get_ci(e, "displayName", NULL)) != NULL)
                c->compat |= SCIM_COMPAT_MEMBER_DISPLAYNAME;
            if (m && json_is_string(d))
                json_object_set(m, "display", d);
            t = get_ci(e, "type", NULL);
            if (m && json_is_string(t))
                json_object_set(m, "type", t);
        } else {
            json_decref(arr);
            return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_VALUE,
                                "A member must be an object with \"value\" or an id string.");
        }
        if (!m || json_array_append_new(arr, m)) {
            json_decref(arr);
            return scim_err_nomem(c->err);
        }
    }
    *out = arr;
    return 0;
}

/* Collects the ids of a filter made only of `value eq "id"` joined by "or". */
static bool filter_ids(const struct scim_filter *f, json_t *ids)
{
    if (!f)
        return false;
    if (f->op == SCIM_F_OR)
        return filter_ids(f->left, ids) && filter_ids(f->right, ids);
    if (f->op == SCIM_F_EQ && !f->path.urn && !f->path.sub && f->path.attr &&
        scim_streq_ci(f->path.attr, "value") && f->val.type == SCIM_V_STRING && f->val.str)
        return json_array_append_new(ids, json_string(f->val.str)) == 0;
    return false;
}

/* Membership operations when the caller did not load the members: they become row changes. */
static int members_op(struct ctx *c, enum opkind kind, const struct scim_path *p, json_t *value,
                      bool has_value)
{
    json_t *list = NULL;
    int rc = -1;
    size_t i;
    json_t *e;

    if (!c->want_mc)
        return scim_err_internal(c->err, "PATCH on members without a member change");
    if (p->a.sub || (p->filter && kind != OP_REMOVE))
        return scim_err_internal(c->err, "PATCH needs the group's members loaded");
    if (p->filter) {
        json_t *ids = json_array();
        if (!ids)
            return scim_err_nomem(c->err);
        if (!filter_ids(p->filter, ids)) {
            json_decref(ids);
            return scim_err_internal(c->err, "PATCH needs the group's members loaded");
        }
        json_array_foreach(ids, i, e) {
            if (mc_remove(c, json_string_value(e)) != 0) {
                json_decref(ids);
                return -1;
            }
        }
        json_decref(ids);
        return 0;
    }
    if (kind == OP_REMOVE && (!has_value || json_is_null(value)))
        return mc_clear(c);
    if (!has_value)
        return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_SYNTAX, "The operation needs a \"value\".");
    if (members_normalize(c, value, &list) != 0)
        return -1;
    if (kind == OP_REMOVE) {
        c->compat |= SCIM_COMPAT_MEMBER_VALUE_REMOVE;
        json_array_foreach(list, i, e)
            if (mc_remove(c, json_string_value(json_object_get(e, "value"))) != 0)
                goto out;
        rc = 0;
        goto out;
    }
    if (kind == OP_REPLACE)
        mc_clear(c);
    json_array_foreach(list, i, e)
        if (mc_add(c, e) != 0)
            goto out;
    rc = 0;
out:
    json_decref(list);
    return rc;
}

/* --- values ------------------------------------------------------------------------------ */

/* Normalises `value` for `attr`; *out is NULL when the value means "unassigned". A manager
 * given as a string or a one-element array becomes {"value": ...} (manager_string). */
static int norm(struct ctx *c, const struct scim_attr *attr, json_t *value, bool as_element,
                json_t **out)
{
    json_t *tmp = NULL;
    int rc;
    *out = NULL;
    if (json_is_null(value))
        return 0;
    if (attr->type == SCIM_T_COMPLEX && !attr->multi_valued && scim_streq_ci(attr->name, "manager")) {
        if (json_is_array(value) && json_array_size(value) == 1) {
            value = json_array_get(value, 0);
            c->compat |= SCIM_COMPAT_MANAGER_STRING;
        }
        if (json_is_string(value)) {
            if (!(tmp = json_pack("{s:O}", "value", value)))
                return scim_err_nomem(c->err);
            value = tmp;
            c->compat |= SCIM_COMPAT_MANAGER_STRING;
        }
    }
    rc = scim_value_normalize(c->o->reg, attr, value, as_element, out, &c->compat, c->err);
    json_decref(tmp);
    return rc;
}

static int mut_error(struct ctx *c, const char *name, const char *why)
{
    return scim_err_set(c->err, 400, SCIM_TYPE_MUTABILITY, "Attribute '%s' %s.", name, why);
}

/* The object holding the target attribute: the resource, or its extension object (created
 * when `create`). NULL when absent and not created (or out of memory with create). */
static json_t *container(struct ctx *c, const struct target *t, bool create)
{
    json_t *ext;
    if (!t->ext)
        return c->res;
    ext = get_ci(c->res, t->schema->id, NULL);
    if (json_is_object(ext) || !create)
        return json_is_object(ext) ? ext : NULL;
    ext = json_object();
    if (!ext || set_canon_new(c->res, t->schema->id, ext) != 0)
        return NULL;
    return ext;
}

/* An extension object left empty is dropped: the extension is no longer present. */
static void prune(struct ctx *c, const struct target *t)
{
    json_t *ext;
    if (!t->ext)
        return;
    ext = get_ci(c->res, t->schema->id, NULL);
    if (ext && json_is_object(ext) && json_object_size(ext) == 0)
        del_ci(c->res, t->schema->id);
}

/* Sets cont[attr] = v (stolen) unless immutable with a different existing value. */
static int set_checked(struct ctx *c, enum opkind kind, json_t *cont, const struct scim_attr *a,
                       json_t *v)
{
    json_t *old = get_ci(cont, a->name, NULL);
    if (old && !simple_equal(a, old, v)) {
        if (a->mutability == SCIM_MUT_IMMUTABLE) {
            json_decref(v);
            return mut_error(c, a->name, "is immutable");
        }
        if (kind == OP_ADD && !a->multi_valued && a->type != SCIM_T_COMPLEX)
            c->compat |= SCIM_COMPAT_ADD_REPLACES_SINGLE;
    }
    if (old && json_equal(old, v)) {
        json_decref(v);
        return 0;
    }
    return set_canon_new(cont, a->name, v) ? scim_err_nomem(c->err) : 0;
}

/* Merges the sub-attributes of `v` into the complex object `dst`. With `keep_equal`, a
 * sub-attribute whose value only differs in case (where case does not matter) is left as
 * stored: the new element was recognised as the same value, not as an edit. */
static int merge_obj(struct ctx *c, enum opkind kind, const struct scim_attr *attr, json_t *dst,
                     json_t *v, bool keep_equal)
{
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        const struct scim_attr *s = scim_attr_sub(attr, k);
        json_t *old;
        if (!s)
            continue; /* normalisation dropped unknown names already; be safe */
        if (keep_equal && (old = get_ci(dst, s->name, NULL)) != NULL && simple_equal(s, old, x))
            continue;
        if (set_checked(c, kind, dst, s, json_incref(x)) != 0)
            return -1;
    }
    return 0;
}

static int remove_attr(struct ctx *c, const struct target *t)
{
    json_t *cont = container(c, t, false);
    if (t->attr->required)
        return mut_error(c, t->attr->name, "is required and cannot be removed");
    if (cont)
        del_ci(cont, t->attr->name);
    prune(c, t);
    return 0;
}

/* --- single-valued attributes ------------------------------------------------------------ */

static int single_op(struct ctx *c, enum opkind kind, const struct target *t, json_t *value)
{
    json_t *cont, *cur, *v = NULL;
    const struct scim_attr *a = t->attr, *s = t->sub;

    if (kind == OP_REMOVE && !s)
        return remove_attr(c, t);
    if (kind == OP_REMOVE) {
        if (s->required)
            return mut_error(c, s->name, "is required and cannot be removed");
        cur = get_ci(container(c, t, false), a->name, NULL);
        del_ci(cur, s->name);
        if (cur && json_object_size(cur) == 0)
            del_ci(container(c, t, false), a->name);
        prune(c, t);
        return 0;
    }
    if (norm(c, s ? s : a, value, false, &v) != 0)
        return -1;
    if (!v) {
        if (kind == OP_ADD)
            return 0;
        return single_op(c, OP_REMOVE, t, NULL);
    }
    if (!(cont = container(c, t, true))) {
        json_decref(v);
        return scim_err_nomem(c->err);
    }
    if (s) {
        cur = get_ci(cont, a->name, NULL);
        if (!json_is_object(cur)) {
            if (!(cur = json_object()) || set_canon_new(cont, a->name, cur) != 0) {
                json_decref(v);
                return scim_err_nomem(c->err);
            }
        }
        return set_checked(c, kind, cur, s, v);
    }
    if (a->type == SCIM_T_COMPLEX) {
        int rc;
        cur = get_ci(cont, a->name, NULL);
        if (!json_is_object(v)) {
            json_decref(v);
            return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_VALUE,
                                "Attribute '%s' needs an object value.", a->name);
        }
        if (!json_is_object(cur))
            return set_checked(c, kind, cont, a, v);
        rc = merge_obj(c, kind, a, cur, v, false);
        json_decref(v);
        return rc;
    }
    return set_checked(c, kind, cont, a, v);
}

/* --- multi-valued attributes ------------------------------------------------------------- */

/* Builds the element implied by a filter's eq comparisons joined by "and" (type eq "work"). */
static bool filter_element(const struct scim_filter *f, const struct scim_attr *attr, json_t *elem)
{
    const struct scim_attr *s;
    json_t *v = NULL;
    if (!f)
        return false;
    if (f->op == SCIM_F_AND)
        return filter_element(f->left, attr, elem) && filter_element(f->right, attr, elem);
    if (f->op != SCIM_F_EQ || f->path.urn || f->path.sub || !f->path.attr)
        return false;
    if (!(s = scim_attr_sub(attr, f->path.attr)))
        return false;
    switch (f->val.type) {
    case SCIM_V_STRING: v = json_string(f->val.str ? f->val.str : ""); break;
    case SCIM_V_BOOL: v = json_boolean(f->val.b); break;
    case SCIM_V_NUMBER: v = f->val.is_integer ? json_integer(f->val.i) : json_real(f->val.num); break;
    case SCIM_V_NULL: return false;
    }
    return v && json_object_set_new(elem, s->name, v) == 0;
}

/* After elements in `touched` were set, one of them carrying primary=true makes it the only
 * primary value (RFC 7643 §2.4): the others lose their flag. */
static void fix_primary(const struct scim_attr *attr, json_t *arr, json_t *touched)
{
    size_t i;
    json_t *e;
    bool have = false;
    if (!scim_attr_sub(attr, "primary") || !json_is_array(arr))
        return;
    json_array_foreach(touched, i, e)
        if (json_is_true(get_ci(e, "primary", NULL)))
            have = true;
    if (!have)
        return;
    json_array_foreach(arr, i, e) {
        const char *k;
        if (!in_array_ptr(touched, e) && json_is_true(get_ci(e, "primary", &k)))
            json_object_set_new(e, k, json_false());
    }
}

/* remove with a path naming the whole attribute and a value: only the listed values go
 * (member_value_remove for members, sent by Entra, authentik, ssosync). */
static int remove_values(struct ctx *c, const struct target *t, json_t *value)
{
    json_t *cont = container(c, t, false);
    json_t *arr = get_ci(cont, t->attr->name, NULL), *list = NULL, *e;
    bool members = is_member_attr(c, t);
    size_t i;

    if (members) {
        c->compat |= SCIM_COMPAT_MEMBER_VALUE_REMOVE;
        if (members_normalize(c, value, &list) != 0)
            return -1;
    } else if (norm(c, t->attr, value, false, &list) != 0) {
        return -1;
    }
    if (list && !json_is_array(list)) {
        json_t *w = json_array();
        if (!w || json_array_append_new(w, list) != 0) {
            json_decref(w);
            json_decref(list);
            return scim_err_nomem(c->err);
        }
        list = w;
    }
    json_array_foreach(list, i, e) {
        json_t *same;
        while (json_is_array(arr) && (same = find_same(t->attr, members, arr, e)) != NULL) {
            size_t j;
            json_t *x;
            json_array_foreach(arr, j, x)
                if (x == same)
                    break;
            json_array_remove(arr, j);
        }
    }
    json_decref(list);
    if (json_is_array(arr) && json_array_size(arr) == 0) {
        if (t->attr->required)
            return mut_error(c, t->attr->name, "is required and cannot be removed");
        del_ci(cont, t->attr->name);
    }
    prune(c, t);
    return 0;
}

static int multi_remove(struct ctx *c, const struct target *t, const struct scim_path *p,
                        json_t *value)
{
    json_t *cont = container(c, t, false);
    json_t *arr = get_ci(cont, t->attr->name, NULL);
    size_t i;

    if (!p->filter && !t->sub && value && !json_is_null(value))
        return remove_values(c, t, value);
    if (!p->filter && !t->sub)
        return remove_attr(c, t);
    if (t->sub && t->sub->required)
        return mut_error(c, t->sub->name, "is required and cannot be removed");
    if (!json_is_array(arr))
        return 0;
    for (i = json_array_size(arr); i-- > 0;) {
        json_t *e = json_array_get(arr, i);
        if (p->filter && !scim_filter_match(p->filter, e, c->rt, t->attr))
            continue;
        if (t->sub)
            del_ci(e, t->sub->name);
        else
            json_array_remove(arr, i);
    }
    if (json_array_size(arr) == 0) {
        if (t->attr->required)
            return mut_error(c, t->attr->name, "is required and cannot be removed");
        del_ci(cont, t->attr->name);
    }
    prune(c, t);
    return 0;
}

static int multi_op(struct ctx *c, enum opkind kind, const struct target *t,
                    const struct scim_path *p, json_t *value)
{
    const struct scim_attr *a = t->attr, *s = t->sub;
    json_t *cont, *arr, *v = NULL, *touched = NULL, *e;
    bool members = is_member_attr(c, t);
    int rc = -1;
    size_t i;

    if (kind == OP_REMOVE)
        return multi_remove(c, t, p, value);
    if (p->filter && a->type != SCIM_T_COMPLEX)
        return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_PATH,
                            "A value filter needs a complex attribute, not '%s'.", a->name);
    /* value normalisation first: for add/replace it decides everything else */
    if (members && !s && !p->filter) {
        if (members_normalize(c, value, &v) != 0)
            return -1;
    } else if (s) {
        if (norm(c, s, value, false, &v) != 0)
            return -1;
    } else if (norm(c, a, value, p->filter != NULL, &v) != 0) {
        return -1;
    }
    if (!v) {
        if (kind == OP_ADD)
            return 0;
        return multi_remove(c, t, p, NULL);
    }
    if (!(touched = json_array()) || !(cont = container(c, t, true)))
        goto nomem;
    arr = get_ci(cont, a->name, NULL);
    if (!json_is_array(arr)) {
        if (!(arr = json_array()) || set_canon_new(cont, a->name, arr) != 0)
            goto nomem;
    }

    if (!p->filter && !s) {
        if (!json_is_array(v)) {
            json_t *w = json_array();
            if (!w || json_array_append_new(w, v) != 0) {
                json_decref(w);
                goto nomem;
            }
            v = w;
        }
        if (kind == OP_REPLACE) {
            if (json_array_size(v) == 0) {
                rc = remove_attr(c, t);
                goto out;
            }
            if (set_canon_new(cont, a->name, json_incref(v)) != 0)
                goto nomem;
            arr = v;
            json_array_foreach(arr, i, e)
                json_array_append(touched, e);
        } else {
            json_array_foreach(v, i, e) {
                json_t *same = find_same(a, members, arr, e);
                if (same && members) {
                    continue; /* already a member; its sub-attributes are immutable */
                } else if (same && json_is_object(e)) {
                    if (merge_obj(c, kind, a, same, e, true) != 0)
                        goto out;
                    json_array_append(touched, same);
                } else if (!same) {
                    if (json_array_append(arr, e) != 0)
                        goto nomem;
                    json_array_append(touched, e);
                }
            }
        }
    } else {
        size_t matched = 0;
        json_array_foreach(arr, i, e) {
            if (p->filter && !scim_filter_match(p->filter, e, c->rt, a))
                continue;
            matched++;
            if (s) {
                if (set_checked(c, kind, e, s, json_incref(v)) != 0)
                    goto out;
            } else {
                if (!json_is_object(v)) {
                    rc = scim_err_set(c->err, 400, SCIM_TYPE_INVALID_VALUE,
                                      "The value for '%s[...]' must be an object.", a->name);
                    goto out;
                }
                if (merge_obj(c, kind, a, e, v, false) != 0)
                    goto out;
            }
            json_array_append(touched, e);
        }
        if (matched == 0) {
            json_t *ne;
            if (!s) {
                rc = scim_err_set(c->err, 400, SCIM_TYPE_NO_TARGET,
                                  "No value of '%s' matches the filter.", a->name);
                goto out;
            }
            if (!(ne = json_object()))
                goto nomem;
            if (p->filter && !filter_element(p->filter, a, ne)) {
                json_decref(ne);
                rc = scim_err_set(c->err, 400, SCIM_TYPE_NO_TARGET,
                                  "No value of '%s' matches the filter.", a->name);
                goto out;
            }
            if (json_object_set(ne, s->name, v) != 0 || json_array_append_new(arr, ne) != 0)
                goto nomem;
            if (p->filter)
                c->compat |= SCIM_COMPAT_CREATE_ON_FILTER_PATH;
            json_array_append(touched, ne);
        }
    }
    fix_primary(a, arr, touched);
    if (json_array_size(arr) == 0)
        del_ci(cont, a->name);
    rc = 0;
    goto out;
nomem:
    rc = scim_err_nomem(c->err);
out:
    json_decref(v);
    json_decref(touched);
    if (rc == 0)
        prune(c, t);
    return rc;
}

/* --- paths ------------------------------------------------------------------------------- */

static int parse_path(struct ctx *c, const char *text, struct scim_path **out)
{
    if (scim_path_parse(text, &c->o->limits, c->o->reg, out, c->err) != 0)
        return -1;
    /* the dot after a schema URN is the legacy Entra spelling */
    if ((*out)->a.urn) {
        size_t n = strlen((*out)->a.urn);
        if (scim_strncasecmp(text, (*out)->a.urn, n) == 0 && text[n] == '.')
            c->compat |= SCIM_COMPAT_URN_DOT_SEPARATOR;
    }
    return 0;
}

/* The extension (or core) schema of the resource type whose URN is exactly `s`, or NULL. */
static const struct scim_schema *rt_schema(const struct ctx *c, const char *s)
{
    if (scim_streq_ci(s, c->rt->schema->id))
        return c->rt->schema;
    for (size_t i = 0; i < c->rt->n_extensions; i++)
        if (scim_streq_ci(s, c->rt->extensions[i].schema->id))
            return c->rt->extensions[i].schema;
    return NULL;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *v = s;
    while (*v)
        *v++ = '\0';
    free(s);
}

/* The password is never part of the resource (the store keeps only a hash): a new one is
 * handed to the caller in the result. */
static int password_op(struct ctx *c, enum opkind kind, const struct target *t, json_t *value)
{
    if (kind == OP_REMOVE || t->sub)
        return mut_error(c, t->attr->name, "can only be set");
    if (!json_is_string(value) || json_string_length(value) == 0)
        return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_VALUE, "\"password\" must be a non-empty string.");
    wipe_free(c->password);
    if (!(c->password = scim_strdup(json_string_value(value))))
        return scim_err_nomem(c->err);
    return 0;
}

static int apply_path(struct ctx *c, enum opkind kind, const char *text, json_t *value,
                      bool has_value)
{
    struct scim_path *p = NULL;
    struct target t = {0};
    const struct scim_schema *whole = rt_schema(c, text);
    int rc = -1;

    /* a path that is a schema URN addresses the whole extension object */
    if (whole) {
        if (kind == OP_REMOVE) {
            if (whole == c->rt->schema)
                return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_PATH,
                                    "The core schema cannot be removed.");
            del_ci(c->res, whole->id);
            return 0;
        }
        if (!has_value)
            return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_SYNTAX, "The operation needs a \"value\".");
        json_t *wrap = json_pack("{s:O}", whole->id, value);
        if (!wrap)
            return scim_err_nomem(c->err);
        rc = apply_nopath(c, kind, wrap);
        json_decref(wrap);
        return rc;
    }
    if (parse_path(c, text, &p) != 0)
        return -1;
    if (scim_resolve_attr(c->rt, p->a.urn, p->a.attr, p->a.sub, &t.schema, &t.attr, &t.sub) != 0) {
        rc = scim_err_set(c->err, 400, SCIM_TYPE_INVALID_PATH,
                          "The path '%s' names no attribute of %s.", text, c->rt->name);
        goto out;
    }
    t.ext = t.schema && t.schema != c->rt->schema;
    if (t.attr->mutability == SCIM_MUT_WRITEONLY && scim_streq_ci(t.attr->name, "password")) {
        rc = password_op(c, kind, &t, value);
        goto out;
    }
    if (is_member_attr(c, &t) && !c->members_loaded) {
        rc = members_op(c, kind, p, value, has_value);
        goto out;
    }
    if (t.attr->mutability == SCIM_MUT_READONLY || (t.sub && t.sub->mutability == SCIM_MUT_READONLY)) {
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", t.attr->name, t.sub ? "." : "", t.sub ? t.sub->name : "");
        rc = mut_error(c, name, "is read-only");
        goto out;
    }
    if (kind != OP_REMOVE && !has_value) {
        rc = scim_err_set(c->err, 400, SCIM_TYPE_INVALID_SYNTAX,
                          "The %s operation needs a \"value\".", kind == OP_ADD ? "add" : "replace");
        goto out;
    }
    if (t.attr->multi_valued)
        rc = multi_op(c, kind, &t, p, value);
    else if (p->filter)
        rc = scim_err_set(c->err, 400, SCIM_TYPE_INVALID_PATH,
                          "'%s' is single-valued: a value filter cannot apply.", t.attr->name);
    else
        rc = single_op(c, kind, &t, value);
out:
    scim_path_free(p);
    return rc;
}

/* A no-path add/replace: each key of the object is an attribute path of its own. */
static int apply_nopath(struct ctx *c, enum opkind kind, json_t *value)
{
    const char *k;
    json_t *v;
    if (!json_is_object(value))
        return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_VALUE,
                            "An operation without \"path\" needs an object \"value\".");
    json_object_foreach(value, k, v) {
        const struct scim_schema *sch;
        if (scim_streq_ci(k, "schemas") || scim_streq_ci(k, "meta"))
            continue; /* echoed by clients; never writable, never harmful */
        if (scim_streq_ci(k, "id")) {
            if (c->id && json_is_string(v) && strcmp(json_string_value(v), c->id) == 0) {
                c->compat |= SCIM_COMPAT_PATCH_ID_IN_VALUE;
                continue;
            }
            return mut_error(c, "id", "is read-only");
        }
        if ((sch = rt_schema(c, k)) != NULL) {
            /* {"urn:...:User": {"employeeNumber": "7"}}: the keys are that schema's */
            const char *k2;
            json_t *v2;
            if (!json_is_object(v))
                return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_VALUE,
                                    "The value of '%s' must be an object.", sch->id);
            json_object_foreach(v, k2, v2) {
                char path[1024];
                int n = snprintf(path, sizeof path, "%s:%s", sch->id, k2);
                if (n < 0 || (size_t)n >= sizeof path)
                    return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_PATH, "Attribute name too long.");
                if (apply_path(c, kind, path, v2, true) != 0)
                    return -1;
            }
            continue;
        }
        if (strchr(k, '.') || scim_strncasecmp(k, "urn:", 4) == 0)
            c->compat |= SCIM_COMPAT_NOPATH_DOTTED_KEYS;
        if (apply_path(c, kind, k, v, true) != 0)
            return -1;
    }
    return 0;
}

/* --- envelope ---------------------------------------------------------------------------- */

static bool schemas_ok(json_t *schemas)
{
    size_t i;
    json_t *s;
    if (!schemas)
        return true; /* RFC requires it; every known client sends it, tolerate its absence */
    if (!json_is_array(schemas))
        return false;
    json_array_foreach(schemas, i, s)
        if (json_is_string(s) && scim_streq_ci(json_string_value(s), SCIM_MSG_PATCH))
            return true;
    return false;
}

static int parse_kind(struct ctx *c, json_t *op, enum opkind *kind)
{
    const char *s = json_string_value(op);
    static const char *const names[] = {"add", "replace", "remove"};
    if (!s)
        return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_SYNTAX,
                            "Each operation needs an \"op\" string.");
    for (int i = 0; i < 3; i++) {
        if (scim_streq_ci(s, names[i])) {
            if (strcmp(s, names[i]) != 0)
                c->compat |= SCIM_COMPAT_OP_CASE;
            *kind = (enum opkind)i;
            return 0;
        }
    }
    return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_SYNTAX,
                        "Unsupported op \"%.64s\": use add, replace or remove.", s);
}

static int apply_one(struct ctx *c, json_t *op)
{
    enum opkind kind;
    json_t *path, *value;
    const char *ptext;
    if (!json_is_object(op))
        return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_SYNTAX, "Each operation must be an object.");
    if (parse_kind(c, get_ci(op, "op", NULL), &kind) != 0)
        return -1;
    path = get_ci(op, "path", NULL);
    value = get_ci(op, "value", NULL);
    if (path && !json_is_null(path) && !json_is_string(path))
        return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_SYNTAX, "\"path\" must be a string.");
    ptext = json_string_value(path);
    if (ptext && ptext[0] == '\0')
        ptext = NULL;
    if (!ptext) {
        if (kind == OP_REMOVE)
            return scim_err_set(c->err, 400, SCIM_TYPE_NO_TARGET, "A remove operation needs a \"path\".");
        if (!value)
            return scim_err_set(c->err, 400, SCIM_TYPE_INVALID_SYNTAX, "The operation needs a \"value\".");
        return apply_nopath(c, kind, value);
    }
    return apply_path(c, kind, ptext, value, value != NULL);
}

/* The stored part of a resource, as scim_resource_validate expects it. */
static json_t *doc_of(json_t *res)
{
    static const char *const drop[] = {"schemas", "id", "meta", "members", "groups", "password"};
    json_t *d = json_copy(res);
    if (!d)
        return NULL;
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        del_ci(d, drop[i]);
    return d;
}

static bool top_key_skipped(const char *k)
{
    return scim_streq_ci(k, "id") || scim_streq_ci(k, "meta") || scim_streq_ci(k, "schemas");
}

static int add_changed(json_t *changed, const char *k)
{
    size_t i;
    json_t *x;
    json_array_foreach(changed, i, x)
        if (strcmp(json_string_value(x), k) == 0)
            return 0;
    return json_array_append_new(changed, json_string(k));
}

/* Top-level keys whose value differs between `before` and `after`. */
static int diff_keys(json_t *before, json_t *after, json_t *changed)
{
    const char *k;
    json_t *v;
    json_object_foreach(after, k, v) {
        json_t *o = json_object_get(before, k);
        if (!top_key_skipped(k) && (!o || !json_equal(o, v)) && add_changed(changed, k) != 0)
            return -1;
    }
    json_object_foreach(before, k, v) {
        if (!top_key_skipped(k) && !json_object_get(after, k) && add_changed(changed, k) != 0)
            return -1;
    }
    return 0;
}

bool scim_patch_needs_members(json_t *body)
{
    json_t *ops = get_ci(body, "Operations", NULL);
    struct scim_filter_limits lim = {0, 0};
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op) {
        const char *text = json_string_value(get_ci(op, "path", NULL));
        const char *kind = json_string_value(get_ci(op, "op", NULL));
        struct scim_path *p = NULL;
        struct scim_err err;
        bool need = false;
        if (!text || scim_strncasecmp(text, "members", 7) != 0)
            continue;
        scim_err_clear(&err);
        if (scim_path_parse(text, &lim, NULL, &p, &err) != 0)
            continue; /* scim_patch_apply reports it */
        if (!p->a.urn && scim_streq_ci(p->a.attr, "members")) {
            if (p->a.sub)
                need = true;
            else if (p->filter) {
                json_t *ids = json_array();
                need = !kind || !scim_streq_ci(kind, "remove") || !ids || !filter_ids(p->filter, ids);
                json_decref(ids);
            }
        }
        scim_path_free(p);
        if (need)
            return true;
    }
    return false;
}

int scim_patch_apply(const struct scim_patch_opts *opts, json_t *resource, json_t *body,
                     struct scim_member_change *mc, struct scim_patch_result *res,
                     struct scim_err *err)
{
    struct ctx c = {0};
    json_t *ops, *op, *orig_doc = NULL, *new_doc = NULL, *changed = NULL;
    size_t i;
    int rc = -1;

    memset(res, 0, sizeof *res);
    if (mc)
        memset(mc, 0, sizeof *mc);
    c.o = opts;
    c.rt = opts->rt;
    c.err = err;
    c.want_mc = mc != NULL;
    c.id = json_string_value(json_object_get(resource, "id"));

    if (!json_is_object(body))
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_SYNTAX, "The PATCH body must be a JSON object.");
    if (!schemas_ok(get_ci(body, "schemas", NULL)))
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_SYNTAX,
                            "\"schemas\" must contain \"%s\".", SCIM_MSG_PATCH);
    ops = get_ci(body, "Operations", NULL);
    if (!json_is_array(ops))
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_SYNTAX,
                            "The PATCH body needs an \"Operations\" array.");
    if (opts->max_operations && json_array_size(ops) > opts->max_operations)
        return scim_err_set(err, 400, SCIM_TYPE_TOO_MANY,
                            "Too many operations: %zu (the limit is %zu).", json_array_size(ops),
                            opts->max_operations);
    if (json_array_size(ops) == 0)
        c.compat |= SCIM_COMPAT_EMPTY_OPERATIONS;

    c.members_loaded = json_is_array(json_object_get(resource, "members"));
    if (!(c.res = json_deep_copy(resource)) || !(changed = json_array()))
        goto nomem;

    json_array_foreach(ops, i, op) {
        if (apply_one(&c, op) != 0) {
            if (err->status == 400) {
                /* name the failing operation in front of the detail */
                char pre[40];
                int n = snprintf(pre, sizeof pre, "Operations[%zu]: ", i);
                size_t dl = strlen(err->detail), pl = n > 0 ? (size_t)n : 0;
                if (pl + dl >= sizeof err->detail)
                    dl = sizeof err->detail - 1 - pl;
                memmove(err->detail + pl, err->detail, dl);
                memcpy(err->detail, pre, pl);
                err->detail[pl + dl] = '\0';
            }
            goto out;
        }
    }

    if (!(orig_doc = doc_of(resource)) || !(new_doc = doc_of(c.res)))
        goto nomem;
    if (scim_resource_validate(c.rt, new_doc, err) != 0 ||
        scim_resource_check_immutable(c.rt, orig_doc, new_doc, err) != 0)
        goto out;
    if (diff_keys(resource, c.res, changed) != 0)
        goto nomem;

    /* loaded members: the net result becomes "clear, then add what remains" */
    if (c.members_loaded && mc && !json_equal(json_object_get(resource, "members"),
                                              json_object_get(c.res, "members"))) {
        json_t *m = json_object_get(c.res, "members");
        c.mc.clear = true;
        if (json_array_size(m) > 0 && !(c.mc.add = json_deep_copy(m)))
            goto nomem;
    }
    if ((c.mc.clear || json_array_size(c.mc.add) || json_array_size(c.mc.remove)) &&
        add_changed(changed, "members") != 0)
        goto nomem;
    if (c.password && add_changed(changed, "password") != 0)
        goto nomem;
    if (c.mc.add && json_array_size(c.mc.add) == 0) {
        json_decref(c.mc.add);
        c.mc.add = NULL;
    }
    if (c.mc.remove && json_array_size(c.mc.remove) == 0) {
        json_decref(c.mc.remove);
        c.mc.remove = NULL;
    }

    /* success: hand everything over */
    json_object_clear(resource);
    if (json_object_update(resource, c.res) != 0)
        goto nomem;
    if (mc) {
        *mc = c.mc;
        memset(&c.mc, 0, sizeof c.mc);
    }
    res->compat = c.compat;
    res->modified = json_array_size(changed) > 0;
    res->changed = changed;
    changed = NULL;
    res->password = c.password;
    c.password = NULL;
    rc = 0;
    goto out;
nomem:
    rc = scim_err_nomem(err);
out:
    json_decref(c.res);
    json_decref(orig_doc);
    json_decref(new_doc);
    json_decref(changed);
    scim_member_change_release(&c.mc);
    wipe_free(c.password);
    return rc;
}

void scim_member_change_release(struct scim_member_change *mc)
{
    if (!mc)
        return;
    json_decref(mc->add);
    json_decref(mc->remove);
    mc->add = NULL;
    mc->remove = NULL;
    mc->clear = false;
}

void scim_patch_result_release(struct scim_patch_result *res)
{
    if (!res)
        return;
    json_decref(res->changed);
    res->changed = NULL;
    wipe_free(res->password);
    res->password = NULL;
    res->compat = 0;
    res->modified = false;
}
