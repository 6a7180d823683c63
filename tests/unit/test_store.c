/* The store through its public interface, on SQLite (in memory) or, with
 * SCIMD_TEST_BACKEND=postgresql, on a fresh PostgreSQL database per test (testdb.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "scim/filter.h"
#include "scim/schema.h"
#include "store/store.h"
#include "store/store_impl.h"
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

/* Creates a resource from JSON text; returns its id (static buffer rotation). */
static const char *mk(struct fx *f, enum scim_rtype kind, const char *doc_text, const char *members)
{
    static char ids[64][37];
    static int next;
    struct scim_err err;
    json_t *doc = jparse(doc_text), *mem = members ? jparse(members) : NULL, *out = NULL;
    int rc = scim_store_create(f->st, f->tenant, kind, doc, mem, NULL, 0, &out, NULL, &err);
    if (rc != 0)
        fail_msg("create %s: %d %s %s", doc_text, err.status, err.detail, err.log);
    char *id = ids[next++ % 64];
    snprintf(id, 37, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(doc);
    json_decref(mem);
    json_decref(out);
    return id;
}

/* An update callback driven by data. */
struct upd {
    json_t *patch;  /* merged into the doc */
    json_t *add;    /* members_add */
    json_t *remove; /* members_remove */
    bool clear;
    bool fail;
    int skipped;
    json_t *seen_members; /* copy of current.members */
};

static int upd_fn(void *ctx, json_t *current, struct scim_store_change *chg, struct scim_err *err)
{
    struct upd *u = ctx;
    if (u->fail)
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE, "callback says no");
    json_t *m = json_object_get(current, "members");
    if (m)
        u->seen_members = json_deep_copy(m);
    if (u->patch) {
        json_t *doc = json_deep_copy(current);
        json_object_del(doc, "schemas");
        json_object_del(doc, "id");
        json_object_del(doc, "meta");
        json_object_del(doc, "members");
        json_object_del(doc, "groups");
        json_object_update(doc, u->patch);
        chg->doc = doc;
        chg->modified = true;
    }
    chg->members_add = u->add;
    chg->members_remove = u->remove;
    chg->members_clear = u->clear;
    if (u->add || u->remove || u->clear)
        chg->modified = true;
    return 0;
}

static int do_update(struct fx *f, enum scim_rtype kind, const char *id, struct upd *u, unsigned flags,
                     json_t **out, struct scim_err *err)
{
    int rc = scim_store_update(f->st, f->tenant, kind, id, flags, upd_fn, u, out, err);
    return rc;
}

static const char *mstr(json_t *o, const char *a, const char *b)
{
    json_t *x = json_object_get(o, a);
    return json_string_value(b ? json_object_get(x, b) : x);
}

static void test_crud(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    json_t *out = NULL;
    json_t *doc = jparse("{\"userName\":\"bjensen\",\"name\":{\"givenName\":\"Barbara\"},"
                         "\"emails\":[{\"value\":\"b@example.com\",\"type\":\"work\",\"primary\":true}],"
                         "\"active\":true,\"" SCIM_SCHEMA_ENTERPRISE "\":{\"employeeNumber\":\"7\"}}");
    assert_int_equal(scim_store_create(f->st, f->tenant, SCIM_RT_USER, doc, NULL, "h$1", 0, &out, NULL, &err), 0);
    json_decref(doc);
    const char *id = mstr(out, "id", NULL);
    assert_int_equal(strlen(id), 36);
    char idc[37];
    snprintf(idc, sizeof(idc), "%s", id);
    assert_string_equal(mstr(out, "meta", "version"), "W/\"1\"");
    assert_string_equal(mstr(out, "meta", "resourceType"), "User");
    assert_string_equal(mstr(out, "userName", NULL), "bjensen");
    json_t *schemas = json_object_get(out, "schemas");
    assert_int_equal(json_array_size(schemas), 2);
    assert_string_equal(json_string_value(json_array_get(schemas, 0)), SCIM_SCHEMA_USER);
    assert_string_equal(json_string_value(json_array_get(schemas, 1)), SCIM_SCHEMA_ENTERPRISE);
    int64_t t;
    assert_int_equal(scim_datetime_parse(mstr(out, "meta", "created"), &t), 0);
    json_decref(out);

    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, idc, 0, &out, &err), 0);
    assert_string_equal(mstr(out, "name", "givenName"), "Barbara");
    json_decref(out);
    /* wrong kind and wrong tenant are 404 */
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_GROUP, idc, 0, &out, &err), -1);
    assert_int_equal(err.status, 404);
    assert_int_equal(scim_store_get(f->st, f->tenant + 1, SCIM_RT_USER, idc, 0, &out, &err), -1);
    assert_int_equal(err.status, 404);

    struct upd u = {.patch = jparse("{\"displayName\":\"Babs\"}")};
    assert_int_equal(do_update(f, SCIM_RT_USER, idc, &u, 0, &out, &err), 0);
    assert_string_equal(mstr(out, "meta", "version"), "W/\"2\"");
    assert_string_equal(mstr(out, "displayName", NULL), "Babs");
    assert_string_equal(mstr(out, "userName", NULL), "bjensen");
    json_decref(out);
    json_decref(u.patch);

    /* nothing modified: version stays */
    struct upd none = {0};
    assert_int_equal(do_update(f, SCIM_RT_USER, idc, &none, 0, &out, &err), 0);
    assert_string_equal(mstr(out, "meta", "version"), "W/\"2\"");
    json_decref(out);

    assert_int_equal(scim_store_delete(f->st, f->tenant, SCIM_RT_USER, idc, 1, &err), -1);
    assert_int_equal(err.status, 412);
    assert_int_equal(scim_store_delete(f->st, f->tenant, SCIM_RT_USER, idc, 2, &err), 0);
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, idc, 0, &out, &err), -1);
    assert_int_equal(err.status, 404);
    assert_int_equal(scim_store_delete(f->st, f->tenant, SCIM_RT_USER, idc, -1, &err), -1);
    assert_int_equal(err.status, 404);
    assert_int_equal(do_update(f, SCIM_RT_USER, idc, &none, 0, &out, &err), -1);
    assert_int_equal(err.status, 404);
}

static void test_uniqueness(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    mk(f, SCIM_RT_USER, "{\"userName\":\"alice\"}", NULL);
    const char *bob = mk(f, SCIM_RT_USER, "{\"userName\":\"bob\"}", NULL);
    json_t *doc = jparse("{\"userName\":\"ALICE\"}"), *out = NULL;
    assert_int_equal(scim_store_create(f->st, f->tenant, SCIM_RT_USER, doc, NULL, NULL, 0, &out, NULL, &err), -1);
    assert_int_equal(err.status, 409);
    assert_string_equal(err.scim_type, SCIM_TYPE_UNIQUENESS);
    assert_string_equal(err.detail, "userName \"ALICE\" is already in use");
    assert_null(strstr(err.detail, "UNIQUE"));
    assert_null(out);
    json_decref(doc);
    /* rename bob to Alice: 409, bob unchanged */
    struct upd u = {.patch = jparse("{\"userName\":\"Alice\"}")};
    assert_int_equal(do_update(f, SCIM_RT_USER, bob, &u, 0, &out, &err), -1);
    assert_int_equal(err.status, 409);
    json_decref(u.patch);
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, bob, 0, &out, &err), 0);
    assert_string_equal(mstr(out, "userName", NULL), "bob");
    assert_string_equal(mstr(out, "meta", "version"), "W/\"1\"");
    json_decref(out);
    /* groups may share display names */
    mk(f, SCIM_RT_GROUP, "{\"displayName\":\"alice\"}", NULL);
    mk(f, SCIM_RT_GROUP, "{\"displayName\":\"alice\"}", NULL);
}

static void test_update_fail_rolls_back(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    json_t *out = NULL;
    const char *id = mk(f, SCIM_RT_USER, "{\"userName\":\"carol\",\"title\":\"x\"}", NULL);
    struct upd u = {.fail = true};
    assert_int_equal(do_update(f, SCIM_RT_USER, id, &u, 0, &out, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.detail, "callback says no");
    assert_null(out);
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, id, 0, &out, &err), 0);
    assert_string_equal(mstr(out, "title", NULL), "x");
    assert_string_equal(mstr(out, "meta", "version"), "W/\"1\"");
    json_decref(out);
}

static json_t *member_ids(json_t *res)
{
    json_t *ids = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(res, "members"), i, m)
        json_array_append(ids, json_object_get(m, "value"));
    return ids;
}

static void assert_ids(json_t *arr, const char *const *want, size_t n)
{
    if (json_array_size(arr) != n) {
        char *s = json_dumps(arr, 0);
        fail_msg("got %s, want %zu ids", s, n);
    }
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(arr, i)), want[i]);
}

static void test_members(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    char u1[37], u2[37], u3[37], g[37];
    snprintf(u1, 37, "%s", mk(f, SCIM_RT_USER, "{\"userName\":\"m1\",\"displayName\":\"Member One\"}", NULL));
    snprintf(u2, 37, "%s", mk(f, SCIM_RT_USER, "{\"userName\":\"m2\"}", NULL));
    snprintf(u3, 37, "%s", mk(f, SCIM_RT_USER, "{\"userName\":\"m3\"}", NULL));
    char mem[256];
    snprintf(mem, sizeof(mem), "[{\"value\":\"%s\"},{\"value\":\"nope\"},{\"value\":\"%s\",\"display\":\"Two\"}]", u2, u1);
    json_t *doc = jparse("{\"displayName\":\"G\"}"), *members = jparse(mem), *out = NULL;
    int skipped = -1;
    assert_int_equal(scim_store_create(f->st, f->tenant, SCIM_RT_GROUP, doc, members, NULL,
                                       SCIM_STORE_MEMBERS, &out, &skipped, &err), 0);
    assert_int_equal(skipped, 1);
    snprintf(g, 37, "%s", mstr(out, "id", NULL));
    json_t *ids = member_ids(out);
    assert_ids(ids, (const char *const[]){u2, u1}, 2);
    json_t *m0 = json_array_get(json_object_get(out, "members"), 0);
    json_t *m1 = json_array_get(json_object_get(out, "members"), 1);
    assert_string_equal(mstr(m0, "display", NULL), "m2");         /* userName fallback */
    assert_string_equal(mstr(m1, "display", NULL), "Two");        /* stored display */
    assert_string_equal(mstr(m0, "type", NULL), "User");
    json_decref(ids);
    json_decref(out);
    json_decref(doc);
    json_decref(members);

    /* add u3 (and u1 again, and the group itself), remove u2 */
    char add[256], rem[64];
    snprintf(add, sizeof(add), "[{\"value\":\"%s\"},{\"value\":\"%s\"},{\"value\":\"%s\"}]", u3, u1, g);
    snprintf(rem, sizeof(rem), "[\"%s\", \"absent\"]", u2);
    struct upd u = {.add = jparse(add), .remove = jparse(rem)};
    assert_int_equal(do_update(f, SCIM_RT_GROUP, g, &u, SCIM_STORE_MEMBERS, &out, &err), 0);
    assert_null(u.seen_members); /* not loaded without LOAD_MEMBERS */
    ids = member_ids(out);
    assert_ids(ids, (const char *const[]){u1, u3}, 2);
    assert_string_equal(mstr(out, "meta", "version"), "W/\"2\"");
    json_decref(ids);
    json_decref(out);
    json_decref(u.add);
    json_decref(u.remove);

    /* LOAD_MEMBERS passes them to the callback; clear empties */
    struct upd c = {.clear = true};
    assert_int_equal(do_update(f, SCIM_RT_GROUP, g, &c, SCIM_STORE_LOAD_MEMBERS | SCIM_STORE_MEMBERS, &out, &err), 0);
    assert_int_equal(json_array_size(c.seen_members), 2);
    assert_int_equal(json_array_size(json_object_get(out, "members")), 0);
    assert_string_equal(mstr(out, "meta", "version"), "W/\"3\"");
    json_decref(c.seen_members);
    json_decref(out);
}

static void test_groups_derived(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    char u[37], inner[37], outer[37], mem[128];
    snprintf(u, 37, "%s", mk(f, SCIM_RT_USER, "{\"userName\":\"nested\"}", NULL));
    snprintf(mem, sizeof(mem), "[{\"value\":\"%s\"}]", u);
    snprintf(inner, 37, "%s", mk(f, SCIM_RT_GROUP, "{\"displayName\":\"Inner\"}", mem));
    snprintf(mem, sizeof(mem), "[{\"value\":\"%s\"}]", inner);
    snprintf(outer, 37, "%s", mk(f, SCIM_RT_GROUP, "{\"displayName\":\"Outer\"}", mem));
    json_t *out = NULL;
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, u, SCIM_STORE_GROUPS, &out, &err), 0);
    json_t *groups = json_object_get(out, "groups");
    assert_int_equal(json_array_size(groups), 2);
    assert_string_equal(mstr(json_array_get(groups, 0), "value", NULL), inner);
    assert_string_equal(mstr(json_array_get(groups, 0), "type", NULL), "direct");
    assert_string_equal(mstr(json_array_get(groups, 0), "display", NULL), "Inner");
    assert_string_equal(mstr(json_array_get(groups, 1), "value", NULL), outer);
    assert_string_equal(mstr(json_array_get(groups, 1), "type", NULL), "indirect");
    json_decref(out);
    /* without the flag: no groups */
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, u, 0, &out, &err), 0);
    assert_null(json_object_get(out, "groups"));
    json_decref(out);

    /* deleting the user removes the membership and bumps the group */
    assert_int_equal(scim_store_delete(f->st, f->tenant, SCIM_RT_USER, u, -1, &err), 0);
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_GROUP, inner, SCIM_STORE_MEMBERS, &out, &err), 0);
    assert_int_equal(json_array_size(json_object_get(out, "members")), 0);
    assert_string_equal(mstr(out, "meta", "version"), "W/\"2\"");
    json_decref(out);
    /* deleting the inner group removes it from the outer one */
    assert_int_equal(scim_store_delete(f->st, f->tenant, SCIM_RT_GROUP, inner, -1, &err), 0);
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_GROUP, outer, SCIM_STORE_MEMBERS, &out, &err), 0);
    assert_int_equal(json_array_size(json_object_get(out, "members")), 0);
    json_decref(out);
}

static void test_tokens(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    unsigned char h1[32], h2[32], h3[32];
    memset(h1, 1, 32);
    memset(h2, 2, 32);
    memset(h3, 3, 32);
    assert_int_equal(scim_store_token_create(f->st, f->tenant, "okta", h1, "scim:read scim:write", 0, &err), 0);
    assert_int_equal(scim_store_token_create(f->st, f->tenant, "okta", h2, "scim:read", 0, &err), -1);
    assert_int_equal(err.status, 409);
    assert_string_equal(err.scim_type, SCIM_TYPE_UNIQUENESS);
    int64_t now = scim_now_us();
    assert_int_equal(scim_store_token_create(f->st, f->tenant, "old", h3, "scim:read", now - 1000, &err), 0);
    struct scim_token t;
    assert_int_equal(scim_store_token_find(f->st, h1, now, &t, &err), 0);
    assert_string_equal(t.name, "okta");
    assert_string_equal(t.scopes, "scim:read scim:write");
    assert_int_equal(t.tenant_id, f->tenant);
    assert_int_equal(t.last_used_us, 0);
    assert_int_equal(scim_store_token_touch(f->st, t.id, now, &err), 0);
    assert_int_equal(scim_store_token_find(f->st, h1, now, &t, &err), 0);
    assert_int_equal(t.last_used_us, now);
    assert_int_equal(scim_store_token_find(f->st, h3, now, &t, &err), -1); /* expired */
    assert_int_equal(err.status, 401);
    assert_int_equal(scim_store_token_find(f->st, h2, now, &t, &err), -1);
    assert_int_equal(err.status, 401);
    int64_t n = -1;
    assert_int_equal(scim_store_token_count(f->st, f->tenant, &n, &err), 0);
    assert_int_equal(n, 1);
    json_t *list = NULL;
    assert_int_equal(scim_store_token_list(f->st, f->tenant, &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(mstr(json_array_get(list, 0), "name", NULL), "okta");
    assert_non_null(json_object_get(json_array_get(list, 0), "lastUsed"));
    assert_non_null(json_object_get(json_array_get(list, 1), "expires"));
    json_decref(list);
    assert_int_equal(scim_store_token_revoke(f->st, f->tenant, "okta", &err), 0);
    assert_int_equal(scim_store_token_revoke(f->st, f->tenant, "okta", &err), -1);
    assert_int_equal(err.status, 404);
    assert_int_equal(scim_store_token_find(f->st, h1, now, &t, &err), -1);
    /* the name is free again after revocation */
    assert_int_equal(scim_store_token_create(f->st, f->tenant, "okta", h2, "scim:read", 0, &err), 0);
    assert_int_equal(scim_store_token_find(f->st, h2, now, &t, &err), 0);
}

/* ---- concurrency ----------------------------------------------------------------------- */

struct worker {
    struct scim_store *st;
    int64_t tenant;
    const char *group;
    char (*ids)[37];
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 50; i++) {
        char add[64];
        snprintf(add, sizeof(add), "[{\"value\":\"%s\"}]", w->ids[i]);
        struct upd u = {.add = json_loads(add, 0, NULL)};
        struct scim_err err;
        if (scim_store_update(w->st, w->tenant, SCIM_RT_GROUP, w->group, SCIM_STORE_NO_OUTPUT, upd_fn, &u,
                              NULL, &err) != 0) {
            fprintf(stderr, "update: %d %s %s\n", err.status, err.detail, err.log);
            w->failures++;
        }
        json_decref(u.add);
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    (void)state;
    char dir[] = "/tmp/scimd-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512], pgname[64] = "";
    snprintf(path, sizeof(path), "sqlite:%s/c.db", dir);
    if (testdb_pg())
        assert_int_equal(testdb_create(path, sizeof(path), pgname), 0);
    struct scim_store *st = NULL;
    struct scim_err err;
    struct scim_store_opts o = {.pool_size = 8};
    assert_int_equal(scim_store_open(path, &o, &st, &err), 0);
    assert_string_equal(scim_store_backend(st), testdb_pg() ? "postgresql" : "sqlite");
    int64_t tenant;
    assert_int_equal(scim_store_tenant_default(st, &tenant, &err), 0);
    static char ids[400][37];
    for (int i = 0; i < 400; i++) {
        char doc[64];
        snprintf(doc, sizeof(doc), "{\"userName\":\"cu%d\"}", i);
        json_t *d = json_loads(doc, 0, NULL), *out = NULL;
        assert_int_equal(scim_store_create(st, tenant, SCIM_RT_USER, d, NULL, NULL, 0, &out, NULL, &err), 0);
        snprintf(ids[i], 37, "%s", mstr(out, "id", NULL));
        json_decref(d);
        json_decref(out);
    }
    json_t *gd = json_loads("{\"displayName\":\"Crowd\"}", 0, NULL), *g = NULL;
    assert_int_equal(scim_store_create(st, tenant, SCIM_RT_GROUP, gd, NULL, NULL, 0, &g, NULL, &err), 0);
    pthread_t th[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.st = st, .tenant = tenant, .group = mstr(g, "id", NULL), .ids = ids + i * 50};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    json_t *out = NULL;
    assert_int_equal(scim_store_get(st, tenant, SCIM_RT_GROUP, mstr(g, "id", NULL), SCIM_STORE_MEMBERS, &out, &err), 0);
    assert_int_equal(json_array_size(json_object_get(out, "members")), 400);
    assert_string_equal(mstr(out, "meta", "version"), "W/\"401\"");
    json_decref(out);
    json_decref(g);
    json_decref(gd);
    scim_store_free(&st);
    /* reopening runs no migration twice and sees the data */
    assert_int_equal(scim_store_open(path, &o, &st, &err), 0);
    int64_t t2;
    assert_int_equal(scim_store_tenant_default(st, &t2, &err), 0);
    assert_int_equal(t2, tenant);
    scim_store_free(&st);
    if (pgname[0])
        testdb_drop(pgname);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct scim_store *st = NULL;
    struct scim_err err;
    scim_err_clear(&err);
    assert_int_equal(scim_store_open("sqlite:/nonexistent-dir-scimd/x.db", NULL, &st, &err), -1);
    assert_null(st);
    assert_int_equal(err.status, 500);
    assert_non_null(strstr(err.detail, "cannot open database"));
    assert_int_equal(scim_store_etag_version("W/\"12\""), 12);
    assert_int_equal(scim_store_etag_version("\"3\""), 3);
    assert_int_equal(scim_store_etag_version("W/\"x\""), -1);
    assert_int_equal(scim_store_etag_version("12"), -1);
    assert_int_equal(scim_store_etag_version(NULL), -1);
}

/* ---- list and filters --------------------------------------------------------------- */

struct seed {
    char u[10][37];
    char g[3][37];
};

static struct seed S;

static const char *const users[10] = {
    "{\"userName\":\"bjensen\",\"displayName\":\"Barbara Jensen\",\"externalId\":\"ext-1\",\"active\":true,"
    "\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},\"title\":\"Tour Guide\",\"userType\":\"Employee\","
    "\"emails\":[{\"value\":\"bjensen@example.com\",\"type\":\"work\",\"primary\":true},{\"value\":\"babs@home.org\",\"type\":\"home\"}],"
    "\"phoneNumbers\":[{\"value\":\"555-555-8377\",\"type\":\"work\"}],"
    "\"" SCIM_SCHEMA_ENTERPRISE "\":{\"employeeNumber\":\"701984\",\"department\":\"Tour Operations\"}}",
    "{\"userName\":\"jsmith\",\"displayName\":\"John Smith\",\"externalId\":\"EXT-2\",\"active\":false,"
    "\"name\":{\"givenName\":\"John\",\"familyName\":\"Smith\"},\"title\":\"Engineer\","
    "\"emails\":[{\"value\":\"john@example.com\",\"type\":\"work\"}],"
    "\"phoneNumbers\":[{\"value\":\"555-1000\",\"type\":\"mobile\"}]}",
    "{\"userName\":\"alice.w\",\"displayName\":\"Alice Wonder\",\"active\":true,"
    "\"name\":{\"givenName\":\"Alice\",\"familyName\":\"Wonder\"},\"title\":\"engineer\","
    "\"emails\":[{\"value\":\"alice@wonder.land\",\"type\":\"work\",\"primary\":true}],"
    "\"" SCIM_SCHEMA_ENTERPRISE "\":{\"employeeNumber\":\"42\",\"department\":\"R&D\"}}",
    "{\"userName\":\"o'brien\",\"displayName\":\"Pat O'Brien\",\"active\":true,"
    "\"name\":{\"givenName\":\"Pat\",\"familyName\":\"O'Brien\"}}",
    "{\"userName\":\"100%_real\",\"displayName\":\"Percent\",\"active\":true,\"title\":\"\"}",
    "{\"userName\":\"x' OR 1=1 --\",\"displayName\":\"Mallory\",\"active\":false}",
    "{\"userName\":\"zed\",\"active\":true,\"emails\":[{\"value\":\"Zed@Example.COM\",\"type\":\"home\"}]}",
    "{\"userName\":\"Bob@example.com\",\"displayName\":\"bob\",\"userType\":\"Contractor\"}",
    "{\"userName\":\"carl\",\"displayName\":\"Carl\",\"active\":true,\"name\":{\"givenName\":\"Carl\"},"
    "\"phoneNumbers\":[{\"value\":\"555-2000\",\"type\":\"work\"},{\"value\":\"555-0500\",\"type\":\"home\",\"primary\":true}]}",
    "{\"userName\":\"dora\",\"displayName\":\"Dora\",\"active\":true,\"title\":\"Tour Guide\"}",
};

static int setup_seeded(void **state)
{
    if (setup(state) != 0)
        return -1;
    struct fx *f = *state;
    for (int i = 0; i < 10; i++)
        snprintf(S.u[i], 37, "%s", mk(f, SCIM_RT_USER, users[i], NULL));
    char mem[256];
    snprintf(mem, sizeof(mem), "[{\"value\":\"%s\"},{\"value\":\"%s\"}]", S.u[0], S.u[1]);
    snprintf(S.g[0], 37, "%s", mk(f, SCIM_RT_GROUP, "{\"displayName\":\"Tour Guides\",\"externalId\":\"g-1\"}", mem));
    snprintf(mem, sizeof(mem), "[{\"value\":\"%s\"}]", S.g[0]);
    snprintf(S.g[1], 37, "%s", mk(f, SCIM_RT_GROUP, "{\"displayName\":\"Staff\"}", mem));
    snprintf(S.g[2], 37, "%s", mk(f, SCIM_RT_GROUP, "{\"displayName\":\"Empty\"}", NULL));
    return 0;
}

/* Runs a list and returns the indexes of the matching seeded resources as "0,3,7". */
static char *run_list(struct fx *f, enum scim_rtype kind, const char *filter, const char *sort,
                      bool desc, int64_t start, int64_t count, int64_t *total, struct scim_err *err)
{
    struct scim_filter *flt = NULL;
    struct scim_filter_limits lim = {0, 0};
    struct scim_attrpath sp = {0};
    if (filter && scim_filter_parse(filter, &lim, f->reg, &flt, err) != 0)
        fail_msg("parse %s: %s", filter, err->detail);
    char *attr = NULL, *sub = NULL;
    if (sort) {
        attr = strdup(sort);
        char *dot = strchr(attr, '.');
        if (dot) {
            *dot = '\0';
            sub = dot + 1;
        }
        sp.attr = attr;
        sp.sub = sub;
    }
    struct scim_store_query q = {.filter = flt, .sort_by = sort ? &sp : NULL, .descending = desc,
                                 .start_index = start, .count = count};
    struct scim_store_page page;
    int rc = scim_store_list(f->st, f->tenant, kind, &q, &page, err);
    scim_filter_free(flt);
    free(attr);
    if (rc != 0)
        return NULL;
    if (total)
        *total = page.total;
    char buf[256] = "";
    size_t i;
    json_t *r;
    json_array_foreach(page.resources, i, r) {
        const char *id = mstr(r, "id", NULL);
        int idx = -1;
        for (int k = 0; k < (kind == SCIM_RT_USER ? 10 : 3); k++)
            if (strcmp(id, kind == SCIM_RT_USER ? S.u[k] : S.g[k]) == 0)
                idx = k;
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof(buf) - len, "%s%d", len ? "," : "", idx);
    }
    json_decref(page.resources);
    return strdup(buf);
}

static void check(struct fx *f, enum scim_rtype kind, const char *filter, const char *want)
{
    struct scim_err err;
    scim_err_clear(&err);
    int64_t total = -1;
    char *got = run_list(f, kind, filter, NULL, false, 1, 100, &total, &err);
    if (!got)
        fail_msg("filter %s failed: %d %s %s", filter, err.status, err.detail, err.log);
    if (strcmp(got, want) != 0)
        fail_msg("filter %s: got [%s], want [%s]", filter, got, want);
    free(got);
}

static void check_err(struct fx *f, enum scim_rtype kind, const char *filter, int status)
{
    struct scim_err err;
    scim_err_clear(&err);
    char *got = run_list(f, kind, filter, NULL, false, 1, 100, NULL, &err);
    if (got)
        fail_msg("filter %s: expected an error, got [%s]", filter, got);
    assert_int_equal(err.status, status);
    assert_string_equal(err.scim_type, SCIM_TYPE_INVALID_FILTER);
}

static void test_filters(void **state)
{
    struct fx *f = *state;
    enum scim_rtype U = SCIM_RT_USER, G = SCIM_RT_GROUP;
    check(f, U, NULL, "0,1,2,3,4,5,6,7,8,9");
    check(f, U, "userName eq \"bjensen\"", "0");
    check(f, U, "USERNAME eq \"BJENSEN\"", "0");
    check(f, U, "userName sw \"j\"", "1");
    check(f, U, "userName sw \"B\"", "0,7");
    check(f, U, "userName co \"%\"", "4");
    check(f, U, "userName co \"_\"", "4");
    check(f, U, "userName ew \"@EXAMPLE.COM\"", "7");
    check(f, U, "userName eq \"x' OR 1=1 --\"", "5");
    check(f, U, "userName eq \"o'brien\"", "3");
    check(f, U, "userName gt \"x\"", "5,6");
    check(f, U, "id eq \"nope\"", "");
    check(f, U, "externalId eq \"ext-1\"", "0");
    check(f, U, "externalId eq \"EXT-1\"", ""); /* caseExact */
    check(f, U, "externalId sw \"EXT\"", "1");
    check(f, U, "externalId pr", "0,1");
    check(f, U, "displayName eq \"john smith\"", "1");
    check(f, U, "displayName sw \"a\"", "2");
    check(f, U, "active eq true", "0,2,3,4,6,8,9");
    check(f, U, "active eq false", "1,5");
    check(f, U, "active eq \"True\"", "0,2,3,4,6,8,9");
    check(f, U, "not (active eq true)", "1,5,7");
    check(f, U, "name.givenName eq \"barbara\"", "0");
    check(f, U, "name.familyName co \"o\"", "2,3");
    check(f, U, "title eq \"tour guide\"", "0,9");
    check(f, U, "title pr", "0,1,2,9");
    check(f, U, "title eq null", "3,5,6,7,8");
    check(f, U, "title ne \"engineer\"", "0,3,4,5,6,7,8,9");
    check(f, U, "emails.value eq \"JOHN@example.com\"", "1");
    check(f, U, "emails eq \"zed@example.com\"", "6");
    check(f, U, "emails.value sw \"b\"", "0");
    check(f, U, "emails.value ew \"example.com\"", "0,1,6");
    check(f, U, "emails[type eq \"work\" and value co \"example\"]", "0,1");
    check(f, U, "emails[type eq \"home\"]", "0,6");
    check(f, U, "emails[primary eq true]", "0,2");
    check(f, U, "emails.type eq \"home\" and userName sw \"z\"", "6");
    check(f, U, "emails pr", "0,1,2,6");
    check(f, U, "not (emails pr)", "3,4,5,7,8,9");
    check(f, U, "phoneNumbers[type eq \"work\"]", "0,8");
    check(f, U, "phoneNumbers.value sw \"555-\"", "0,1,8");
    check(f, U, "phoneNumbers[type eq \"home\" and primary eq true]", "8");
    check(f, U, SCIM_SCHEMA_ENTERPRISE ":employeeNumber eq \"42\"", "2");
    check(f, U, SCIM_SCHEMA_ENTERPRISE ":department co \"tour\"", "0");
    check(f, U, "userType eq \"Employee\" or userType eq \"contractor\"", "0,7");
    check(f, U, "(title eq \"engineer\" or title eq \"tour guide\") and active eq true", "0,2,9");
    check(f, U, "meta.resourceType eq \"User\"", "0,1,2,3,4,5,6,7,8,9");
    check(f, U, "meta.resourceType eq \"Group\"", "");
    check(f, U, "meta.version eq \"W/\\\"1\\\"\"", "0,1,2,3,4,5,6,7,8,9");
    check(f, U, "meta.created gt \"2000-01-01T00:00:00Z\"", "0,1,2,3,4,5,6,7,8,9");
    check(f, U, "meta.lastModified lt \"2000-01-01T00:00:00Z\"", "");
    check(f, U, "groups.value eq \"nope\"", "");
    check(f, G, "displayName eq \"staff\"", "1");
    check(f, G, "externalId eq \"g-1\"", "0");
    check(f, G, "members pr", "0,1");
    check(f, G, "not (members pr)", "2");
    check(f, G, "members[type eq \"Group\"]", "1");
    check(f, G, "members[display eq \"John Smith\"]", "0");
    check_err(f, U, "nosuch eq \"x\"", 400);
    check_err(f, U, "active gt true", 400);
    check_err(f, U, "active co \"t\"", 400);
    check_err(f, U, "meta.created eq \"yesterday\"", 400);
    check_err(f, G, "userName eq \"x\"", 400);
    check_err(f, U, "name eq \"x\"", 400);

    /* members/groups by id */
    char flt[160];
    snprintf(flt, sizeof(flt), "members.value eq \"%s\"", S.u[1]);
    check(f, G, flt, "0");
    snprintf(flt, sizeof(flt), "members eq \"%s\"", S.g[0]);
    check(f, G, flt, "1");
    snprintf(flt, sizeof(flt), "groups.value eq \"%s\"", S.g[0]);
    check(f, U, flt, "0,1");
    snprintf(flt, sizeof(flt), "id eq \"%s\" or id eq \"%s\"", S.u[9], S.u[3]);
    check(f, U, flt, "3,9");
}

static void test_paging_sorting(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    int64_t total = -1;
    char *got;
#define LIST(flt, sort, desc, start, count, want, want_total)                                      \
    do {                                                                                           \
        got = run_list(f, SCIM_RT_USER, flt, sort, desc, start, count, &total, &err);            \
        if (!got)                                                                                  \
            fail_msg("list failed: %s %s", err.detail, err.log);                                  \
        if (strcmp(got, want) != 0)                                                                \
            fail_msg("list %s sort %s: got [%s] want [%s]", flt ? flt : "-", sort ? sort : "-",  \
                     got, want);                                                                   \
        assert_int_equal(total, want_total);                                                       \
        free(got);                                                                                 \
    } while (0)
    LIST(NULL, NULL, false, 1, 3, "0,1,2", 10);
    LIST(NULL, NULL, false, 4, 3, "3,4,5", 10);
    LIST(NULL, NULL, false, 10, 3, "9", 10);
    LIST(NULL, NULL, false, 11, 3, "", 10);
    LIST(NULL, NULL, false, 1, 0, "", 10);
    LIST("active eq true", NULL, false, 1, 0, "", 7);
    LIST("active eq true", NULL, false, 2, 2, "2,3", 7);
    /* A filtered page that is not full gives the total without a count query; a full page,
     * or an empty one past the start, needs the count: every case must be exact. */
    LIST("active eq true", NULL, false, 1, 7, "0,2,3,4,6,8,9", 7);
    LIST("active eq true", NULL, false, 1, 100, "0,2,3,4,6,8,9", 7);
    LIST("active eq true", NULL, false, 6, 5, "8,9", 7);
    LIST("active eq true", NULL, false, 7, 1, "9", 7);
    LIST("active eq true", NULL, false, 8, 5, "", 7);
    LIST("active eq true", NULL, false, 20, 5, "", 7);
    LIST("active eq false", NULL, false, 1, 1, "1", 2);
    LIST("active eq false", NULL, false, 2, 5, "5", 2);
    LIST("userName eq \"nobody\"", NULL, false, 1, 100, "", 0);
    LIST("userName eq \"nobody\"", NULL, false, 3, 100, "", 0);
    /* userName sorts case-insensitively */
    LIST(NULL, "userName", false, 1, 10, "4,2,0,7,8,9,1,3,5,6", 10);
    LIST(NULL, "userName", true, 1, 3, "6,5,3", 10);
    /* NULLs last, ties by creation order */
    LIST(NULL, "title", false, 1, 10, "4,1,2,0,9,3,5,6,7,8", 10);
    LIST(NULL, "name.givenName", false, 1, 10, "2,0,8,1,3,4,5,6,7,9", 10);
    /* multi-valued: the primary value */
    LIST(NULL, "phoneNumbers.value", false, 1, 10, "8,1,0,2,3,4,5,6,7,9", 10);
    LIST(NULL, "emails.value", false, 1, 4, "2,0,1,6", 10);
    /* pages of a sorted list are disjoint and complete */
    LIST(NULL, "active", false, 1, 4, "1,5,0,2", 10);
    LIST(NULL, "active", false, 5, 4, "3,4,6,8", 10);
    LIST(NULL, "active", false, 9, 4, "9,7", 10);
    LIST(NULL, "nosuchattr", false, 1, 2, "0,1", 10);
    LIST(NULL, "meta.created", false, 1, 2, "0,1", 10);
    LIST(NULL, "meta.version", false, 1, 2, "0,1", 10);
    LIST(NULL, "externalId", false, 1, 3, "1,0,2", 10); /* caseExact: "EXT-2" < "ext-1" */
#undef LIST
}

static void test_explain(void **state)
{
    struct fx *f = *state;
    if (testdb_pg())
        skip(); /* SQLite's EXPLAIN QUERY PLAN; test_explain_pg below for PostgreSQL */
    const char *filters[] = {
        "id eq \"x\"", "id sw \"x\"", "userName eq \"x\"", "userName sw \"x\"", "externalId eq \"x\"",
        "externalId sw \"x\"", "displayName eq \"x\"", "displayName sw \"x\"", "emails.value eq \"x\"",
        "emails.value sw \"x\"", "emails[value eq \"x\"]",
    };
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        struct scim_filter *flt = NULL;
        struct scim_err err;
        struct scim_filter_limits lim = {0, 0};
        assert_int_equal(scim_filter_parse(filters[i], &lim, f->reg, &flt, &err), 0);
        struct scim_store_query q = {.filter = flt, .start_index = 1, .count = 10};
        char *plan = NULL;
        assert_int_equal(scim_sqlite_explain(f->st, f->tenant, SCIM_RT_USER, &q, &plan, &err), 0);
        if (getenv("SHOW_PLAN"))
            fprintf(stderr, "%s:\n%s", filters[i], plan);
        if (!strstr(plan, "USING INDEX") && !strstr(plan, "USING INTEGER PRIMARY KEY") &&
            !strstr(plan, "USING COVERING INDEX"))
            fail_msg("%s: no index in plan:\n%s", filters[i], plan);
        if (strstr(plan, "SCAN r\n") || strstr(plan, "SCAN resources"))
            fail_msg("%s: table scan in plan:\n%s", filters[i], plan);
        if (strstr(filters[i], "emails") && !strstr(plan, "emails_value"))
            fail_msg("%s: emails index unused:\n%s", filters[i], plan);
        free(plan);
        scim_filter_free(flt);
    }
}

/* PostgreSQL: with a few thousand users (and ANALYZE, so the planner knows the table is not
 * tiny), eq and sw on id, userName, externalId, displayName and emails.value use their index.
 * The prefixes are selective: for a prefix matching a few percent of the rows the planner may
 * rightly prefer walking the primary key for ORDER BY pk LIMIT 10. */
static void test_explain_pg(void **state)
{
    struct fx *f = *state;
    if (!testdb_pg())
        skip();
    struct scim_err err;
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO resources(tenant_id, kind, id, user_name, external_id, display_name, active,"
             " created, last_modified, version, doc)"
             " SELECT %lld, 0, md5(i::text), 'user' || i, 'ext-' || i, 'Name ' || i, true, i, i, 1,"
             " jsonb_build_object('userName', 'user' || i) FROM generate_series(1, 5000) i;"
             "INSERT INTO emails(resource_pk, tenant_id, value)"
             " SELECT pk, tenant_id, user_name || '@example.org' FROM resources WHERE kind = 0;"
             "ANALYZE",
             (long long)f->tenant);
    if (scim_pg_exec(f->st, sql, &err) != 0)
        fail_msg("seed: %s %s", err.detail, err.log);
    const struct {
        const char *filter, *index;
    } cases[] = {
        {"id eq \"x\"", "resources_id"},
        {"id sw \"x\"", "resources_id"},
        {"userName eq \"user42\"", "resources_user_name"},
        {"userName sw \"USER424\"", "resources_user_name"},
        {"externalId eq \"ext-42\"", "resources_external_id"},
        {"externalId sw \"ext-424\"", "resources_external_id"},
        {"displayName eq \"name 42\"", "resources_display_name"},
        {"displayName sw \"Name 424\"", "resources_display_name"},
        {"emails.value eq \"user42@example.org\"", "emails_value"},
        {"emails.value sw \"USER424\"", "emails_value"},
        {"emails[value eq \"user42@example.org\"]", "emails_value"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct scim_filter *flt = NULL;
        struct scim_filter_limits lim = {0, 0};
        assert_int_equal(scim_filter_parse(cases[i].filter, &lim, f->reg, &flt, &err), 0);
        struct scim_store_query q = {.filter = flt, .start_index = 1, .count = 10};
        char *plan = NULL;
        if (scim_pg_explain(f->st, f->tenant, SCIM_RT_USER, &q, &plan, &err) != 0)
            fail_msg("%s: explain: %s %s", cases[i].filter, err.detail, err.log);
        if (getenv("SHOW_PLAN"))
            fprintf(stderr, "%s:\n%s", cases[i].filter, plan);
        if (!strstr(plan, cases[i].index))
            fail_msg("%s: index %s not in plan:\n%s", cases[i].filter, cases[i].index, plan);
        if (strstr(plan, "Seq Scan on resources"))
            fail_msg("%s: sequential scan of resources:\n%s", cases[i].filter, plan);
        free(plan);
        scim_filter_free(flt);
        /* and the query itself returns the right rows */
        if (strstr(cases[i].filter, "42")) {
            struct scim_store_page page;
            assert_int_equal(scim_filter_parse(cases[i].filter, &lim, f->reg, &flt, &err), 0);
            q.filter = flt;
            assert_int_equal(scim_store_list(f->st, f->tenant, SCIM_RT_USER, &q, &page, &err), 0);
            bool sw = strstr(cases[i].filter, " sw ") != NULL;
            /* sw "...424": 424 and 4240..4249 (of 1..5000), case-insensitively */
            assert_int_equal(page.total, sw ? 11 : 1);
            json_decref(page.resources);
            scim_filter_free(flt);
        }
    }
}

/* PostgreSQL: a server that cannot be reached is 503 (retry later), not a crash or a hang. */
static void test_pg_unreachable(void **state)
{
    (void)state;
    if (!testdb_pg())
        skip();
    struct scim_store *st = NULL;
    struct scim_err err;
    scim_err_clear(&err);
    struct scim_store_opts o = {.pool_size = 2};
    assert_int_equal(scim_store_open("postgresql://postgres@127.0.0.1:1/x?connect_timeout=2", &o, &st, &err), -1);
    assert_null(st);
    assert_int_equal(err.status, 503);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uniqueness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_fail_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups_derived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test_setup_teardown(test_filters, setup_seeded, teardown),
        cmocka_unit_test_setup_teardown(test_paging_sorting, setup_seeded, teardown),
        cmocka_unit_test_setup_teardown(test_explain, setup_seeded, teardown),
        cmocka_unit_test_setup_teardown(test_explain_pg, setup, teardown),
        cmocka_unit_test(test_pg_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
