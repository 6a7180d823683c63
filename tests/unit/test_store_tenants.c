/* Store additions of issue 4: tenants, settings, linking, revival, deprovisioning, membership
 * origins, default groups and unique e-mails (SQLite backend, through store.h). */
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
    char pgname[64];
    struct scim_tenant_settings set;
    struct scim_store_wopts w;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct scim_err err;
    scim_err_clear(&err);
    f->reg = scim_registry_new();
    struct scim_store_opts o = {.reg = f->reg};
    char uri[512] = "sqlite::memory:";
    /* SCIMD_TEST_BACKEND=postgresql: a fresh PostgreSQL database (testdb.h) */
    if (testdb_pg() && testdb_create(uri, sizeof(uri), f->pgname) != 0)
        return -1;
    if (!f->reg || scim_store_open(uri, &o, &f->st, &err) != 0 ||
        scim_store_tenant_default(f->st, &f->tenant, &err) != 0 ||
        scim_tenant_settings_init(&f->set, &err) != 0) {
        fprintf(stderr, "setup: %s %s\n", err.detail, err.log);
        return -1;
    }
    f->w.settings = &f->set;
    f->w.managed_by = "idp";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    scim_tenant_settings_release(&f->set);
    scim_store_free(&f->st);
    if (f->pgname[0])
        testdb_drop(f->pgname);
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

/* Creates with options; returns the status (0 on success) and the id in `id`. */
static int mk(struct fx *f, int64_t tenant, enum scim_rtype kind, const char *origin,
              const char *doc_text, const char *members, char id[40])
{
    struct scim_err err;
    json_t *doc = jparse(doc_text), *mem = members ? jparse(members) : NULL, *out = NULL;
    f->w.origin = origin;
    int rc = scim_store_create_ex(f->st, tenant, kind, doc, mem, NULL, &f->w, 0, &out, NULL, &err);
    if (rc == 0 && id)
        snprintf(id, 40, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(doc);
    json_decref(mem);
    json_decref(out);
    return rc == 0 ? 0 : err.status;
}

static json_t *get(struct fx *f, enum scim_rtype kind, const char *id, unsigned flags, int *status)
{
    struct scim_err err;
    json_t *out = NULL;
    *status = scim_store_get(f->st, f->tenant, kind, id, flags, &out, &err) == 0 ? 200 : err.status;
    return out;
}

static void test_tenants(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    struct scim_tenant t;
    json_t *list = NULL;
    char uid[40];

    assert_int_equal(scim_store_tenant_create(f->st, "Bad_Name", NULL, &err), -1);
    assert_int_equal(err.status, 400);
    assert_int_equal(scim_store_tenant_create(f->st, "acme", &t, &err), 0);
    assert_string_equal(t.name, "acme");
    assert_false(t.disabled);
    assert_true(t.settings.scim_enabled);
    int64_t acme = t.id;
    scim_tenant_release(&t);
    assert_int_equal(scim_store_tenant_create(f->st, "acme", NULL, &err), -1);
    assert_int_equal(err.status, 409);
    assert_int_equal(scim_store_tenant_list(f->st, &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "name")), "acme");
    json_decref(list);

    /* settings round trip and validation */
    json_t *p = jparse("{\"delete_mode\":\"deactivate\",\"unique_emails\":true,\"default_groups\":[\"g1\"]}");
    assert_int_equal(scim_tenant_settings_apply(&f->set, p, &err), 0);
    json_decref(p);
    p = jparse("{\"unique_emails\":false,\"bogus\":1}");
    assert_int_equal(scim_tenant_settings_apply(&f->set, p, &err), -1);
    assert_int_equal(err.status, 400);
    assert_non_null(strstr(err.detail, "bogus"));
    assert_true(f->set.unique_emails); /* unchanged by the failed apply */
    json_decref(p);
    assert_int_equal(scim_store_tenant_update(f->st, acme, 1, &f->set, &err), 0);
    assert_int_equal(scim_store_tenant_get(f->st, 0, "acme", &t, &err), 0);
    assert_true(t.disabled);
    assert_int_equal(t.settings.delete_mode, SCIM_DELETE_DEACTIVATE);
    assert_string_equal(json_string_value(json_array_get(t.settings.default_groups, 0)), "g1");
    scim_tenant_release(&t);
    assert_int_equal(scim_store_tenant_get(f->st, 0, "ACME", &t, &err), -1);
    assert_int_equal(err.status, 404);

    /* delete cascades: users, tokens */
    unsigned char hash[32] = {1};
    assert_int_equal(scim_store_token_create(f->st, acme, "t", hash, "scim:read", 0, &err), 0);
    assert_int_equal(mk(f, acme, SCIM_RT_USER, NULL, "{\"userName\":\"a\"}", NULL, uid), 0);
    int64_t users, groups;
    assert_int_equal(scim_store_tenant_stats(f->st, acme, &users, &groups, &err), 0);
    assert_int_equal(users, 1);
    assert_int_equal(groups, 0);
    assert_int_equal(scim_store_tenant_delete(f->st, acme, &err), 0);
    struct scim_token tok;
    assert_int_equal(scim_store_token_find(f->st, hash, 0, &tok, &err), -1);
    assert_int_equal(err.status, 401);
    assert_int_equal(scim_store_tenant_stats(f->st, acme, &users, &groups, &err), 0);
    assert_int_equal(users, 0);
    assert_int_equal(scim_store_tenant_delete(f->st, acme, &err), -1);
    assert_int_equal(err.status, 404);
}

static void test_deactivate_and_revive(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    char uid[40], uid2[40];
    int status;
    f->set.delete_mode = SCIM_DELETE_DEACTIVATE;
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, NULL, "{\"userName\":\"bob\",\"active\":true}", NULL, uid), 0);
    assert_int_equal(scim_store_delete_ex(f->st, f->tenant, SCIM_RT_USER, uid, -1, 0, &f->w, &err), 0);
    json_t *r = get(f, SCIM_RT_USER, uid, 0, &status);
    assert_int_equal(status, 404);
    assert_int_equal(scim_store_delete_ex(f->st, f->tenant, SCIM_RT_USER, uid, -1, 0, &f->w, &err), -1);
    assert_int_equal(err.status, 404);
    r = get(f, SCIM_RT_USER, uid, SCIM_STORE_ADMIN, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_object_get(json_object_get(r, "_state"), "deprovisioned")));
    assert_true(json_is_false(json_object_get(r, "active")));
    json_decref(r);
    /* invisible to SCIM lists, visible to the admin list */
    struct scim_store_query q = {.start_index = 1, .count = 10};
    struct scim_store_page page;
    assert_int_equal(scim_store_list(f->st, f->tenant, SCIM_RT_USER, &q, &page, &err), 0);
    assert_int_equal(page.total, 0);
    json_decref(page.resources);
    q.flags = SCIM_STORE_ADMIN;
    q.state = SCIM_STORE_STATE_DEPROVISIONED;
    assert_int_equal(scim_store_list(f->st, f->tenant, SCIM_RT_USER, &q, &page, &err), 0);
    assert_int_equal(page.total, 1);
    json_decref(page.resources);
    /* revive: same id */
    f->w.revived = false;
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, NULL, "{\"userName\":\"BOB\",\"active\":true}", NULL, uid2), 0);
    assert_true(f->w.revived);
    assert_string_equal(uid, uid2);
    r = get(f, SCIM_RT_USER, uid, 0, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(r, "userName")), "BOB");
    json_decref(r);
    /* delete mode delete: gone */
    f->set.delete_mode = SCIM_DELETE_HARD;
    assert_int_equal(scim_store_delete_ex(f->st, f->tenant, SCIM_RT_USER, uid, -1, 0, &f->w, &err), 0);
    r = get(f, SCIM_RT_USER, uid, SCIM_STORE_ADMIN, &status);
    assert_int_equal(status, 404);
}

static void test_linking(void **state)
{
    struct fx *f = *state;
    char local[40], linked[40], g[40], g2[40];
    int status;
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, "local",
                        "{\"userName\":\"carol\",\"title\":\"boss\",\"emails\":[{\"value\":\"c@x.org\",\"primary\":true}]}",
                        NULL, local), 0);
    /* linking off: 409 */
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, NULL, "{\"userName\":\"Carol\"}", NULL, NULL), 409);
    f->set.link_existing_users = true;
    f->w.linked = false;
    /* by primary e-mail, another userName */
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, NULL,
                        "{\"userName\":\"carol2\",\"emails\":[{\"value\":\"C@X.ORG\",\"primary\":true}]}",
                        NULL, linked), 0);
    assert_true(f->w.linked);
    assert_string_equal(local, linked);
    json_t *r = get(f, SCIM_RT_USER, local, SCIM_STORE_ADMIN, &status);
    assert_string_equal(json_string_value(json_object_get(r, "title")), "boss");
    assert_string_equal(json_string_value(json_object_get(r, "userName")), "carol2");
    json_t *stt = json_object_get(r, "_state");
    assert_string_equal(json_string_value(json_object_get(stt, "origin")), "scim");
    assert_string_equal(json_string_value(json_object_get(stt, "managedBy")), "idp");
    json_decref(r);
    /* a SCIM-managed one is not linked again */
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, NULL, "{\"userName\":\"carol2\"}", NULL, NULL), 409);
    /* groups by displayName */
    assert_int_equal(mk(f, f->tenant, SCIM_RT_GROUP, "local", "{\"displayName\":\"Ops\"}", NULL, g), 0);
    assert_int_equal(mk(f, f->tenant, SCIM_RT_GROUP, NULL, "{\"displayName\":\"ops\"}", NULL, g2), 0);
    assert_string_not_equal(g, g2); /* link_existing_groups off */
    f->set.link_existing_groups = true;
    assert_int_equal(mk(f, f->tenant, SCIM_RT_GROUP, "local", "{\"displayName\":\"Dev\"}", NULL, g), 0);
    assert_int_equal(mk(f, f->tenant, SCIM_RT_GROUP, NULL, "{\"displayName\":\"DEV\"}", NULL, g2), 0);
    assert_string_equal(g, g2);
}

static int add_local_cb(void *ctx, json_t *current, struct scim_store_change *chg, struct scim_err *err)
{
    (void)current;
    (void)err;
    chg->modified = true;
    chg->members_add = ctx;
    return 0;
}

static int clear_cb(void *ctx, json_t *current, struct scim_store_change *chg, struct scim_err *err)
{
    (void)ctx;
    (void)current;
    (void)err;
    chg->modified = true;
    chg->members_clear = true;
    return 0;
}

static void test_member_origins_and_defaults(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    char g[40], dg[40], u1[40], u2[40], members[200];
    int status;
    assert_int_equal(mk(f, f->tenant, SCIM_RT_GROUP, NULL, "{\"displayName\":\"all\"}", NULL, dg), 0);
    json_array_append_new(f->set.default_groups, json_string(dg));
    json_array_append_new(f->set.default_groups, json_string("no-such-group"));
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, NULL, "{\"userName\":\"u1\"}", NULL, u1), 0);
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, "local", "{\"userName\":\"u2\"}", NULL, u2), 0);
    snprintf(members, sizeof members, "[{\"value\":\"%s\"}]", u1);
    assert_int_equal(mk(f, f->tenant, SCIM_RT_GROUP, NULL, "{\"displayName\":\"g\"}", members, g), 0);
    json_t *add = json_pack("[{s:s}]", "value", u2);
    assert_int_equal(scim_store_update_ex(f->st, f->tenant, SCIM_RT_GROUP, g, SCIM_STORE_ADMIN,
                                          add_local_cb, add, &f->w, NULL, &err), 0);
    json_decref(add);
    /* SCIM view: only the scim membership; admin view: both with origins */
    json_t *r = get(f, SCIM_RT_GROUP, g, SCIM_STORE_MEMBERS, &status);
    assert_int_equal(json_array_size(json_object_get(r, "members")), 1);
    json_decref(r);
    r = get(f, SCIM_RT_GROUP, g, SCIM_STORE_MEMBERS | SCIM_STORE_ADMIN, &status);
    json_t *m = json_object_get(r, "members");
    assert_int_equal(json_array_size(m), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "origin")), "local");
    json_decref(r);
    /* a SCIM clear removes only the scim membership */
    assert_int_equal(scim_store_update_ex(f->st, f->tenant, SCIM_RT_GROUP, g, 0, clear_cb, NULL,
                                          &f->w, NULL, &err), 0);
    r = get(f, SCIM_RT_GROUP, g, SCIM_STORE_MEMBERS | SCIM_STORE_ADMIN, &status);
    m = json_object_get(r, "members");
    assert_int_equal(json_array_size(m), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "value")), u2);
    json_decref(r);
    /* default group: u1 (SCIM) joined with origin default, u2 (local) did not */
    r = get(f, SCIM_RT_GROUP, dg, SCIM_STORE_MEMBERS | SCIM_STORE_ADMIN, &status);
    m = json_object_get(r, "members");
    assert_int_equal(json_array_size(m), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "origin")), "default");
    json_decref(r);
    r = get(f, SCIM_RT_USER, u1, SCIM_STORE_GROUPS, &status);
    assert_int_equal(json_array_size(json_object_get(r, "groups")), 1); /* groups: all origins */
    json_decref(r);
}

static void test_unique_emails(void **state)
{
    struct fx *f = *state;
    char u[40];
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, NULL,
                        "{\"userName\":\"a\",\"emails\":[{\"value\":\"same@x.org\"}]}", NULL, u), 0);
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, NULL,
                        "{\"userName\":\"b\",\"emails\":[{\"value\":\"SAME@x.org\"}]}", NULL, NULL), 0);
    f->set.unique_emails = true;
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, NULL,
                        "{\"userName\":\"c\",\"emails\":[{\"value\":\"same@X.org\",\"primary\":true}]}", NULL, NULL), 409);
    assert_int_equal(mk(f, f->tenant, SCIM_RT_USER, NULL,
                        "{\"userName\":\"d\",\"emails\":[{\"value\":\"other@x.org\"}]}", NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tenants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deactivate_and_revive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_origins_and_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_emails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
