/* scim_json_dumps_compact writes exactly what json_dumps(COMPACT | ENCODE_ANY) writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsondump.h"

static void same(json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *got = scim_json_dumps_compact(v);
    if (!want)
        assert_null(got);
    else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
    free(want);
    free(got);
    json_decref(v);
}

static void test_scalars(void **state)
{
    (void)state;
    same(json_null());
    same(json_true());
    same(json_false());
    same(json_integer(0));
    same(json_integer(-1));
    same(json_integer(INT64_MAX));
    same(json_integer(INT64_MIN));
    same(json_real(1.5));     /* handed to jansson */
    same(json_real(1e300));
    same(json_string(""));
    same(json_string("plain ascii / with slash"));
    same(json_string("quote \" backslash \\ tab \t nl \n cr \r bs \b ff \f"));
    same(json_string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \xe2\x80\xa8")); /* é € 😀 U+2028 */
    assert_null(scim_json_dumps_compact(NULL));
}

static void test_every_control_and_ascii(void **state)
{
    (void)state;
    char s[129];
    for (int i = 1; i < 128; i++)
        s[i - 1] = (char)i;
    s[127] = '\0';
    same(json_string(s));
    /* an embedded NUL */
    same(json_stringn("a\0b", 3));
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    /* not valid UTF-8: jansson refuses to dump it, and so do we */
    const char *bad[] = {"\xff", "\xc0\x80", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80", "a\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = json_stringn_nocheck(bad[i], strlen(bad[i]));
        char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        char *got = scim_json_dumps_compact(v);
        assert_true((want == NULL) == (got == NULL));
        if (want)
            assert_string_equal(got, want);
        free(want);
        free(got);
        json_decref(v);
    }
}

static void test_containers(void **state)
{
    (void)state;
    same(json_object());
    same(json_array());
    json_error_t e;
    const char *docs[] = {
        "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],\"totalResults\":1,"
        "\"Resources\":[{\"id\":\"x\",\"userName\":\"a@b\",\"name\":{\"givenName\":\"\\u00e9\"},"
        "\"emails\":[{\"value\":\"a@b\",\"primary\":true}],\"active\":false,\"n\":null,"
        "\"k\\\"ey\":[[],{},[1,[2,{\"z\":-3}]]],\"score\":0.25}],\"startIndex\":1,\"itemsPerPage\":1}",
        "[1,\"two\",{\"three\":[3]},null,true]",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_t *v = json_loads(docs[i], 0, &e);
        assert_non_null(v);
        same(v);
    }
    /* insertion order is kept (not sorted) */
    json_t *o = json_object();
    json_object_set_new(o, "zeta", json_integer(1));
    json_object_set_new(o, "alpha", json_integer(2));
    json_object_set_new(o, "mid", json_string("m"));
    json_object_del(o, "alpha");
    json_object_set_new(o, "alpha", json_integer(3));
    char *got = scim_json_dumps_compact(o);
    assert_string_equal(got, "{\"zeta\":1,\"mid\":\"m\",\"alpha\":3}");
    free(got);
    same(o);
    /* very deep nesting is handed to jansson */
    json_t *deep = json_array(), *cur = deep;
    for (int i = 0; i < 600; i++) {
        json_t *n = json_array();
        json_array_append_new(cur, n);
        cur = n;
    }
    same(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_every_control_and_ascii),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_containers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
