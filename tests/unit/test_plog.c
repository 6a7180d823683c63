/* The provisioning log below the HTTP layer: the queue and writer (api/plog.c), the store's
 * log operations on SQLite (append, query filters, prune by count and age), and the client
 * recognition table (api/client_id.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "api/plog.h"
#include "common/util.h"
#include "scim/compat.h"
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
    /* SCIMD_TEST_BACKEND=postgresql: a fresh PostgreSQL database (testdb.h) */
    if (testdb_pg() && testdb_create(uri, sizeof(uri), f->pgname) != 0)
        return -1;
    if (!f->reg || scim_store_open(uri, &o, &f->st, &err) != 0 ||
        scim_store_tenant_default(f->st, &f->tenant, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    scim_store_free(&f->st);
    if (f->pgname[0])
        testdb_drop(f->pgname);
    scim_registry_free(&f->reg);
    free(f);
    return 0;
}

static void entry(struct scim_log_entry *e, int64_t tenant, int64_t t, int status, const char *user)
{
    memset(e, 0, sizeof *e);
    e->tenant_id = tenant;
    e->time_us = t;
    e->status = status;
    snprintf(e->method, sizeof e->method, "POST");
    snprintf(e->path, sizeof e->path, "/scim/v2/Users");
    snprintf(e->token, sizeof e->token, "tok");
    snprintf(e->client, sizeof e->client, "okta");
    snprintf(e->resource_type, sizeof e->resource_type, "User");
    snprintf(e->user_name, sizeof e->user_name, "%s", user);
}

static int64_t total(struct fx *f, struct scim_log_query *q)
{
    struct scim_log_entry *rows = NULL;
    size_t n = 0;
    int64_t t = -1;
    struct scim_err err;
    scim_err_clear(&err);
    assert_int_equal(scim_store_log_query(f->st, q, &rows, &n, &t, &err), 0);
    free(rows);
    return t;
}

/* 2500 entries recorded then stop(): all written (batches of 1000), none dropped. */
static void test_flush_on_stop(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    struct scim_plog_config cfg;
    struct scim_log_entry e;
    struct scim_log_query q = {.tenant_id = f->tenant, .count = 10};

    scim_err_clear(&err);
    scim_plog_config_defaults(&cfg);
    assert_int_equal(cfg.capacity, 65536);
    assert_int_equal(cfg.max_entries, 1000000);
    assert_int_equal(scim_plog_start(f->st, &cfg, &err), 0);
    for (int i = 0; i < 2500; i++) {
        entry(&e, f->tenant, scim_now_us(), i % 2 ? 201 : 409, i == 7 ? "Seven@x" : "other");
        scim_plog_record(&e);
    }
    scim_plog_stop();
    assert_int_equal(scim_plog_dropped(), 0);
    assert_int_equal(total(f, &q), 2500);
    q.status_min = 400;
    q.status_max = 499;
    assert_int_equal(total(f, &q), 1250);
    q.status_min = q.status_max = 0;
    q.user = "seven@X";
    assert_int_equal(total(f, &q), 1);
    /* after stop, recording is a no-op */
    scim_plog_record(&e);
    q.user = NULL;
    assert_int_equal(total(f, &q), 2500);
}

static void test_query_order_after_prune(void **state)
{
    struct fx *f = *state;
    struct scim_err err;
    struct scim_log_entry e[10];
    const struct scim_log_entry *p[10];
    struct scim_log_entry *rows = NULL;
    size_t n = 0;
    int64_t t = 0, gone = 0;

    scim_err_clear(&err);
    for (int i = 0; i < 10; i++) {
        entry(&e[i], f->tenant, 1000000 * (int64_t)(i + 1), 200, "u");
        snprintf(e[i].resource_id, sizeof e[i].resource_id, "r%d", i);
        p[i] = &e[i];
    }
    assert_int_equal(scim_store_log_append_batch(f->st, p, 10, &err), 0);
    struct scim_log_query q = {.tenant_id = f->tenant, .count = 3};
    assert_int_equal(scim_store_log_query(f->st, &q, &rows, &n, &t, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(t, 10);
    assert_string_equal(rows[0].resource_id, "r9"); /* newest first */
    int64_t id9 = rows[0].id;
    free(rows);
    q.ascending = true;
    q.after_id = id9 - 3;
    assert_int_equal(scim_store_log_query(f->st, &q, &rows, &n, &t, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(t, 3);
    assert_string_equal(rows[0].resource_id, "r7");
    free(rows);
    struct scim_log_query qt = {.tenant_id = f->tenant, .count = 10, .since_us = 3000000,
                                .until_us = 5000000};
    assert_int_equal(total(f, &qt), 3);
    /* another tenant sees nothing */
    struct scim_log_query qo = {.tenant_id = f->tenant + 1, .count = 10};
    assert_int_equal(total(f, &qo), 0);

    /* by count: the newest 4 stay */
    assert_int_equal(scim_store_log_prune(f->st, 0, 4, &gone, &err), 0);
    assert_int_equal(gone, 6);
    struct scim_log_query qa = {.tenant_id = f->tenant, .count = 10, .ascending = true};
    assert_int_equal(scim_store_log_query(f->st, &qa, &rows, &n, &t, &err), 0);
    assert_int_equal(n, 4);
    assert_string_equal(rows[0].resource_id, "r6");
    free(rows);
    /* by age: entries before t=9 s go */
    assert_int_equal(scim_store_log_prune(f->st, 9000000, 0, &gone, &err), 0);
    assert_int_equal(gone, 2);
    assert_int_equal(total(f, &qa), 2);
}

static const char *ident(const char *ua, const char *query, uint32_t compat)
{
    static struct scim_request req;
    memset(&req, 0, sizeof req);
    req.raw_query = query;
    if (ua) {
        req.headers[0] = (struct scim_header){"User-Agent", ua};
        req.n_headers = 1;
    }
    return api_client_identify(&req, compat);
}

static void test_client_identify(void **state)
{
    (void)state;
    assert_string_equal(ident("Okta SCIM Client 1.0.0", "", 0), "okta");
    assert_string_equal(ident("authentik@2024.8.3", "", 0), "authentik");
    assert_string_equal(ident(NULL, "aadOptscim062020", 0), "entra");
    assert_string_equal(ident(NULL, "filter=x&aadOptscim062020=", 0), "entra");
    assert_string_equal(ident(NULL, "aadOptscim0620201", 0), "unknown");
    assert_string_equal(ident("Go-http-client/1.1", "", 0), "ssosync");
    assert_string_equal(ident("JumpCloud-SCIM/2", "", 0), "jumpcloud");
    assert_string_equal(ident("OneLogin SCIM", "", 0), "onelogin");
    assert_string_equal(ident(NULL, "", SCIM_COMPAT_OP_CASE), "entra");
    assert_string_equal(ident(NULL, "", SCIM_COMPAT_STRING_BOOLEAN), "entra");
    /* a product's own User-Agent wins over a dialect guess */
    assert_string_equal(ident("Okta SCIM Client 1.0.0", "", SCIM_COMPAT_OP_CASE), "okta");
    assert_string_equal(ident("curl/8.0", "", SCIM_COMPAT_ENDPOINT_CASE), "unknown");
    assert_string_equal(ident(NULL, "", 0), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_on_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_order_after_prune, setup, teardown),
        cmocka_unit_test(test_client_identify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
