/* Unit tests of src/common/util.c: URI redaction, dateTime parsing and formatting, URL decoding,
 * UTF-8 validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"

static void redacts(const char *in, const char *want)
{
    char out[256];
    scim_redact_uri(in, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_redact_uri(void **state)
{
    (void)state;
    redacts("var/scimd.db", "var/scimd.db");
    redacts("sqlite:/tmp/x.db", "sqlite:/tmp/x.db");
    redacts("postgresql://app:s3cret@db.example:5432/scim", "postgresql://app:***@db.example:5432/scim");
    redacts("postgres://app@db/scim", "postgres://app@db/scim");
    redacts("postgresql://db/scim?user=app&password=s3cret&sslmode=require",
            "postgresql://db/scim?user=app&password=***&sslmode=require");
    redacts("postgresql://app:a%40b@db/scim?password=x", "postgresql://app:***@db/scim?password=***");
    redacts("postgresql:///scim?host=/tmp&password=p", "postgresql:///scim?host=/tmp&password=***");
    /* an '@' in the path is not userinfo */
    redacts("postgresql://db/scim@x", "postgresql://db/scim@x");

    char small[8];
    scim_redact_uri("postgresql://app:s3cret@db/scim", small, sizeof small);
    assert_int_equal(strlen(small), 7);
    assert_null(strstr(small, "s3cret"));
}

static void test_datetime(void **state)
{
    int64_t us;
    char out[SCIM_DATETIME_LEN];
    (void)state;
    assert_int_equal(scim_datetime_parse("2015-10-10T14:38:21.8617979-07:00", &us), 0);
    scim_datetime_format(us, out);
    assert_string_equal(out, "2015-10-10T21:38:21.861Z");
    assert_int_equal(scim_datetime_parse("0001-01-03T00:00:00.0000000Z", &us), 0);
    scim_datetime_format(us, out);
    assert_string_equal(out, "0001-01-03T00:00:00.000Z");
    assert_int_equal(scim_datetime_parse("1970-01-01T00:00:00Z", &us), 0);
    assert_int_equal(us, 0);
    assert_int_equal(scim_datetime_parse("2026-02-30", &us), -1);
    assert_int_equal(scim_datetime_parse("2026-13-01T00:00:00Z", &us), -1);
    assert_int_equal(scim_datetime_parse("2026-01-01T00:00:00Zjunk", &us), -1);
    assert_int_equal(scim_datetime_parse("jyoung", &us), -1);
    /* round trips over the whole range, each field at its edges */
    const char *edges[] = {"1970-01-01T00:00:00.000Z", "1999-12-31T23:59:59.999Z",
                           "2000-02-29T12:34:56.789Z", "2026-11-22T09:05:01.010Z",
                           "9999-12-31T23:59:59.999Z", "0999-09-09T09:09:09.009Z",
                           "1969-12-31T23:59:59.999Z", "0000-03-01T00:00:00.000Z"};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) {
        assert_int_equal(scim_datetime_parse(edges[i], &us), 0);
        scim_datetime_format(us, out);
        assert_string_equal(out, edges[i]);
    }
    /* years past 9999 still come out (wider), never truncated digits */
    scim_datetime_format((int64_t)253402300800 * 1000000, out);
    assert_string_equal(out, "10000-01-01T00:00:00.000Z");
}

static void test_url_decode(void **state)
{
    (void)state;
    char *s = scim_url_decode("userName+eq+%22a%20b%22", 23, true);
    assert_string_equal(s, "userName eq \"a b\"");
    free(s);
    s = scim_url_decode("a+b%2", 5, false);
    assert_string_equal(s, "a+b%2");
    free(s);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(scim_utf8_valid("h\xc3\xa9llo", 6));
    assert_false(scim_utf8_valid("\xff", 1));
    assert_false(scim_utf8_valid("a\0b", 3));
    assert_false(scim_utf8_valid("\xc3", 1));          /* truncated */
    assert_false(scim_utf8_valid("\xed\xa0\x80", 3));  /* surrogate */
    assert_false(scim_utf8_valid("\xc0\xaf", 2));      /* overlong */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_uri),
        cmocka_unit_test(test_datetime),
        cmocka_unit_test(test_url_decode),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
