/* Data-driven PATCH cases: argv[1] is a JSON file
 *   {"resourceType": "User"|"Group", "resource": {...}, "patch": {...},
 *    "expect": {...} | "error": {"status":400,"scimType":"noTarget"},
 *    "members": {"clear":bool,"add":[ids],"remove":[ids]},   (optional)
 *    "compat": ["op_case", ...],                            (optional, exact set)
 *    "modified": bool, "changed": [names],                  (optional)
 *    "max_operations": N,                                   (optional)
 *    "password": "plain"}                                   (optional: the result's password)
 * "expect" is compared with json_equal after removing "meta" on both sides. Without "members",
 * a Group case must produce an empty member change. On "error" the resource must be unchanged. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "scim/compat.h"
#include "scim/patch.h"
#include "scim/schema.h"

static int failures;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        failures++;                                                                                \
    } while (0)

static void dump(const char *label, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_SORT_KEYS | JSON_INDENT(1)) : NULL;
    fprintf(stderr, "%s: %s\n", label, s ? s : "(null)");
    free(s);
}

static uint32_t compat_bits(json_t *names)
{
    uint32_t mask = 0;
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n) {
        bool found = false;
        for (int b = 0; b < 32; b++) {
            const char *cn = scim_compat_name(1u << b);
            if (cn && strcmp(cn, json_string_value(n)) == 0) {
                mask |= 1u << b;
                found = true;
            }
        }
        if (!found)
            FAIL("unknown compat name in case: %s", json_string_value(n));
    }
    return mask;
}

/* Ids of a member change list (objects with "value", or strings), sorted as given. */
static json_t *ids_of(json_t *list)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
        json_array_append_new(out, json_string(json_is_object(e)
                                                   ? json_string_value(json_object_get(e, "value"))
                                                   : json_string_value(e)));
    return out;
}

static void check_members(json_t *want, const struct scim_member_change *mc)
{
    json_t *add = ids_of(mc->add), *rem = ids_of(mc->remove);
    json_t *wadd = json_object_get(want, "add"), *wrem = json_object_get(want, "remove");
    json_t *empty = json_array();
    if (mc->clear != json_is_true(json_object_get(want, "clear")))
        FAIL("members.clear: got %d", mc->clear);
    if (!json_equal(add, wadd ? wadd : empty)) {
        FAIL("members.add differs");
        dump("got add", add);
    }
    if (!json_equal(rem, wrem ? wrem : empty)) {
        FAIL("members.remove differs");
        dump("got remove", rem);
    }
    /* display names, when the case lists full objects */
    json_t *full = json_object_get(want, "add_full");
    if (full && !json_equal(full, mc->add)) {
        FAIL("members.add objects differ");
        dump("got", mc->add);
    }
    if ((mc->add && json_array_size(mc->add) == 0) || (mc->remove && json_array_size(mc->remove) == 0))
        FAIL("member change lists must be NULL when empty");
    json_decref(add);
    json_decref(rem);
    json_decref(empty);
}

int main(int argc, char **argv)
{
    json_error_t jerr;
    json_t *cs = NULL, *resource = NULL, *orig = NULL;
    struct scim_registry *reg = NULL;
    struct scim_member_change mc = {0};
    struct scim_patch_result res = {0};
    struct scim_err err;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: run_patch CASE.json\n");
        return 2;
    }
    cs = json_load_file(argv[1], 0, &jerr);
    if (!cs) {
        fprintf(stderr, "%s:%d: %s\n", argv[1], jerr.line, jerr.text);
        return 2;
    }
    reg = scim_registry_new();
    if (!reg)
        return 2;
    const struct scim_resource_type *rt =
        scim_registry_rt_find(reg, json_string_value(json_object_get(cs, "resourceType")));
    if (!rt) {
        fprintf(stderr, "bad resourceType\n");
        return 2;
    }
    struct scim_patch_opts opts = {
        .reg = reg,
        .rt = rt,
        .limits = {.max_length = 4096, .max_depth = 16},
        .max_operations = (size_t)json_integer_value(json_object_get(cs, "max_operations")),
    };
    resource = json_deep_copy(json_object_get(cs, "resource"));
    orig = json_deep_copy(resource);
    json_t *patch = json_object_get(cs, "patch");
    bool is_group = rt->kind == SCIM_RT_GROUP;

    scim_err_clear(&err);
    rc = scim_patch_apply(&opts, resource, patch, is_group ? &mc : NULL, &res, &err);

    json_t *want_err = json_object_get(cs, "error");
    if (want_err) {
        if (rc == 0) {
            FAIL("expected an error, got success");
            dump("resource", resource);
        } else {
            int st = (int)json_integer_value(json_object_get(want_err, "status"));
            const char *ty = json_string_value(json_object_get(want_err, "scimType"));
            if (err.status != st)
                FAIL("status: got %d want %d (%s)", err.status, st, err.detail);
            if ((ty == NULL) != (err.scim_type == NULL) || (ty && strcmp(ty, err.scim_type) != 0))
                FAIL("scimType: got %s want %s (%s)", err.scim_type ? err.scim_type : "null",
                     ty ? ty : "null", err.detail);
            if (!json_equal(resource, orig))
                FAIL("resource changed although the request failed");
            if (mc.clear || mc.add || mc.remove)
                FAIL("member change not empty although the request failed");
            fprintf(stderr, "error detail: %s\n", err.detail);
        }
    } else if (rc != 0) {
        FAIL("unexpected error %d %s: %s", err.status, err.scim_type ? err.scim_type : "", err.detail);
    } else {
        json_t *want = json_deep_copy(json_object_get(cs, "expect"));
        json_object_del(want, "meta");
        json_object_del(resource, "meta");
        if (!json_equal(want, resource)) {
            FAIL("resource differs from expect");
            dump("got", resource);
            dump("want", want);
        }
        json_decref(want);
        json_t *wm = json_object_get(cs, "members");
        if (wm)
            check_members(wm, &mc);
        else if (mc.clear || mc.add || mc.remove)
            FAIL("unexpected member change (clear=%d add=%zu remove=%zu)", mc.clear,
                 json_array_size(mc.add), json_array_size(mc.remove));
        json_t *wc = json_object_get(cs, "compat");
        if (wc) {
            uint32_t want_bits = compat_bits(wc);
            if (want_bits != res.compat) {
                char got[512], exp[512];
                scim_compat_names(res.compat, got, sizeof got);
                scim_compat_names(want_bits, exp, sizeof exp);
                FAIL("compat: got [%s] want [%s]", got, exp);
            }
        }
        json_t *wmod = json_object_get(cs, "modified");
        if (wmod && json_is_true(wmod) != res.modified)
            FAIL("modified: got %d", res.modified);
        json_t *wch = json_object_get(cs, "changed");
        if (wch && !json_equal(wch, res.changed)) {
            FAIL("changed differs");
            dump("got changed", res.changed);
        }
        const char *wpw = json_string_value(json_object_get(cs, "password"));
        if ((wpw == NULL) != (res.password == NULL) || (wpw && strcmp(wpw, res.password) != 0))
            FAIL("password: got %s", res.password ? res.password : "(none)");
        if (!json_is_array(res.changed))
            FAIL("result.changed must be an array");
    }

    scim_member_change_release(&mc);
    scim_patch_result_release(&res);
    json_decref(resource);
    json_decref(orig);
    json_decref(cs);
    scim_registry_free(&reg);
    if (failures)
        fprintf(stderr, "%s: %d failure(s)\n", argv[1], failures);
    return failures ? 1 : 0;
}
