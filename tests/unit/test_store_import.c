/* scim_store_import_batch (the bulk load behind `scimctl import`) on the SQLite backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scim/schema.h"
#include "store/store.h"

struct fx {
    struct scim_registry *reg;
    struct scim_store *st;
    int64_t tenant;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct scim_err err;
    scim_err_clear(&err);
    f->reg = scim_registry_new();
    struct scim_store_opts o = {.reg = f->reg};
    if (!f->reg || scim_store_open("sqlite::memory:", &o, &f->st, &err) != 0 ||
        scim_store_tenant_default(f->st, &f->tenant, &err) != 0) {
        fprintf(stderr, "setup: %s %s\n", err.detail, err.log);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    scim_store_free(&f->st);
    scim_registry_free(&f->reg);
    free(f);
    return 0;
}

static json_t *jparse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("bad test JSON %s: %s", s, e.text);
    return j;
}

static void release_items(struct scim_store_import_item *it, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(it[i].doc);
        json_decref(it[i].members);
    }
}

/* Kept ids, new UUIDs, members by id and by userName, unknown members counted. */
static void test_import_batch(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    scim_err_clear(&err);
    struct scim_store_import_item it[4] = {
        {.kind = SCIM_RT_USER, .id = "u-1", .doc = jparse("{\"userName\":\"ann\",\"emails\":[{\"value\":\"ann@x.org\"}]}")},
        {.kind = SCIM_RT_USER, .doc = jparse("{\"userName\":\"bob\"}")},
        {.kind = SCIM_RT_GROUP, .id = "g-1", .doc = jparse("{\"displayName\":\"staff\"}"),
         .members = jparse("[{\"value\":\"u-1\"},{\"userName\":\"BOB\",\"display\":\"Bob\"},"
                           "{\"value\":\"nope\"},{\"userName\":\"nobody\"},{\"value\":\"g-1\"}]")},
        {.kind = SCIM_RT_GROUP, .doc = jparse("{\"displayName\":\"empty\"}")},
    };
    assert_int_equal(scim_store_import_batch(f->st, f->tenant, it, 4, &err), 0);
    for (int i = 0; i < 4; i++)
        assert_false(it[i].failed);
    assert_string_equal(it[0].new_id, "u-1");
    assert_int_equal(strlen(it[1].new_id), 36); /* a UUID */
    assert_string_equal(it[2].new_id, "g-1");
    assert_int_equal(it[2].skipped_members, 3); /* nope, nobody, the group itself */

    json_t *g = NULL;
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_GROUP, "g-1", SCIM_STORE_MEMBERS, &g, &err), 0);
    json_t *m = json_object_get(g, "members");
    assert_int_equal(json_array_size(m), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "value")), "u-1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "value")), it[1].new_id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "display")), "Bob");
    json_decref(g);

    json_t *u = NULL;
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, "u-1", SCIM_STORE_GROUPS, &u, &err), 0);
    assert_string_equal(json_string_value(json_object_get(u, "userName")), "ann");
    assert_string_equal(json_string_value(json_object_get(json_object_get(u, "meta"), "version")), "W/\"1\"");
    assert_int_equal(json_array_size(json_object_get(u, "groups")), 1);
    json_decref(u);
    release_items(it, 4);
}

/* A clash fails that item only (409, with the reason); the rest of the batch is written. */
static void test_import_conflicts(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    scim_err_clear(&err);
    struct scim_store_import_item a[1] = {
        {.kind = SCIM_RT_USER, .id = "u-1", .doc = jparse("{\"userName\":\"ann\"}")},
    };
    assert_int_equal(scim_store_import_batch(f->st, f->tenant, a, 1, &err), 0);
    struct scim_store_import_item b[4] = {
        {.kind = SCIM_RT_USER, .doc = jparse("{\"userName\":\"ANN\"}")},           /* userName in use */
        {.kind = SCIM_RT_GROUP, .id = "u-1", .doc = jparse("{\"displayName\":\"x\"}")}, /* id in use */
        {.kind = SCIM_RT_USER, .id = "u-2", .doc = jparse("{\"userName\":\"cid\"}")},
        {.kind = SCIM_RT_USER, .doc = jparse("{\"userName\":\"cid\"}")},           /* clash within the batch */
    };
    assert_int_equal(scim_store_import_batch(f->st, f->tenant, b, 4, &err), 0);
    assert_true(b[0].failed);
    assert_int_equal(b[0].err.status, 409);
    assert_string_equal(b[0].err.scim_type, "uniqueness");
    assert_true(b[1].failed);
    assert_int_equal(b[1].err.status, 409);
    assert_non_null(strstr(b[1].err.detail, "u-1"));
    assert_false(b[2].failed);
    assert_true(b[3].failed);
    assert_int_equal(b[3].err.status, 409);

    struct scim_store_query q = {.start_index = 1, .count = 10};
    struct scim_store_page page;
    assert_int_equal(scim_store_list(f->st, f->tenant, SCIM_RT_USER, &q, &page, &err), 0);
    assert_int_equal(page.total, 2); /* ann and cid */
    json_decref(page.resources);
    release_items(a, 1);
    release_items(b, 4);
}

static void test_import_bad_args(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    scim_err_clear(&err);
    struct scim_store_import_item it[1] = {{.kind = SCIM_RT_USER, .doc = NULL}};
    assert_int_equal(scim_store_import_batch(f->st, f->tenant, it, 1, &err), -1);
    assert_int_equal(err.status, 500);
    assert_int_equal(scim_store_import_batch(f->st, f->tenant, NULL, 0, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_import_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_bad_args, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
