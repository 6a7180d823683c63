/* The read-path shortcuts keep the results of the slow paths they replace (BENCHMARKS.md
 * "Read path"): totalResults of unfiltered lists from per-tenant live counts, a user's groups
 * without the recursive query when no group is nested, and the per-connection cache of list
 * statements. Runs on SQLite in memory or, with SCIMD_TEST_BACKEND=postgresql, on PostgreSQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scim/filter.h"
#include "scim/schema.h"
#include "store/store.h"
#include "testdb.h"

struct fx {
    struct scim_registry *reg;
    struct scim_store *st;
    int64_t tenant;
    char pgname[64];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct scim_err err;
    scim_err_clear(&err);
    f->reg = scim_registry_new();
    struct scim_store_opts o = {.reg = f->reg};
    char uri[512] = "sqlite::memory:";
    if (testdb_pg() && testdb_create(uri, sizeof(uri), f->pgname) != 0)
        return -1;
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

static void mk(struct fx *f, int64_t tenant, enum scim_rtype kind, const char *doc_text,
               const char *members, char id[37])
{
    struct scim_err err;
    json_t *doc = jparse(doc_text), *mem = members ? jparse(members) : NULL, *out = NULL;
    if (scim_store_create(f->st, tenant, kind, doc, mem, NULL, 0, &out, NULL, &err) != 0)
        fail_msg("create %s: %d %s %s", doc_text, err.status, err.detail, err.log);
    snprintf(id, 37, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(doc);
    json_decref(mem);
    json_decref(out);
}

/* totalResults and number of resources of a list; `filter` may be NULL. */
static int64_t total(struct fx *f, int64_t tenant, enum scim_rtype kind, const char *filter,
                     unsigned flags, int state, size_t *n)
{
    struct scim_err err;
    struct scim_filter *flt = NULL;
    struct scim_filter_limits lim = {0, 0};
    if (filter && scim_filter_parse(filter, &lim, f->reg, &flt, &err) != 0)
        fail_msg("parse %s: %s", filter, err.detail);
    struct scim_store_query q = {.filter = flt, .start_index = 1, .count = 100, .flags = flags,
                                 .state = state};
    struct scim_store_page page;
    if (scim_store_list(f->st, tenant, kind, &q, &page, &err) != 0)
        fail_msg("list: %d %s %s", err.status, err.detail, err.log);
    scim_filter_free(flt);
    if (n)
        *n = json_array_size(page.resources);
    json_decref(page.resources);
    return page.total;
}

static void test_live_counts(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    char a[37], b[37], c[37], g[37], other[37];
    size_t n;
    assert_int_equal(total(f, f->tenant, SCIM_RT_USER, NULL, 0, 0, &n), 0);
    mk(f, f->tenant, SCIM_RT_USER, "{\"userName\":\"a\"}", NULL, a);
    mk(f, f->tenant, SCIM_RT_USER, "{\"userName\":\"b\"}", NULL, b);
    mk(f, f->tenant, SCIM_RT_USER, "{\"userName\":\"c\"}", NULL, c);
    mk(f, f->tenant, SCIM_RT_GROUP, "{\"displayName\":\"g\"}", NULL, g);
    assert_int_equal(total(f, f->tenant, SCIM_RT_USER, NULL, 0, 0, &n), 3);
    assert_int_equal(n, 3);
    assert_int_equal(total(f, f->tenant, SCIM_RT_GROUP, NULL, 0, 0, &n), 1);

    /* another tenant's rows are not counted, and its own count is separate */
    int64_t t2;
    struct scim_tenant tn;
    assert_int_equal(scim_store_tenant_create(f->st, "second", &tn, &err), 0);
    t2 = tn.id;
    scim_tenant_release(&tn);
    mk(f, t2, SCIM_RT_USER, "{\"userName\":\"a\"}", NULL, other);
    assert_int_equal(total(f, t2, SCIM_RT_USER, NULL, 0, 0, NULL), 1);
    assert_int_equal(total(f, f->tenant, SCIM_RT_USER, NULL, 0, 0, NULL), 3);

    /* deprovisioning (delete_mode deactivate) leaves the SCIM view; the admin view keeps it */
    struct scim_tenant_settings s;
    assert_int_equal(scim_tenant_settings_init(&s, &err), 0);
    s.delete_mode = SCIM_DELETE_DEACTIVATE;
    struct scim_store_wopts w = {.settings = &s};
    assert_int_equal(scim_store_delete_ex(f->st, f->tenant, SCIM_RT_USER, b, -1, 0, &w, &err), 0);
    assert_int_equal(total(f, f->tenant, SCIM_RT_USER, NULL, 0, 0, &n), 2);
    assert_int_equal(n, 2);
    assert_int_equal(total(f, f->tenant, SCIM_RT_USER, NULL, SCIM_STORE_ADMIN, SCIM_STORE_STATE_ALL, NULL), 3);
    assert_int_equal(total(f, f->tenant, SCIM_RT_USER, NULL, SCIM_STORE_ADMIN,
                           SCIM_STORE_STATE_DEPROVISIONED, NULL), 1);
    /* a filter counts the same rows */
    assert_int_equal(total(f, f->tenant, SCIM_RT_USER, "userName pr", 0, 0, NULL), 2);

    /* a SCIM create of the deprovisioned userName revives it */
    json_t *doc = jparse("{\"userName\":\"b\"}"), *out = NULL;
    struct scim_store_wopts w2 = {.settings = &s};
    assert_int_equal(scim_store_create_ex(f->st, f->tenant, SCIM_RT_USER, doc, NULL, NULL, &w2, 0,
                                          &out, NULL, &err), 0);
    assert_true(w2.revived);
    json_decref(doc);
    json_decref(out);
    assert_int_equal(total(f, f->tenant, SCIM_RT_USER, NULL, 0, 0, NULL), 3);
    scim_tenant_settings_release(&s);

    /* hard deletes */
    assert_int_equal(scim_store_delete(f->st, f->tenant, SCIM_RT_USER, a, -1, &err), 0);
    assert_int_equal(scim_store_delete(f->st, f->tenant, SCIM_RT_GROUP, g, -1, &err), 0);
    assert_int_equal(total(f, f->tenant, SCIM_RT_USER, NULL, 0, 0, &n), 2);
    assert_int_equal(n, 2);
    assert_int_equal(total(f, f->tenant, SCIM_RT_GROUP, NULL, 0, 0, NULL), 0);

    /* a tenant deleted and one of the same name created again starts from zero */
    assert_int_equal(scim_store_tenant_delete(f->st, t2, &err), 0);
    assert_int_equal(scim_store_tenant_create(f->st, "second", &tn, &err), 0);
    assert_int_equal(total(f, tn.id, SCIM_RT_USER, NULL, 0, 0, NULL), 0);
    scim_tenant_release(&tn);
    assert_int_equal(total(f, f->tenant, SCIM_RT_USER, NULL, 0, 0, NULL), 2);
}

static const char *gval(json_t *user, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(user, "groups"), i), key));
}

static void test_groups_direct_then_nested(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    char u[37], g1[37], g2[37], outer[37], lonely[37], mem[128];
    json_t *out = NULL;
    mk(f, f->tenant, SCIM_RT_USER, "{\"userName\":\"u\"}", NULL, u);
    mk(f, f->tenant, SCIM_RT_USER, "{\"userName\":\"lonely\"}", NULL, lonely);
    snprintf(mem, sizeof(mem), "[{\"value\":\"%s\"}]", u);
    mk(f, f->tenant, SCIM_RT_GROUP, "{\"displayName\":\"G1\"}", mem, g1);
    mk(f, f->tenant, SCIM_RT_GROUP, "{\"displayName\":\"G2\"}", mem, g2);

    /* no group: an empty array */
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, lonely, SCIM_STORE_GROUPS, &out, &err), 0);
    assert_true(json_is_array(json_object_get(out, "groups")));
    assert_int_equal(json_array_size(json_object_get(out, "groups")), 0);
    json_decref(out);

    /* two direct groups, none nested: creation order */
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, u, SCIM_STORE_GROUPS, &out, &err), 0);
    assert_int_equal(json_array_size(json_object_get(out, "groups")), 2);
    assert_string_equal(gval(out, 0, "value"), g1);
    assert_string_equal(gval(out, 0, "display"), "G1");
    assert_string_equal(gval(out, 0, "type"), "direct");
    assert_string_equal(gval(out, 1, "value"), g2);
    assert_string_equal(gval(out, 1, "type"), "direct");
    json_decref(out);

    /* G2 becomes a member of Outer: Outer is an indirect group of u, after the direct ones */
    snprintf(mem, sizeof(mem), "[{\"value\":\"%s\"}]", g2);
    mk(f, f->tenant, SCIM_RT_GROUP, "{\"displayName\":\"Outer\"}", mem, outer);
    assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, u, SCIM_STORE_GROUPS, &out, &err), 0);
    assert_int_equal(json_array_size(json_object_get(out, "groups")), 3);
    assert_string_equal(gval(out, 0, "value"), g1);
    assert_string_equal(gval(out, 0, "type"), "direct");
    assert_string_equal(gval(out, 1, "value"), g2);
    assert_string_equal(gval(out, 1, "type"), "direct");
    assert_string_equal(gval(out, 2, "value"), outer);
    assert_string_equal(gval(out, 2, "type"), "indirect");
    assert_string_equal(gval(out, 2, "display"), "Outer");
    json_decref(out);

    /* the same through a list page */
    struct scim_store_query q = {.start_index = 1, .count = 10, .flags = SCIM_STORE_GROUPS};
    struct scim_store_page page;
    assert_int_equal(scim_store_list(f->st, f->tenant, SCIM_RT_USER, &q, &page, &err), 0);
    assert_int_equal(json_array_size(page.resources), 2);
    json_t *first = json_array_get(page.resources, 0);
    assert_string_equal(json_string_value(json_object_get(first, "id")), u);
    assert_int_equal(json_array_size(json_object_get(first, "groups")), 3);
    assert_string_equal(gval(first, 2, "type"), "indirect");
    assert_int_equal(json_array_size(json_object_get(json_array_get(page.resources, 1), "groups")), 0);
    json_decref(page.resources);

    /* More users in several groups, pages in an order other than creation (userName
     * descending): every user's groups in a page (one query per page) are those of a get of
     * that user (one query per user). */
    char v[6][37], gs[3][37];
    for (int i = 0; i < 6; i++) {
        char doc[64];
        snprintf(doc, sizeof doc, "{\"userName\":\"v%d\"}", i);
        mk(f, f->tenant, SCIM_RT_USER, doc, NULL, v[i]);
    }
    for (int k = 0; k < 3; k++) {
        char members[512] = "[", name[32];
        for (int i = 0; i < 6; i++)
            if ((i + k) % 2 == 0 || i == k)
                snprintf(members + strlen(members), sizeof members - strlen(members), "%s{\"value\":\"%s\"}",
                         strlen(members) > 1 ? "," : "", v[i]);
        snprintf(members + strlen(members), sizeof members - strlen(members), "]");
        snprintf(name, sizeof name, "{\"displayName\":\"K%d\"}", k);
        mk(f, f->tenant, SCIM_RT_GROUP, name, members, gs[k]);
    }
    struct scim_attrpath by_name = {.attr = "userName"};
    size_t seen = 0;
    for (int64_t start = 1; start <= 8; start += 3) {
        struct scim_store_query q2 = {.start_index = start, .count = 3, .flags = SCIM_STORE_GROUPS,
                                      .sort_by = &by_name, .descending = true};
        assert_int_equal(scim_store_list(f->st, f->tenant, SCIM_RT_USER, &q2, &page, &err), 0);
        size_t i;
        json_t *res;
        json_array_foreach(page.resources, i, res) {
            json_t *one = NULL;
            const char *id = json_string_value(json_object_get(res, "id"));
            assert_int_equal(scim_store_get(f->st, f->tenant, SCIM_RT_USER, id, SCIM_STORE_GROUPS,
                                            &one, &err), 0);
            assert_true(json_equal(json_object_get(res, "groups"), json_object_get(one, "groups")));
            json_decref(one);
            seen++;
        }
        json_decref(page.resources);
    }
    assert_int_equal(seen, 8);
}

/* More filter shapes than the statement cache holds, each asked twice, with varying values:
 * every answer is the one of a fresh statement. */
static void test_many_filter_shapes(void **state)
{
    struct fx *f = *state;
    char id[37], doc[96], filter[160];
    for (int i = 0; i < 5; i++) {
        snprintf(doc, sizeof(doc), "{\"userName\":\"user%d\",\"externalId\":\"x%d\"}", i, i);
        mk(f, f->tenant, SCIM_RT_USER, doc, NULL, id);
    }
    for (int round = 0; round < 2; round++) {
        for (int k = 1; k <= 24; k++) {
            /* k alternatives: a distinct SQL text per k */
            size_t len = 0;
            filter[0] = '\0';
            for (int j = 0; j < k && j < 5; j++)
                len += (size_t)snprintf(filter + len, sizeof(filter) - len, "%suserName eq \"user%d\"",
                                        j ? " or " : "", (j + round) % 5);
            if (k > 5) /* longer shapes: repeat a no-op condition (k - 5) times */
                for (int j = 5; j < k && len < sizeof(filter) - 20; j++)
                    len += (size_t)snprintf(filter + len, sizeof(filter) - len, " or id eq \"%d\"", j);
            int64_t want = k < 5 ? k : 5;
            size_t n;
            assert_int_equal(total(f, f->tenant, SCIM_RT_USER, filter, 0, 0, &n), want);
            assert_int_equal((int64_t)n, want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_live_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups_direct_then_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_filter_shapes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
