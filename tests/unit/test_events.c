/* Unit tests of the change feed's event computation (src/store/events.c), of the feed in the
 * SQLite store (seq numbering, membership deltas), and of the delivery helpers (signature,
 * backoff). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "feed/delivery.h"
#include "store/events.h"
#include "store/store.h"
#include "testdb.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    assert_non_null(j);
    return j;
}

static const char *type_at(json_t *evs, size_t i)
{
    return json_string_value(json_object_get(json_array_get(evs, i), "type"));
}

static void test_created_deleted(void **state)
{
    (void)state;
    struct scim_err err;
    json_t *evs = json_array();
    json_t *doc = J("{\"userName\":\"ann\",\"displayName\":\"Ann\"}");
    assert_int_equal(scim_events_resource(evs, SCIM_RT_USER, "u1", NULL, doc, 0, &err), 0);
    assert_int_equal(scim_events_resource(evs, SCIM_RT_USER, "u1", doc, NULL, 0, &err), 0);
    assert_int_equal(scim_events_resource(evs, SCIM_RT_USER, "u1", doc, NULL, SCIM_EV_DEPROVISIONED, &err), 0);
    assert_int_equal(scim_events_resource(evs, SCIM_RT_USER, "u1", NULL, doc, SCIM_EV_REVIVED, &err), 0);
    assert_int_equal(json_array_size(evs), 4);
    json_t *e = json_array_get(evs, 0);
    assert_string_equal(type_at(evs, 0), "user.created");
    assert_string_equal(json_string_value(json_object_get(e, "resourceType")), "User");
    assert_string_equal(json_string_value(json_object_get(e, "resourceId")), "u1");
    assert_string_equal(json_string_value(json_object_get(e, "userName")), "ann");
    assert_string_equal(json_string_value(json_object_get(e, "displayName")), "Ann");
    assert_true(json_is_true(json_object_get(e, "active"))); /* absent = active */
    assert_null(json_object_get(e, "revived"));
    assert_string_equal(type_at(evs, 1), "user.deleted");
    assert_null(json_object_get(json_array_get(evs, 1), "deprovisioned"));
    assert_string_equal(type_at(evs, 2), "user.deleted");
    assert_true(json_is_true(json_object_get(json_array_get(evs, 2), "deprovisioned")));
    assert_true(json_is_false(json_object_get(json_array_get(evs, 2), "active")));
    assert_string_equal(type_at(evs, 3), "user.created");
    assert_true(json_is_true(json_object_get(json_array_get(evs, 3), "revived")));
    json_decref(doc);
    json_decref(evs);
}

static void test_updated(void **state)
{
    (void)state;
    struct scim_err err;
    json_t *evs = json_array();
    json_t *a = J("{\"schemas\":[\"x\"],\"id\":\"u1\",\"meta\":{\"version\":\"W/\\\"1\\\"\"},"
                  "\"userName\":\"ann\",\"title\":\"t\",\"emails\":[{\"value\":\"a@x\"}],\"active\":true,"
                  "\"groups\":[{\"value\":\"g\"}]}");
    json_t *b = J("{\"userName\":\"ann\",\"nickName\":\"n\",\"emails\":[{\"value\":\"b@x\"}],\"active\":true}");
    assert_int_equal(scim_events_resource(evs, SCIM_RT_USER, "u1", a, b, 0, &err), 0);
    assert_int_equal(json_array_size(evs), 1);
    assert_string_equal(type_at(evs, 0), "user.updated");
    char *changed = json_dumps(json_object_get(json_array_get(evs, 0), "changed"), JSON_COMPACT);
    assert_string_equal(changed, "[\"emails\",\"nickName\",\"title\"]"); /* sorted, meta/id/groups ignored */
    free(changed);
    /* nothing changed: no event; the password only: changed ["password"] */
    json_array_clear(evs);
    assert_int_equal(scim_events_resource(evs, SCIM_RT_USER, "u1", b, b, 0, &err), 0);
    assert_int_equal(json_array_size(evs), 0);
    assert_int_equal(scim_events_resource(evs, SCIM_RT_USER, "u1", b, b, SCIM_EV_PASSWORD, &err), 0);
    changed = json_dumps(json_object_get(json_array_get(evs, 0), "changed"), JSON_COMPACT);
    assert_string_equal(changed, "[\"password\"]");
    free(changed);
    /* linking always yields an update, flagged */
    json_array_clear(evs);
    assert_int_equal(scim_events_resource(evs, SCIM_RT_GROUP, "g1", b, b, SCIM_EV_LINKED, &err), 0);
    assert_string_equal(type_at(evs, 0), "group.updated");
    assert_true(json_is_true(json_object_get(json_array_get(evs, 0), "linked")));
    assert_null(json_object_get(json_array_get(evs, 0), "active")); /* groups have no active */
    json_decref(a);
    json_decref(b);
    json_decref(evs);
}

static void test_active_transitions(void **state)
{
    (void)state;
    struct scim_err err;
    json_t *evs = json_array();
    json_t *on = J("{\"userName\":\"ann\"}"); /* absent = true */
    json_t *off = J("{\"userName\":\"ann\",\"active\":false}");
    json_t *off2 = J("{\"userName\":\"ann\",\"active\":false,\"title\":\"x\"}");
    json_t *on2 = J("{\"userName\":\"ann\",\"active\":true}");
    assert_int_equal(scim_events_resource(evs, SCIM_RT_USER, "u", on, off, 0, &err), 0);
    assert_int_equal(json_array_size(evs), 1); /* "active" is not listed as an update */
    assert_string_equal(type_at(evs, 0), "user.deactivated");
    json_array_clear(evs);
    assert_int_equal(scim_events_resource(evs, SCIM_RT_USER, "u", off, on2, 0, &err), 0);
    assert_int_equal(json_array_size(evs), 1);
    assert_string_equal(type_at(evs, 0), "user.reactivated");
    json_array_clear(evs);
    assert_int_equal(scim_events_resource(evs, SCIM_RT_USER, "u", on2, off2, 0, &err), 0);
    assert_int_equal(json_array_size(evs), 2); /* update first, then the transition */
    assert_string_equal(type_at(evs, 0), "user.updated");
    assert_string_equal(type_at(evs, 1), "user.deactivated");
    json_array_clear(evs);
    assert_int_equal(scim_events_resource(evs, SCIM_RT_USER, "u", on, on2, 0, &err), 0);
    assert_int_equal(json_array_size(evs), 0); /* absent -> true: no change at all */
    json_decref(on);
    json_decref(off);
    json_decref(off2);
    json_decref(on2);
    json_decref(evs);
}

static void test_member_finish_match(void **state)
{
    (void)state;
    struct scim_err err;
    json_t *evs = json_array();
    assert_int_equal(scim_events_member(evs, "g", "Staff", "u", SCIM_RT_USER, true, &err), 0);
    assert_int_equal(scim_events_member(evs, "g", NULL, "h", -1, false, &err), 0);
    json_t *e = json_array_get(evs, 0);
    assert_string_equal(type_at(evs, 0), "group.member_added");
    assert_string_equal(json_string_value(json_object_get(e, "groupId")), "g");
    assert_string_equal(json_string_value(json_object_get(e, "resourceId")), "g");
    assert_string_equal(json_string_value(json_object_get(e, "memberId")), "u");
    assert_string_equal(json_string_value(json_object_get(e, "memberType")), "User");
    assert_string_equal(json_string_value(json_object_get(e, "displayName")), "Staff");
    assert_string_equal(type_at(evs, 1), "group.member_removed");
    assert_null(json_object_get(json_array_get(evs, 1), "memberType"));
    assert_int_equal(scim_event_finish(e, 7, 42, 1700000000123000), 0);
    assert_string_equal(json_string_value(json_object_get(e, "id")), "7-42");
    assert_int_equal(json_integer_value(json_object_get(e, "seq")), 42);
    assert_string_equal(json_string_value(json_object_get(e, "time")), "2023-11-14T22:13:20.123Z");
    json_t *types = J("[\"user.deleted\",\"group.member_added\"]"), *all = J("[\"*\"]");
    assert_true(scim_event_type_match(types, "user.deleted"));
    assert_false(scim_event_type_match(types, "user.created"));
    assert_true(scim_event_type_match(all, "user.created"));
    assert_false(scim_event_type_match(NULL, "user.created"));
    assert_true(scim_event_type_known("group.member_removed"));
    assert_false(scim_event_type_known("user.bogus"));
    json_decref(types);
    json_decref(all);
    json_decref(evs);
}

static void test_signature_backoff(void **state)
{
    (void)state;
    char sig[SCIM_SIGNATURE_MAX];
    const char *body = "{\"a\":1}";
    assert_int_equal(scim_webhook_signature("secret-0123456789", 1700000000, body, strlen(body), sig), 0);
    /* openssl dgst -sha256 -hmac secret-0123456789 over "1700000000.{"a":1}" */
    assert_string_equal(sig, "t=1700000000, v1=692511b180bbcd561410894fd2bedac27a99690e45169490ea808f433b5d0097");
    assert_int_equal(scim_delivery_backoff_ms(1, 1000, 600000, 0.5), 1000);
    assert_int_equal(scim_delivery_backoff_ms(2, 1000, 600000, 0.5), 2000);
    assert_int_equal(scim_delivery_backoff_ms(4, 1000, 600000, 0.5), 8000);
    assert_int_equal(scim_delivery_backoff_ms(1, 1000, 600000, 0.0), 800);
    assert_int_equal(scim_delivery_backoff_ms(40, 1000, 600000, 0.99), 600000); /* capped after jitter */
    assert_int_equal(scim_delivery_backoff_ms(40, 1000, 600000, 0.0), 480000);
}

/* The SQLite store: seq 1, 2, 3 ... per tenant; a PUT-like clear+add yields only the net delta. */
static int replace_members(void *ctx, json_t *current, struct scim_store_change *chg, struct scim_err *err)
{
    (void)current;
    (void)err;
    chg->members_clear = true;
    chg->members_add = ctx;
    return 0;
}

static void test_store_feed(void **state)
{
    (void)state;
    struct scim_store *st = NULL;
    struct scim_err err;
    int64_t t = 0, last = 0;
    json_t *u1 = NULL, *u2 = NULL, *u3 = NULL, *g = NULL, *evs = NULL;
    char uri[512] = "sqlite::memory:", pgname[64] = "";
    /* SCIMD_TEST_BACKEND=postgresql: a fresh PostgreSQL database (testdb.h) */
    if (testdb_pg())
        assert_int_equal(testdb_create(uri, sizeof(uri), pgname), 0);
    assert_int_equal(scim_store_open(uri, NULL, &st, &err), 0);
    assert_int_equal(scim_store_tenant_default(st, &t, &err), 0);
    json_t *d1 = J("{\"userName\":\"a\"}"), *d2 = J("{\"userName\":\"b\"}"), *d3 = J("{\"userName\":\"c\"}");
    assert_int_equal(scim_store_create(st, t, SCIM_RT_USER, d1, NULL, NULL, 0, &u1, NULL, &err), 0);
    assert_int_equal(scim_store_create(st, t, SCIM_RT_USER, d2, NULL, NULL, 0, &u2, NULL, &err), 0);
    assert_int_equal(scim_store_create(st, t, SCIM_RT_USER, d3, NULL, NULL, 0, &u3, NULL, &err), 0);
    const char *i1 = json_string_value(json_object_get(u1, "id"));
    const char *i2 = json_string_value(json_object_get(u2, "id"));
    const char *i3 = json_string_value(json_object_get(u3, "id"));
    json_t *gd = J("{\"displayName\":\"G\"}");
    json_t *m12 = json_pack("[{s:s},{s:s},{s:s}]", "value", i1, "value", i2, "value", "nope");
    assert_int_equal(scim_store_create(st, t, SCIM_RT_GROUP, gd, m12, NULL, 0, &g, NULL, &err), 0);
    const char *gid = json_string_value(json_object_get(g, "id"));
    /* replace members {1,2} by {2,3}: one removed (1), one added (3), nothing for 2 */
    json_t *m23 = json_pack("[{s:s},{s:s}]", "value", i2, "value", i3);
    assert_int_equal(scim_store_update(st, t, SCIM_RT_GROUP, gid, SCIM_STORE_LOAD_MEMBERS,
                                       replace_members, m23, NULL, &err), 0);
    assert_int_equal(scim_store_events_list(st, t, 0, 100, &evs, &last, &err), 0);
    static const char *const want[] = {"user.created", "user.created", "user.created", "group.created",
                                       "group.member_added", "group.member_added",
                                       "group.member_removed", "group.member_added"};
    assert_int_equal(json_array_size(evs), 8);
    assert_int_equal(last, 8);
    for (size_t i = 0; i < 8; i++) {
        assert_string_equal(type_at(evs, i), want[i]);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(evs, i), "seq")), (json_int_t)i + 1);
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 6), "memberId")), i1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 7), "memberId")), i3);
    json_decref(evs);
    /* a failed write (409) adds nothing and leaves no gap */
    assert_int_equal(scim_store_create(st, t, SCIM_RT_USER, d1, NULL, NULL, 0, NULL, NULL, &err), -1);
    assert_int_equal(err.status, 409);
    assert_int_equal(scim_store_delete(st, t, SCIM_RT_USER, i1, -1, &err), 0);
    assert_int_equal(scim_store_events_list(st, t, 8, 100, &evs, &last, &err), 0);
    assert_int_equal(json_array_size(evs), 1);
    assert_string_equal(type_at(evs, 0), "user.deleted"); /* 1 had left the group already */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(evs, 0), "seq")), 9);
    json_decref(evs);
    /* another tenant counts from 1 */
    struct scim_tenant t2;
    assert_int_equal(scim_store_tenant_create(st, "other", &t2, &err), 0);
    assert_int_equal(scim_store_create(st, t2.id, SCIM_RT_USER, d1, NULL, NULL, 0, NULL, NULL, &err), 0);
    assert_int_equal(scim_store_events_list(st, t2.id, 0, 100, &evs, &last, &err), 0);
    assert_int_equal(last, 1);
    json_decref(evs);
    scim_tenant_release(&t2);
    /* the long-poll returns at once when an event is there, and an empty list after the wait */
    assert_int_equal(scim_store_events_wait(st, t, 0, 1, 5000, &evs, &last, &err), 0);
    assert_int_equal(json_array_size(evs), 1);
    json_decref(evs);
    assert_int_equal(scim_store_events_wait(st, t, 9, 10, 50, &evs, &last, &err), 0);
    assert_int_equal(json_array_size(evs), 0);
    json_decref(evs);
    json_decref(d1);
    json_decref(d2);
    json_decref(d3);
    json_decref(gd);
    json_decref(m12);
    json_decref(m23);
    json_decref(u1);
    json_decref(u2);
    json_decref(u3);
    json_decref(g);
    scim_store_free(&st);
    if (pgname[0])
        testdb_drop(pgname);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_created_deleted),   cmocka_unit_test(test_updated),
        cmocka_unit_test(test_active_transitions), cmocka_unit_test(test_member_finish_match),
        cmocka_unit_test(test_signature_backoff), cmocka_unit_test(test_store_feed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
