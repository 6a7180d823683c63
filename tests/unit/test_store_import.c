/* scim_store_import_batch (the bulk load behind `scimctl import`), on SQLite or, with
 * SCIMD_TEST_BACKEND=postgresql, on a fresh PostgreSQL database (testdb.h). */
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
#include "testdb.h"

struct fx {
    struct scim_registry *reg;
    struct scim_store *st;
    int64_t tenant;
    char pgname[64]; /* PostgreSQL: the test database, dropped by teardown */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct scim_err err;
    scim_err_clear(&err);
    f->reg = scim_registry_new();
    struct scim_store_opts o = {.reg = f->reg};
    char uri[512] = "sqlite::memory:";
    if (testdb_pg() && testdb_create(uri, sizeof(uri), f->pgname) != 0) {
        fprintf(stderr, "setup: cannot create a PostgreSQL test database\n");
        return -1;
    }
    if (!f->reg || scim_store_open(uri, &o, &f->st, &err) != 0 ||
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
    if (f->pgname[0])
        testdb_drop(f->pgname);
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

/* The users whose emails.value matches `value`, by filter: the emails table rows were written. */
static int64_t count_by_email(struct fx *f, const char *value)
{
    struct scim_err err;
    scim_err_clear(&err);
    char text[256];
    snprintf(text, sizeof(text), "emails.value eq \"%s\"", value);
    struct scim_filter *flt = NULL;
    struct scim_filter_limits lim = {0, 0};
    if (scim_filter_parse(text, &lim, f->reg, &flt, &err) != 0)
        fail_msg("parse %s: %s", text, err.detail);
    struct scim_store_query q = {.filter = flt, .start_index = 1, .count = 10};
    struct scim_store_page page;
    if (scim_store_list(f->st, f->tenant, SCIM_RT_USER, &q, &page, &err) != 0)
        fail_msg("list: %s", err.detail);
    scim_filter_free(flt);
    json_decref(page.resources);
    return page.total;
}

/* Members resolve against the committed resources and the EARLIER items of the batch only (a
 * later item is skipped, as when items are written one by one); a member named twice is kept
 * once; userNames match case-insensitively, quotes and backslashes included; emails rows,
 * versions and timestamps as for a create; no change-feed events. */
static void test_import_members_and_rows(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    scim_err_clear(&err);
    struct scim_store_import_item a[2] = {
        {.kind = SCIM_RT_USER, .id = "old-1", .doc = jparse("{\"userName\":\"q\\\"uo\\\\te\"}")},
        {.kind = SCIM_RT_GROUP, .id = "old-g", .doc = jparse("{\"displayName\":\"old\"}")},
    };
    assert_int_equal(scim_store_import_batch(f->st, f->tenant, a, 2, &err), 0);
    struct scim_store_import_item b[4] = {
        {.kind = SCIM_RT_GROUP, .id = "g-early", .doc = jparse("{\"displayName\":\"early\"}"),
         .members = jparse("[{\"value\":\"u-late\"},{\"userName\":\"late\"},{\"userName\":\"Q\\\"UO\\\\TE\"},"
                           "{\"value\":\"old-1\"},{\"value\":\"old-g\"}]")},
        {.kind = SCIM_RT_USER, .id = "u-late", .password_hash = "$argon2id$x",
         .doc = jparse("{\"userName\":\"Late\",\"emails\":[{\"value\":\"l1@x.org\",\"type\":\"work\",\"primary\":true},"
                       "{\"value\":\"l2@x.org\"},{\"type\":\"home\"}]}")},
        {.kind = SCIM_RT_GROUP, .id = "g-late", .doc = jparse("{\"displayName\":\"late\"}"),
         .members = jparse("[{\"value\":\"u-late\"},{\"userName\":\"LATE\"},{\"value\":\"g-early\"},"
                           "{\"value\":\"g-late\"}]")},
        {.kind = SCIM_RT_USER, .doc = jparse("{\"userName\":\"plain\"}")},
    };
    assert_int_equal(scim_store_import_batch(f->st, f->tenant, b, 4, &err), 0);
    for (int i = 0; i < 4; i++)
        assert_false(b[i].failed);
    assert_int_equal(b[0].skipped_members, 2); /* u-late and late come after the group */
    assert_int_equal(b[2].skipped_members, 1); /* itself; u-late twice is one membership */

    json_t *g = NULL;
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_GROUP, "g-early", SCIM_STORE_MEMBERS, &g, &err), 0);
    json_t *m = json_object_get(g, "members");
    assert_int_equal(json_array_size(m), 2); /* old-1 once (by userName, then by id), old-g */
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "value")), "old-1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "value")), "old-g");
    json_decref(g);
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_GROUP, "g-late", SCIM_STORE_MEMBERS, &g, &err), 0);
    m = json_object_get(g, "members");
    assert_int_equal(json_array_size(m), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "value")), "u-late");
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "value")), "g-early");
    json_t *meta = json_object_get(g, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "version")), "W/\"1\"");
    assert_string_equal(json_string_value(json_object_get(meta, "created")),
                        json_string_value(json_object_get(meta, "lastModified")));
    json_decref(g);

    json_t *u = NULL;
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, "u-late", SCIM_STORE_GROUPS, &u, &err), 0);
    assert_int_equal(json_array_size(json_object_get(u, "groups")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(u, "meta"), "version")), "W/\"1\"");
    json_decref(u);
    assert_int_equal(count_by_email(f, "l1@x.org"), 1);
    assert_int_equal(count_by_email(f, "L2@x.org"), 1);
    assert_int_equal(count_by_email(f, "l3@x.org"), 0);

    json_t *evs = NULL;
    int64_t last = -1;
    assert_int_equal(scim_store_events_list(f->st, f->tenant, 0, 100, &evs, &last, &err), 0);
    assert_int_equal(json_array_size(evs), 0);
    json_decref(evs);
    release_items(a, 2);
    release_items(b, 4);
}

/* An id of the longest accepted length is kept whole, in reads, lists and memberships (the row
 * buffers once held only 39 characters). */
static void test_import_long_id(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    char id[SCIM_STORE_ID_MAX + 1];
    scim_err_clear(&err);
    memset(id, 'a', SCIM_STORE_ID_MAX);
    id[SCIM_STORE_ID_MAX] = '\0';
    struct scim_store_import_item it[2] = {
        {.kind = SCIM_RT_USER, .id = id, .doc = jparse("{\"userName\":\"long\"}")},
        {.kind = SCIM_RT_GROUP, .id = "g-long", .doc = jparse("{\"displayName\":\"grp\"}"),
         .members = NULL},
    };
    char members[128];
    snprintf(members, sizeof members, "[{\"value\":\"%s\"}]", id);
    it[1].members = jparse(members);
    assert_int_equal(scim_store_import_batch(f->st, f->tenant, it, 2, &err), 0);
    assert_false(it[0].failed);
    assert_string_equal(it[0].new_id, id);

    json_t *u = NULL;
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, id, SCIM_STORE_GROUPS, &u, &err), 0);
    assert_string_equal(json_string_value(json_object_get(u, "id")), id);
    json_decref(u);
    json_t *g = NULL;
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_GROUP, "g-long", SCIM_STORE_MEMBERS, &g, &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(g, "members"), 0), "value")), id);
    json_decref(g);
    release_items(it, 2);
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
        cmocka_unit_test_setup_teardown(test_import_members_and_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_long_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_bad_args, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
