/* API edges of the PATCH engine; the behaviour matrix lives in tests/data/patch/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "scim/compat.h"
#include "scim/patch.h"
#include "scim/schema.h"

struct fx {
    struct scim_registry *reg;
    struct scim_patch_opts opts;
};

static int setup_user(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f || !(f->reg = scim_registry_new()))
        return -1;
    f->opts.reg = f->reg;
    f->opts.rt = scim_registry_rt(f->reg, SCIM_RT_USER);
    f->opts.limits.max_length = 1024;
    f->opts.limits.max_depth = 8;
    *state = f;
    return 0;
}

static int setup_group(void **state)
{
    int rc = setup_user(state);
    struct fx *f = *state;
    if (rc == 0)
        f->opts.rt = scim_registry_rt(f->reg, SCIM_RT_GROUP);
    return rc;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    scim_registry_free(&f->reg);
    free(f);
    return 0;
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    assert_non_null(v);
    return v;
}

#define PO "\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"]"
#define USER "{\"id\":\"u-1\",\"userName\":\"bjensen\",\"displayName\":\"Babs\",\"active\":true}"
#define GROUP "{\"id\":\"g-1\",\"displayName\":\"Admins\"}"

/* A body that is not an object fails with invalidSyntax and leaves the resource as it was. */
static void test_body_not_object(void **state)
{
    struct fx *f = *state;
    json_t *r = load(USER), *orig = json_deep_copy(r), *body = load("[1,2]");
    struct scim_patch_result res;
    struct scim_err err;
    scim_err_clear(&err);
    assert_int_equal(scim_patch_apply(&f->opts, r, body, NULL, &res, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, SCIM_TYPE_INVALID_SYNTAX);
    assert_true(json_equal(r, orig));
    assert_null(res.changed);
    json_decref(r);
    json_decref(orig);
    json_decref(body);
}

/* The failing operation is named in the detail, and nothing of the request is kept. */
static void test_error_names_operation(void **state)
{
    struct fx *f = *state;
    json_t *r = load(USER), *orig = json_deep_copy(r);
    json_t *body = load("{" PO ",\"Operations\":[{\"op\":\"replace\",\"path\":\"displayName\",\"value\":\"X\"},"
                        "{\"op\":\"remove\",\"path\":\"userName\"}]}");
    struct scim_patch_result res;
    struct scim_err err;
    scim_err_clear(&err);
    assert_int_equal(scim_patch_apply(&f->opts, r, body, NULL, &res, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, SCIM_TYPE_MUTABILITY);
    assert_non_null(strstr(err.detail, "Operations[1]: "));
    assert_true(json_equal(r, orig));
    json_decref(r);
    json_decref(orig);
    json_decref(body);
}

/* Success: in-place change, result fields, release functions are idempotent. */
static void test_success_result(void **state)
{
    struct fx *f = *state;
    json_t *r = load(USER);
    json_t *body = load("{" PO ",\"Operations\":[{\"op\":\"Replace\",\"path\":\"active\",\"value\":\"False\"}]}");
    struct scim_patch_result res;
    struct scim_err err;
    scim_err_clear(&err);
    assert_int_equal(scim_patch_apply(&f->opts, r, body, NULL, &res, &err), 0);
    assert_true(json_is_false(json_object_get(r, "active")));
    assert_true(res.modified);
    assert_int_equal(res.compat, SCIM_COMPAT_OP_CASE | SCIM_COMPAT_STRING_BOOLEAN);
    assert_int_equal(json_array_size(res.changed), 1);
    assert_string_equal(json_string_value(json_array_get(res.changed, 0)), "active");
    scim_patch_result_release(&res);
    assert_null(res.changed);
    scim_patch_result_release(&res);
    scim_patch_result_release(NULL);
    json_decref(r);
    json_decref(body);
}

/* max_operations: exactly the limit passes, one more is tooMany. */
static void test_max_operations(void **state)
{
    struct fx *f = *state;
    json_t *r = load(USER);
    json_t *two = load("{" PO ",\"Operations\":[{\"op\":\"add\",\"path\":\"title\",\"value\":\"a\"},"
                       "{\"op\":\"add\",\"path\":\"locale\",\"value\":\"b\"}]}");
    struct scim_patch_result res;
    struct scim_err err;
    f->opts.max_operations = 2;
    scim_err_clear(&err);
    assert_int_equal(scim_patch_apply(&f->opts, r, two, NULL, &res, &err), 0);
    scim_patch_result_release(&res);
    f->opts.max_operations = 1;
    assert_int_equal(scim_patch_apply(&f->opts, r, two, NULL, &res, &err), -1);
    assert_string_equal(err.scim_type, SCIM_TYPE_TOO_MANY);
    f->opts.max_operations = 0;
    json_decref(r);
    json_decref(two);
}

/* Member changes: the struct is filled on success, left empty on failure; lists are NULL when
 * there is nothing in them. */
static void test_member_change(void **state)
{
    struct fx *f = *state;
    json_t *r = load(GROUP);
    json_t *body = load("{" PO ",\"Operations\":[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"u1\"}]},"
                        "{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"u1\",\"display\":\"A\"}]}]}");
    json_t *bad = load("{" PO ",\"Operations\":[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"u2\"}]},"
                       "{\"op\":\"bogus\"}]}");
    struct scim_member_change mc;
    struct scim_patch_result res;
    struct scim_err err;
    scim_err_clear(&err);
    assert_int_equal(scim_patch_apply(&f->opts, r, body, &mc, &res, &err), 0);
    assert_false(mc.clear);
    assert_null(mc.remove);
    assert_int_equal(json_array_size(mc.add), 1); /* the second add updates the first */
    assert_string_equal(json_string_value(json_object_get(json_array_get(mc.add, 0), "display")), "A");
    assert_true(res.modified);
    scim_member_change_release(&mc);
    scim_patch_result_release(&res);
    assert_int_equal(scim_patch_apply(&f->opts, r, bad, &mc, &res, &err), -1);
    assert_false(mc.clear);
    assert_null(mc.add);
    assert_null(mc.remove);
    scim_member_change_release(&mc);
    json_decref(r);
    json_decref(body);
    json_decref(bad);
}

/* A group PATCH on members with no member change given is an internal misuse, not a crash. */
static void test_members_without_mc(void **state)
{
    struct fx *f = *state;
    json_t *r = load(GROUP);
    json_t *body = load("{" PO ",\"Operations\":[{\"op\":\"remove\",\"path\":\"members\"}]}");
    struct scim_patch_result res;
    struct scim_err err;
    scim_err_clear(&err);
    assert_int_equal(scim_patch_apply(&f->opts, r, body, NULL, &res, &err), -1);
    assert_int_equal(err.status, 500);
    json_decref(r);
    json_decref(body);
}

static void check_needs(const char *ops, bool want)
{
    char text[1024];
    snprintf(text, sizeof text, "{" PO ",\"Operations\":[%s]}", ops);
    json_t *b = load(text);
    assert_int_equal(scim_patch_needs_members(b), want);
    json_decref(b);
}

static void test_needs_members(void **state)
{
    (void)state;
    check_needs("{\"op\":\"remove\",\"path\":\"members[value eq \\\"u1\\\"]\"}", false);
    check_needs("{\"op\":\"remove\",\"path\":\"members[value eq \\\"a\\\" or value eq \\\"b\\\"]\"}", false);
    check_needs("{\"op\":\"Remove\",\"path\":\"members\",\"value\":[{\"value\":\"u1\"}]}", false);
    check_needs("{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"u1\"}]}", false);
    check_needs("{\"op\":\"replace\",\"value\":{\"displayName\":\"x\"}}", false);
    check_needs("{\"op\":\"remove\",\"path\":\"members[display eq \\\"Bob\\\"]\"}", true);
    check_needs("{\"op\":\"remove\",\"path\":\"members[type eq \\\"User\\\"]\"}", true);
    check_needs("{\"op\":\"replace\",\"path\":\"members[value eq \\\"u1\\\"].display\",\"value\":\"B\"}", true);
    check_needs("{\"op\":\"replace\",\"path\":\"members.display\",\"value\":\"B\"}", true);
    json_t *junk = load("{\"Operations\":5}");
    assert_false(scim_patch_needs_members(junk));
    assert_false(scim_patch_needs_members(NULL));
    json_decref(junk);
}

/* Loaded members: the net result is expressed as clear + the remaining members; member
 * sub-attributes are immutable (RFC 7643 §4.2), and re-adding a member is no change. */
static void test_loaded_members(void **state)
{
    struct fx *f = *state;
    json_t *r = load("{\"id\":\"g-1\",\"displayName\":\"Admins\",\"members\":[{\"value\":\"u1\",\"display\":\"A\"},"
                     "{\"value\":\"u2\",\"display\":\"B\"}]}");
    json_t *edit = load("{" PO ",\"Operations\":[{\"op\":\"replace\",\"path\":\"members[value eq \\\"u2\\\"].display\","
                        "\"value\":\"Bee\"}]}");
    json_t *add = load("{" PO ",\"Operations\":[{\"op\":\"add\",\"path\":\"members\",\"value\":"
                       "[{\"value\":\"u1\",\"display\":\"Other\"},{\"value\":\"u3\"}]}]}");
    struct scim_member_change mc;
    struct scim_patch_result res;
    struct scim_err err;
    scim_err_clear(&err);
    assert_int_equal(scim_patch_apply(&f->opts, r, edit, &mc, &res, &err), -1);
    assert_string_equal(err.scim_type, SCIM_TYPE_MUTABILITY);
    scim_member_change_release(&mc);
    assert_int_equal(scim_patch_apply(&f->opts, r, add, &mc, &res, &err), 0);
    assert_true(mc.clear);
    assert_null(mc.remove);
    assert_int_equal(json_array_size(mc.add), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(mc.add, 0), "display")), "A");
    assert_string_equal(json_string_value(json_object_get(json_array_get(mc.add, 2), "value")), "u3");
    assert_true(json_equal(mc.add, json_object_get(r, "members")));
    assert_int_equal(json_array_size(res.changed), 1);
    scim_member_change_release(&mc);
    scim_patch_result_release(&res);
    json_decref(r);
    json_decref(edit);
    json_decref(add);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_body_not_object, setup_user, teardown),
        cmocka_unit_test_setup_teardown(test_error_names_operation, setup_user, teardown),
        cmocka_unit_test_setup_teardown(test_success_result, setup_user, teardown),
        cmocka_unit_test_setup_teardown(test_max_operations, setup_user, teardown),
        cmocka_unit_test_setup_teardown(test_member_change, setup_group, teardown),
        cmocka_unit_test_setup_teardown(test_members_without_mc, setup_group, teardown),
        cmocka_unit_test(test_needs_members),
        cmocka_unit_test_setup_teardown(test_loaded_members, setup_group, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
