/* Filter parsing and evaluation with the real schema registry: URN splitting through
 * scim_registry_split_urn and attribute metadata through scim_resolve_attr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "scim/filter.h"
#include "scim/schema.h"

#define ENT "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#define CORE "urn:ietf:params:scim:schemas:core:2.0:User"

static const char *user =
    "{\"userName\":\"BJensen\",\"id\":\"2819c223\","
    "\"meta\":{\"created\":\"2015-10-10T14:38:21.8617979-07:00\"},"
    "\"emails\":[{\"value\":\"a@B.c\",\"type\":\"work\"},{\"value\":\"h@x.y\",\"type\":\"home\"}],"
    "\"" ENT "\":{\"manager\":{\"value\":\"M\"},\"employeeNumber\":\"7\"},\"active\":true}";

static int setup(void **state)
{
    *state = scim_registry_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    struct scim_registry *reg = *state;
    scim_registry_free(&reg);
    return 0;
}

/* The S-expression of `text`, or NULL with *pos set to the error position. */
static char *sexp_of(const struct scim_registry *reg, const char *text, int *pos)
{
    struct scim_filter *f = NULL;
    struct scim_err err;
    scim_err_clear(&err);
    *pos = -1;
    if (scim_filter_parse(text, NULL, reg, &f, &err)) {
        *pos = err.pos;
        return NULL;
    }
    char *s = scim_filter_to_sexp(f);
    scim_filter_free(f);
    return s;
}

static bool match_user(const struct scim_registry *reg, const char *text)
{
    struct scim_filter *f = NULL;
    struct scim_err err;
    if (scim_filter_parse(text, NULL, reg, &f, &err) != 0)
        fail_msg("parse of '%s' failed: %s", text, err.detail);
    json_t *o = json_loads(user, 0, NULL);
    assert_non_null(o);
    bool r = scim_filter_match(f, o, scim_registry_rt(reg, SCIM_RT_USER), NULL);
    json_decref(o);
    scim_filter_free(f);
    return r;
}

static void test_registry_split(void **state)
{
    const struct scim_registry *reg = *state;
    int pos;
    char *s;

    s = sexp_of(reg, ENT ":manager.value eq \"x\"", &pos);
    assert_string_equal(s, "(eq " ENT ":manager.value \"x\")");
    free(s);
    s = sexp_of(reg, ENT ".manager eq \"x\"", &pos);
    assert_string_equal(s, "(eq " ENT ":manager \"x\")");
    free(s);
    s = sexp_of(reg, CORE ":meta.created gt \"2020-01-01T00:00:00Z\"", &pos);
    assert_string_equal(s, "(gt " CORE ":meta.created \"2020-01-01T00:00:00Z\")");
    free(s);
    /* a URN the registry does not know is split syntactically */
    s = sexp_of(reg, "urn:x:unknown:1.0:Foo:bar eq 1", &pos);
    assert_string_equal(s, "(eq urn:x:unknown:1.0:Foo:bar 1)");
    free(s);
    /* a schema URN alone names no attribute */
    assert_null(sexp_of(reg, ENT " pr", &pos));
    assert_int_equal(pos, (int)strlen(ENT));
}

static void test_registry_match(void **state)
{
    const struct scim_registry *reg = *state;

    assert_true(match_user(reg, "userName eq \"bjensen\""));        /* caseExact false */
    assert_false(match_user(reg, "id eq \"2819C223\""));            /* id is caseExact */
    assert_true(match_user(reg, "meta.Created gt 2015-10-10T20:00:00Z")); /* as instants */
    assert_true(match_user(reg, CORE ":meta.created lt 2015-10-10T22:00:00Z"));
    assert_true(match_user(reg, "emails[type eq \"WORK\"].value eq \"a@b.c\""));
    assert_false(match_user(reg, "emails[type eq \"home\"].value eq \"a@b.c\""));
    assert_true(match_user(reg, ENT ":manager eq \"M\""));
    assert_true(match_user(reg, ENT ".manager.value eq \"M\""));
    assert_true(match_user(reg, ENT ":employeeNumber eq \"7\""));
    assert_true(match_user(reg, "ActiVe eq \"True\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_split),
        cmocka_unit_test(test_registry_match),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
