/* Token buckets: parsing of limits, burst, refill, per-key isolation, bounded table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api/ratelimit.h"

static void test_parse(void **state)
{
    struct scim_rate r;
    (void)state;
    assert_int_equal(scim_rate_parse("10/s", &r), 0);
    assert_true(r.rate == 10.0 && r.burst == 10.0);
    assert_int_equal(scim_rate_parse("10/s:50", &r), 0);
    assert_true(r.rate == 10.0 && r.burst == 50.0);
    assert_int_equal(scim_rate_parse("60/m", &r), 0);
    assert_true(r.rate == 1.0 && r.burst == 1.0);
    assert_int_equal(scim_rate_parse("36/h", &r), 0);
    assert_true(r.rate == 0.01 && r.burst == 1.0);
    assert_int_equal(scim_rate_parse("off", &r), 0);
    assert_true(r.rate == 0.0);
    assert_int_equal(scim_rate_parse("0", &r), 0);
    assert_true(r.rate == 0.0);
    const char *bad[] = {"", "10", "10/", "10/x", "-1/s", "+1/s", "0/s", "1/s:", "1/s:0",
                         "1/s:-2", "a/s", "1/sec", "1/s:2x", "/s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(scim_rate_parse(bad[i], &r), -1);
}

static void test_bucket(void **state)
{
    struct scim_rate r = {.rate = 2, .burst = 3};
    struct scim_ratelimit *rl = scim_ratelimit_new(&r, 16);
    int64_t t = 1000000000;
    (void)state;
    assert_non_null(rl);
    for (int i = 0; i < 3; i++)
        assert_int_equal(scim_ratelimit_take(rl, 7, t), 0);
    assert_int_equal(scim_ratelimit_take(rl, 7, t), 1); /* 0.5 s to wait, rounded up */
    assert_int_equal(scim_ratelimit_take(rl, 8, t), 0); /* another key has its own bucket */
    assert_int_equal(scim_ratelimit_take(rl, 7, t + 500000), 0);
    assert_int_equal(scim_ratelimit_take(rl, 7, t + 500000), 1);
    /* A long idle time refills only up to the burst. */
    t += 3600 * 1000000LL;
    for (int i = 0; i < 3; i++)
        assert_int_equal(scim_ratelimit_take(rl, 7, t), 0);
    assert_int_equal(scim_ratelimit_take(rl, 7, t), 1);
    scim_ratelimit_free(&rl);
    assert_null(rl);
}

static void test_slow_rate(void **state)
{
    struct scim_rate r = {.rate = 0.01, .burst = 1};
    struct scim_ratelimit *rl = scim_ratelimit_new(&r, 0);
    (void)state;
    assert_int_equal(scim_ratelimit_take(rl, 1, 0), 0);
    assert_int_equal(scim_ratelimit_take(rl, 1, 0), 100);
    assert_int_equal(scim_ratelimit_take(rl, 1, 50 * 1000000LL), 50);
    scim_ratelimit_free(&rl);
}

static void test_many_keys(void **state)
{
    /* Far more keys than slots: memory stays bounded and an evicted key starts afresh; the
     * most recent keys keep their state. */
    struct scim_rate r = {.rate = 1, .burst = 1};
    struct scim_ratelimit *rl = scim_ratelimit_new(&r, 256);
    (void)state;
    for (int64_t k = 0; k < 100000; k++)
        assert_int_equal(scim_ratelimit_take(rl, k, k), 0);
    assert_int_equal(scim_ratelimit_take(rl, 99999, 100000), 1);
    scim_ratelimit_free(&rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_slow_rate),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
