/* Operator-declared extension schemas: parses and validates the configuration document, builds
 * malloc'd struct scim_schema values and hands them to the registry.
 *
 * The whole document is validated before anything is added, so that a mistake in the third
 * schema does not leave the first two half-configured. Keys are matched case-insensitively
 * (SCIM attribute names are, and the attribute objects mirror /Schemas output); unknown keys
 * are rejected so that a typo ("multivalue") is reported rather than silently ignored. */
#include "scim/extconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"

#define MAX_SCHEMAS 16
#define MAX_ATTRS 256
#define MAX_SUB_ATTRS 64
#define MAX_VALUES 256
#define MAX_NAME 128
#define MAX_URN 256
#define MAX_TEXT 4096
#define PATH_MAX_LEN 160

struct ctx {
    const char *origin;
    struct scim_err *err;
};

static int fail(struct ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Every validation message goes through here so that each one names the source and the JSON
 * path of the offending value: the operator has to find it in the file. */
static int fail(struct ctx *c, const char *path, const char *fmt, ...)
{
    char msg[SCIM_ERR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return scim_err_set(c->err, 400, NULL, "%s: %s: %s", c->origin, path, msg);
}

/* The value of `key` in `obj`, matched case-insensitively. */
static json_t *get_ci(json_t *obj, const char *key)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (scim_streq_ci(k, key))
            return v;
    }
    return NULL;
}

/* Rejects keys outside `allowed` (NULL-terminated) and keys repeated with another case. */
static int check_keys(struct ctx *c, json_t *obj, const char *path, const char *const *allowed)
{
    const char *k, *k2;
    json_t *v, *v2;
    json_object_foreach(obj, k, v) {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = scim_streq_ci(k, allowed[i]);
        if (!known)
            return fail(c, path, "unknown key \"%s\"", k);
        json_object_foreach(obj, k2, v2) {
            if (k2 == k)
                break;
            if (scim_streq_ci(k, k2))
                return fail(c, path, "key \"%s\" appears twice (as \"%s\" and \"%s\")", k, k2, k);
        }
    }
    return 0;
}

static void subpath(char *out, const char *path, const char *key)
{
    snprintf(out, PATH_MAX_LEN, "%s.%s", path, key);
}

static void indexpath(char *out, const char *path, const char *key, size_t i)
{
    snprintf(out, PATH_MAX_LEN, "%s.%s[%zu]", path, key, i);
}

/* An optional string member: *out stays NULL when absent. */
static int opt_string(struct ctx *c, json_t *obj, const char *path, const char *key, bool empty_ok,
                      size_t max, char **out)
{
    char p[PATH_MAX_LEN];
    json_t *v = get_ci(obj, key);
    *out = NULL;
    if (!v)
        return 0;
    subpath(p, path, key);
    if (!json_is_string(v))
        return fail(c, p, "must be a string");
    if (!empty_ok && json_string_length(v) == 0)
        return fail(c, p, "must not be empty");
    if (json_string_length(v) > max)
        return fail(c, p, "longer than %zu characters", max);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fail(c, p, "contains a NUL character");
    if (!(*out = scim_strdup(json_string_value(v))))
        return scim_err_nomem(c->err);
    return 0;
}

static int opt_bool(struct ctx *c, json_t *obj, const char *path, const char *key, bool *out)
{
    char p[PATH_MAX_LEN];
    json_t *v = get_ci(obj, key);
    if (!v)
        return 0; /* keep the default */
    if (!json_is_boolean(v)) {
        subpath(p, path, key);
        return fail(c, p, "must be true or false");
    }
    *out = json_is_true(v);
    return 0;
}

/* An optional enumerated member: `names` lists the accepted spellings in enum order. */
static int opt_enum(struct ctx *c, json_t *obj, const char *path, const char *key,
                    const char *const *names, const char *expected, int *out)
{
    char p[PATH_MAX_LEN];
    json_t *v = get_ci(obj, key);
    if (!v)
        return 0;
    subpath(p, path, key);
    if (!json_is_string(v))
        return fail(c, p, "must be a string (one of %s)", expected);
    for (int i = 0; names[i]; i++)
        if (scim_streq_ci(json_string_value(v), names[i])) {
            *out = i;
            return 0;
        }
    return fail(c, p, "unknown %s \"%s\" (expected one of %s)", key, json_string_value(v),
                expected);
}

/* RFC 7643 §2.1 ATTRNAME: ALPHA *("-" / "_" / DIGIT / ALPHA). */
static bool valid_attrname(const char *s)
{
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    for (size_t i = 1; s[i]; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

/* "urn:" NID ":" NSS (RFC 8141), restricted to characters that cannot end a token in a filter
 * or PATCH path (no spaces, quotes, brackets or parentheses), not ending in a separator. */
static bool valid_urn(const char *s)
{
    size_t nid = 0, i = 4;
    if (scim_strncasecmp(s, "urn:", 4) != 0)
        return false;
    for (; s[i] && s[i] != ':'; i++, nid++) {
        char ch = s[i];
        bool alnum = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && !(ch == '-' && nid > 0))
            return false;
    }
    if (nid < 2 || nid > 32 || s[i] != ':' || s[i - 1] == '-' || !s[i + 1])
        return false;
    for (i++; s[i]; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              strchr("-._~:/%@+=;,!$&*'", ch)))
            return false;
    }
    return s[i - 1] != ':' && s[i - 1] != '.';
}

/* A string array member (canonicalValues, referenceTypes) as a malloc'd NULL-terminated vector. */
static int opt_strv(struct ctx *c, json_t *obj, const char *path, const char *key,
                    const char *const **out)
{
    char p[PATH_MAX_LEN], ip[PATH_MAX_LEN];
    json_t *v = get_ci(obj, key), *e;
    char **vec;
    size_t n, i;
    *out = NULL;
    if (!v)
        return 0;
    subpath(p, path, key);
    if (!json_is_array(v))
        return fail(c, p, "must be an array of strings");
    n = json_array_size(v);
    if (n > MAX_VALUES)
        return fail(c, p, "more than %d values", MAX_VALUES);
    vec = calloc(n + 1, sizeof *vec);
    if (!vec)
        return scim_err_nomem(c->err);
    *out = (const char *const *)vec;
    json_array_foreach(v, i, e) {
        indexpath(ip, path, key, i);
        if (!json_is_string(e) || json_string_length(e) == 0)
            return fail(c, ip, "must be a non-empty string");
        if (strlen(json_string_value(e)) != json_string_length(e) ||
            json_string_length(e) > MAX_NAME)
            return fail(c, ip, "must be a string of at most %d characters without NUL", MAX_NAME);
        for (size_t k = 0; k < i; k++)
            if (strcmp(vec[k], json_string_value(e)) == 0)
                return fail(c, ip, "\"%s\" is listed twice", vec[k]);
        if (!(vec[i] = scim_strdup(json_string_value(e))))
            return scim_err_nomem(c->err);
    }
    return 0;
}

static const char *const attr_keys[] = {
    "name", "type", "multiValued", "required", "caseExact", "mutability", "returned",
    "uniqueness", "description", "canonicalValues", "referenceTypes", "subAttributes", NULL};

static const char *const type_names[] = {"string", "boolean", "decimal", "integer", "dateTime",
                                         "binary", "reference", "complex", NULL};
static const char *const mut_names[] = {"readWrite", "readOnly", "immutable", "writeOnly", NULL};
static const char *const ret_names[] = {"default", "always", "never", "request", NULL};
static const char *const uniq_names[] = {"none", "server", "global", NULL};

static int parse_attrs(struct ctx *c, json_t *arr, const char *path, const char *key, bool sub,
                       struct scim_attr **attrs_out, size_t *n_out);

/* Fills `a` (zeroed, owned by the schema being built) from the attribute object `j`. Missing
 * characteristics take the RFC 7643 §2.2 defaults, which are the zero values of the enums. */
static int parse_attr(struct ctx *c, json_t *j, const char *path, bool sub, struct scim_attr *a)
{
    char p[PATH_MAX_LEN];
    char *s = NULL;
    int t = SCIM_T_STRING, mut = SCIM_MUT_READWRITE, ret = SCIM_RET_DEFAULT, uniq = SCIM_UNIQ_NONE;
    json_t *subs;

    if (!json_is_object(j))
        return fail(c, path, "an attribute must be an object");
    if (check_keys(c, j, path, attr_keys) < 0)
        return -1;
    if (!get_ci(j, "name"))
        return fail(c, path, "missing \"name\"");
    if (opt_string(c, j, path, "name", false, MAX_NAME, &s) < 0)
        return -1;
    a->name = s;
    subpath(p, path, "name");
    /* "$ref" is the conventional name of a reference sub-attribute (members.$ref). */
    if (!valid_attrname(s) && !(sub && strcmp(s, "$ref") == 0))
        return fail(c, p, "\"%s\" is not a valid attribute name (a letter, then letters, digits, "
                          "'-' or '_')", s);
    if (opt_enum(c, j, path, "type", type_names,
                 "string, boolean, decimal, integer, dateTime, binary, reference, complex", &t) < 0 ||
        opt_enum(c, j, path, "mutability", mut_names, "readWrite, readOnly, immutable, writeOnly",
                 &mut) < 0 ||
        opt_enum(c, j, path, "returned", ret_names, "default, always, never, request", &ret) < 0 ||
        opt_enum(c, j, path, "uniqueness", uniq_names, "none, server, global", &uniq) < 0)
        return -1;
    a->type = (enum scim_atype)t;
    a->mutability = (enum scim_mutability)mut;
    a->returned = (enum scim_returned)ret;
    a->uniqueness = (enum scim_uniqueness)uniq;
    if (opt_bool(c, j, path, "multiValued", &a->multi_valued) < 0 ||
        opt_bool(c, j, path, "required", &a->required) < 0 ||
        opt_bool(c, j, path, "caseExact", &a->case_exact) < 0)
        return -1;
    if (opt_string(c, j, path, "description", true, MAX_TEXT, &s) < 0)
        return -1;
    a->description = s;
    if (opt_strv(c, j, path, "canonicalValues", &a->canonical_values) < 0 ||
        opt_strv(c, j, path, "referenceTypes", &a->reference_types) < 0)
        return -1;

    /* Combinations that could never work at run time. */
    if (a->required && a->mutability == SCIM_MUT_READONLY) {
        subpath(p, path, "required");
        return fail(c, p, "a readOnly attribute cannot be required (clients cannot set it)");
    }
    if (a->reference_types && a->type != SCIM_T_REFERENCE) {
        subpath(p, path, "referenceTypes");
        return fail(c, p, "only allowed for type \"reference\"");
    }
    if (a->canonical_values && a->type == SCIM_T_COMPLEX) {
        subpath(p, path, "canonicalValues");
        return fail(c, p, "not allowed for type \"complex\" (declare them on a sub-attribute)");
    }
    subs = get_ci(j, "subAttributes");
    if (a->type == SCIM_T_COMPLEX) {
        struct scim_attr *sa = NULL;
        if (sub) {
            subpath(p, path, "type");
            return fail(c, p, "a sub-attribute cannot be complex");
        }
        if (!subs)
            return fail(c, path, "complex attribute \"%s\" needs \"subAttributes\"", a->name);
        if (parse_attrs(c, subs, path, "subAttributes", true, &sa, &a->n_sub_attrs) < 0) {
            a->sub_attrs = sa;
            return -1;
        }
        a->sub_attrs = sa;
    } else if (subs) {
        subpath(p, path, "subAttributes");
        return fail(c, p, "only allowed for type \"complex\"");
    }
    return 0;
}

/* Parses an attribute array into a zeroed, malloc'd array. *attrs_out and *n_out are set as
 * soon as the array exists, also on failure, so that scim_schema_free releases a partial one. */
static int parse_attrs(struct ctx *c, json_t *arr, const char *path, const char *key, bool sub,
                       struct scim_attr **attrs_out, size_t *n_out)
{
    char p[PATH_MAX_LEN];
    size_t n, i, max = sub ? MAX_SUB_ATTRS : MAX_ATTRS;
    struct scim_attr *attrs;
    json_t *e;

    *attrs_out = NULL;
    *n_out = 0;
    subpath(p, path, key);
    if (!json_is_array(arr))
        return fail(c, p, "must be an array of attribute objects");
    n = json_array_size(arr);
    if (n == 0)
        return fail(c, p, "must declare at least one attribute");
    if (n > max)
        return fail(c, p, "more than %zu attributes", max);
    attrs = calloc(n, sizeof *attrs);
    if (!attrs)
        return scim_err_nomem(c->err);
    *attrs_out = attrs;
    *n_out = n;
    json_array_foreach(arr, i, e) {
        indexpath(p, path, key, i);
        if (parse_attr(c, e, p, sub, &attrs[i]) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (scim_streq_ci(attrs[k].name, attrs[i].name)) {
                char np[PATH_MAX_LEN];
                subpath(np, p, "name");
                return fail(c, np, "duplicate attribute name \"%s\" (names are case-insensitive; "
                                   "see %s[%zu])", attrs[i].name, key, k);
            }
    }
    return 0;
}

/* URNs the registry does not hold as schemas but that the protocol uses. */
static bool reserved_urn(const char *urn)
{
    static const char *const reserved[] = {SCIM_SCHEMA_SPC, SCIM_SCHEMA_RT, SCIM_SCHEMA_SCHEMA};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (scim_streq_ci(urn, reserved[i]))
            return true;
    return scim_strncasecmp(urn, "urn:ietf:params:scim:api:", 25) == 0;
}

/* True when `a` equals `b` or one extends the other at a ':' or '.': attribute references split
 * URNs by longest known prefix, so such a pair would make "<urn>:<attr>" ambiguous. */
static bool urn_overlaps(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    const char *shorter = la <= lb ? a : b, *longer = la <= lb ? b : a;
    size_t ls = la <= lb ? la : lb;
    if (scim_strncasecmp(shorter, longer, ls) != 0)
        return false;
    return longer[ls] == '\0' || longer[ls] == ':' || longer[ls] == '.';
}

static const char *const schema_keys[] = {"id", "name", "description", "resourceType", "required",
                                          "attributes", "schemas", "meta", NULL};

struct pending {
    struct scim_schema *schema;
    enum scim_rtype kind;
    bool required;
};

static int parse_schema(struct ctx *c, const struct scim_registry *reg, json_t *j,
                        const char *path, const struct pending *prev, size_t n_prev,
                        struct pending *out)
{
    char p[PATH_MAX_LEN];
    char *s = NULL;
    struct scim_schema *sc;
    struct scim_attr *attrs = NULL;
    const struct scim_resource_type *rt;
    json_t *v;

    if (!json_is_object(j))
        return fail(c, path, "a schema must be an object");
    /* "schemas" and "meta" are accepted (and ignored) so that a schema copied from a /Schemas
     * response can be pasted in, with "resourceType" added. */
    if (check_keys(c, j, path, schema_keys) < 0)
        return -1;
    sc = calloc(1, sizeof *sc);
    if (!sc)
        return scim_err_nomem(c->err);
    out->schema = sc;

    if (!get_ci(j, "id"))
        return fail(c, path, "missing \"id\" (the schema URN)");
    if (opt_string(c, j, path, "id", false, MAX_URN, &s) < 0)
        return -1;
    sc->id = s;
    subpath(p, path, "id");
    if (!valid_urn(s))
        return fail(c, p, "\"%s\" is not a valid schema URN (\"urn:\", a namespace, ':', then "
                          "letters, digits and - . _ ~ : / %% @ + = ; , ! $ & * ')", s);
    if (reserved_urn(s))
        return fail(c, p, "\"%s\" is reserved by the SCIM protocol", s);
    for (size_t i = 0; i < scim_registry_schema_count(reg); i++) {
        const struct scim_schema *o = scim_registry_schema_at(reg, i);
        if (urn_overlaps(s, o->id))
            return fail(c, p, "\"%s\" clashes with the %s schema %s", s,
                        scim_streq_ci(s, o->id) ? "existing" : "overlapping", o->id);
    }
    for (size_t i = 0; i < n_prev; i++)
        if (urn_overlaps(s, prev[i].schema->id))
            return fail(c, p, "\"%s\" clashes with %s declared at $.schemas[%zu]", s,
                        prev[i].schema->id, i);

    if (opt_string(c, j, path, "name", false, MAX_NAME, &s) < 0)
        return -1;
    sc->name = s;
    if (opt_string(c, j, path, "description", true, MAX_TEXT, &s) < 0)
        return -1;
    sc->description = s;

    v = get_ci(j, "resourceType");
    subpath(p, path, "resourceType");
    if (!v)
        return fail(c, path, "missing \"resourceType\" (\"User\" or \"Group\")");
    rt = json_is_string(v) ? scim_registry_rt_find(reg, json_string_value(v)) : NULL;
    if (!rt)
        return fail(c, p, "must be \"User\" or \"Group\"");
    out->kind = rt->kind;
    out->required = false;
    if (opt_bool(c, j, path, "required", &out->required) < 0)
        return -1;
    {
        size_t used = rt->n_extensions;
        size_t max = sizeof rt->extensions / sizeof rt->extensions[0];
        for (size_t i = 0; i < n_prev; i++)
            used += prev[i].kind == rt->kind;
        if (used >= max)
            return fail(c, p, "too many extension schemas for %s (at most %zu in all, %zu "
                              "built in)", rt->name, max, rt->n_extensions);
    }

    v = get_ci(j, "attributes");
    if (!v)
        return fail(c, path, "missing \"attributes\"");
    if (parse_attrs(c, v, path, "attributes", false, &attrs, &sc->n_attrs) < 0) {
        sc->attrs = attrs;
        return -1;
    }
    sc->attrs = attrs;
    return 0;
}

int scim_extconfig_load_json(struct scim_registry *reg, json_t *config, const char *origin,
                             struct scim_err *err)
{
    static const char *const top_keys[] = {"schemas", NULL};
    struct ctx c = {.origin = origin ? origin : "extension configuration", .err = err};
    struct pending pend[MAX_SCHEMAS];
    size_t n = 0, i;
    json_t *arr, *e;
    int rc = -1;

    memset(pend, 0, sizeof pend);
    if (!json_is_object(config))
        return fail(&c, "$", "the configuration must be a JSON object with a \"schemas\" array");
    if (check_keys(&c, config, "$", top_keys) < 0)
        return -1;
    arr = get_ci(config, "schemas");
    if (!json_is_array(arr))
        return fail(&c, "$.schemas", arr ? "must be an array" : "missing");
    if (json_array_size(arr) > MAX_SCHEMAS)
        return fail(&c, "$.schemas", "more than %d schemas", MAX_SCHEMAS);
    json_array_foreach(arr, i, e) {
        char p[PATH_MAX_LEN];
        snprintf(p, sizeof p, "$.schemas[%zu]", i);
        n = i + 1;
        if (parse_schema(&c, reg, e, p, pend, i, &pend[i]) < 0)
            goto out;
    }
    for (i = 0; i < n; i++) {
        if (scim_registry_add_schema(reg, pend[i].kind, pend[i].schema, pend[i].required, err) < 0)
            goto out;
        pend[i].schema = NULL; /* the registry owns it now */
    }
    rc = 0;
out:
    for (i = 0; i < n; i++)
        scim_schema_free(pend[i].schema);
    return rc;
}

int scim_extconfig_load_file(struct scim_registry *reg, const char *path, struct scim_err *err)
{
    struct stat stt;
    json_error_t je;
    json_t *doc = NULL;
    FILE *f;
    int rc = -1;

    f = fopen(path, "rb");
    if (!f)
        return scim_err_set(err, 400, NULL, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &stt) != 0 || !S_ISREG(stt.st_mode)) {
        scim_err_set(err, 400, NULL, "%s: not a regular file", path);
        goto out;
    }
    if (stt.st_size > SCIM_EXTCONFIG_MAX_FILE) {
        scim_err_set(err, 400, NULL, "%s: larger than %d bytes", path, SCIM_EXTCONFIG_MAX_FILE);
        goto out;
    }
    doc = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        scim_err_set(err, 400, NULL, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        goto out;
    }
    rc = scim_extconfig_load_json(reg, doc, path, err);
out:
    json_decref(doc);
    fclose(f);
    return rc;
}
