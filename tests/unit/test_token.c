#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "auth/token.h"
#include "common/util.h"

#include <string.h>

static void test_generate_format(void **state)
{
    char tok[SCIM_TOKEN_MAX];
    unsigned char hash[32], again[32];
    (void)state;
    assert_int_equal(scim_token_generate(tok, hash), 0);
    /* "scimd_" + 43 base64url characters (32 bytes, unpadded). */
    assert_int_equal(strlen(tok), 6 + 43);
    assert_memory_equal(tok, "scimd_", 6);
    assert_int_equal(strspn(tok + 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-_"),
                     43);
    scim_token_hash(tok, strlen(tok), again);
    assert_memory_equal(hash, again, 32);
}

static void test_generate_unique(void **state)
{
    enum { N = 200 };
    static char toks[N][SCIM_TOKEN_MAX];
    unsigned char hash[32];
    int seen_chars[256] = {0};
    int distinct = 0;
    (void)state;
    for (int i = 0; i < N; i++) {
        assert_int_equal(scim_token_generate(toks[i], hash), 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(toks[i], toks[j]);
        for (const char *p = toks[i] + 6; *p; p++)
            seen_chars[(unsigned char)*p]++;
    }
    /* 200 * 43 characters drawn from 64: every symbol should show up. */
    for (int c = 0; c < 256; c++)
        distinct += seen_chars[c] > 0;
    assert_int_equal(distinct, 64);
}

static void test_hash_known(void **state)
{
    unsigned char h[32];
    char hex[65];
    (void)state;
    scim_token_hash("abc", 3, h);
    scim_hex(h, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_extract_bearer(void **state)
{
    char out[SCIM_TOKEN_MAX];
    (void)state;
    assert_int_equal(scim_auth_extract("Bearer scimd_abc", out, sizeof out), 0);
    assert_string_equal(out, "scimd_abc");
    assert_int_equal(scim_auth_extract("bearer scimd_abc", out, sizeof out), 0);
    assert_string_equal(out, "scimd_abc");
    assert_int_equal(scim_auth_extract("  BEARER   tok  \t", out, sizeof out), 0);
    assert_string_equal(out, "tok");
    assert_int_equal(scim_auth_extract("Bearer\ttok", out, sizeof out), 0);
    assert_string_equal(out, "tok");
}

static void test_extract_malformed(void **state)
{
    char out[16];
    (void)state;
    assert_int_equal(scim_auth_extract(NULL, out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("", out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("Bearer", out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("Bearer    ", out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("Bearertok", out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("Bearer a b", out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("Token abc", out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("abc", out, sizeof out), -1);
    /* Longer than the output buffer. */
    assert_int_equal(scim_auth_extract("Bearer 0123456789abcdef", out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("Bearer 0123456789abcde", out, sizeof out), 0);
    assert_string_equal(out, "0123456789abcde");
}

static void test_extract_basic(void **state)
{
    char out[SCIM_TOKEN_MAX];
    (void)state;
    /* okta:scimd_secret */
    assert_int_equal(scim_auth_extract("Basic b2t0YTpzY2ltZF9zZWNyZXQ=", out, sizeof out), 0);
    assert_string_equal(out, "scimd_secret");
    /* Unpadded and lower-case scheme. */
    assert_int_equal(scim_auth_extract("basic b2t0YTpzY2ltZF9zZWNyZXQ", out, sizeof out), 0);
    assert_string_equal(out, "scimd_secret");
    /* scimd_tok: (empty password: the user name is the token) */
    assert_int_equal(scim_auth_extract("Basic c2NpbWRfdG9rOg==", out, sizeof out), 0);
    assert_string_equal(out, "scimd_tok");
    /* user:pa:ss keeps everything after the first colon */
    assert_int_equal(scim_auth_extract("Basic dXNlcjpwYTpzcw==", out, sizeof out), 0);
    assert_string_equal(out, "pa:ss");
}

static void test_extract_basic_malformed(void **state)
{
    char out[SCIM_TOKEN_MAX];
    (void)state;
    assert_int_equal(scim_auth_extract("Basic", out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("Basic ", out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("Basic !!!!", out, sizeof out), -1);
    /* "nocolon": no user:password separator */
    assert_int_equal(scim_auth_extract("Basic bm9jb2xvbg==", out, sizeof out), -1);
    /* ":" alone: both parts empty */
    assert_int_equal(scim_auth_extract("Basic Og==", out, sizeof out), -1);
    /* bad length (5 characters) and misplaced padding */
    assert_int_equal(scim_auth_extract("Basic abcde", out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("Basic ab=c", out, sizeof out), -1);
    assert_int_equal(scim_auth_extract("Basic a===", out, sizeof out), -1);
    /* "u:a\0b": a NUL inside the credential is refused */
    assert_int_equal(scim_auth_extract("Basic dTphAGI=", out, sizeof out), -1);
}

static void test_password(void **state)
{
    char enc[SCIM_PASSWORD_HASH_MAX], enc2[SCIM_PASSWORD_HASH_MAX];
    (void)state;
    assert_int_equal(scim_password_hash("correct horse", enc), 0);
    assert_memory_equal(enc, "$argon2id$v=19$m=19456,t=2,p=1$", 31);
    assert_true(scim_password_verify(enc, "correct horse"));
    assert_false(scim_password_verify(enc, "correct horsE"));
    assert_false(scim_password_verify(enc, ""));
    assert_false(scim_password_verify("$argon2i$v=19$m=19456,t=2,p=1$xx$yy", "x"));
    assert_false(scim_password_verify("garbage", "x"));
    assert_false(scim_password_verify(NULL, "x"));
    /* Salted: the same password hashes differently each time. */
    assert_int_equal(scim_password_hash("correct horse", enc2), 0);
    assert_string_not_equal(enc, enc2);
    assert_int_equal(scim_password_hash(NULL, enc2), -1);
}

static void test_wipe(void **state)
{
    char buf[8] = "secret!";
    static const char zero[8];
    (void)state;
    scim_wipe(buf, sizeof buf);
    assert_memory_equal(buf, zero, sizeof buf);
    scim_wipe(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_format),  cmocka_unit_test(test_generate_unique),
        cmocka_unit_test(test_hash_known),       cmocka_unit_test(test_extract_bearer),
        cmocka_unit_test(test_extract_malformed), cmocka_unit_test(test_extract_basic),
        cmocka_unit_test(test_extract_basic_malformed), cmocka_unit_test(test_password),
        cmocka_unit_test(test_wipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
