#include "auth/token.h"

#include "common/util.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <string.h>

/* OWASP's 2023 minimum for argon2id: 19 MiB, 2 passes, 1 lane. */
#define PW_T_COST 2u
#define PW_M_COST 19456u
#define PW_PARALLELISM 1u
#define PW_SALT_LEN 16u
#define PW_HASH_LEN 32u

#define TOKEN_RANDOM_BYTES 32u

int scim_token_generate(char out[SCIM_TOKEN_MAX], unsigned char hash[32])
{
    unsigned char raw[TOKEN_RANDOM_BYTES];
    size_t plen = sizeof SCIM_TOKEN_PREFIX - 1;

    /* 6 + 43 + 1 bytes: fits SCIM_TOKEN_MAX with room to spare. */
    _Static_assert(sizeof SCIM_TOKEN_PREFIX - 1 + (4 * ((TOKEN_RANDOM_BYTES + 2) / 3)) + 1 <=
                       SCIM_TOKEN_MAX,
                   "token buffer too small");
    if (scim_random_bytes(raw, sizeof raw))
        return -1;
    memcpy(out, SCIM_TOKEN_PREFIX, plen);
    scim_base64url(raw, sizeof raw, out + plen);
    scim_wipe(raw, sizeof raw);
    scim_token_hash(out, strlen(out), hash);
    return 0;
}

void scim_token_hash(const char *token, size_t len, unsigned char hash[32])
{
    scim_sha256(token, len, hash);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Standard (RFC 4648 §4) base64 alphabet value of c, or -1. */
static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes standard base64 (padding optional) into out (at most outlen-1 bytes plus a NUL).
 * Returns the decoded length, or -1 on a bad character, bad length or overflow. */
static long b64decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0, i, pad = 0;

    while (len > 0 && in[len - 1] == '=') {
        len--;
        pad++;
    }
    if (pad > 2 || len % 4 == 1)
        return -1;
    if (pad && (len + pad) % 4 != 0)
        return -1;
    for (i = 0; i < len; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outlen)
                return -1;
            out[o++] = (unsigned char)((acc >> bits) & 0xffu);
        }
    }
    out[o] = '\0';
    return (long)o;
}

static int copy_out(const char *s, size_t len, char *out, size_t outlen)
{
    if (len == 0 || len >= outlen || memchr(s, '\0', len))
        return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

int scim_auth_extract(const char *authorization, char *out, size_t outlen)
{
    const char *p = authorization, *cred, *end;
    size_t clen;

    if (!p || !out || outlen == 0)
        return -1;
    while (is_space(*p))
        p++;
    end = p + strlen(p);
    while (end > p && is_space(end[-1]))
        end--;

    if (end - p > 6 && scim_strncasecmp(p, "Bearer", 6) == 0 && is_space(p[6])) {
        cred = p + 6;
        while (cred < end && is_space(*cred))
            cred++;
        clen = (size_t)(end - cred);
        /* A token never contains blanks: "Bearer a b" is malformed, not token "a b". */
        for (size_t i = 0; i < clen; i++)
            if (is_space(cred[i]))
                return -1;
        return copy_out(cred, clen, out, outlen);
    }
    if (end - p > 5 && scim_strncasecmp(p, "Basic", 5) == 0 && is_space(p[5])) {
        unsigned char dec[512];
        long n;
        const char *colon, *user, *pass;
        size_t ulen, plen;
        int rc;

        cred = p + 5;
        while (cred < end && is_space(*cred))
            cred++;
        clen = (size_t)(end - cred);
        n = b64decode(cred, clen, dec, sizeof dec);
        if (n <= 0) {
            scim_wipe(dec, sizeof dec); /* a failed decode may have left part of a secret */
            return -1;
        }
        colon = memchr(dec, ':', (size_t)n);
        if (!colon) {
            scim_wipe(dec, sizeof dec);
            return -1;
        }
        user = (const char *)dec;
        ulen = (size_t)(colon - user);
        pass = colon + 1;
        plen = (size_t)n - ulen - 1;
        rc = plen > 0 ? copy_out(pass, plen, out, outlen) : copy_out(user, ulen, out, outlen);
        scim_wipe(dec, sizeof dec);
        return rc;
    }
    return -1;
}

int scim_password_hash(const char *password, char out[SCIM_PASSWORD_HASH_MAX])
{
    unsigned char salt[PW_SALT_LEN];
    int rc;

    if (!password)
        return -1;
    if (argon2_encodedlen(PW_T_COST, PW_M_COST, PW_PARALLELISM, PW_SALT_LEN, PW_HASH_LEN,
                          Argon2_id) > SCIM_PASSWORD_HASH_MAX)
        return -1;
    if (scim_random_bytes(salt, sizeof salt))
        return -1;
    rc = argon2id_hash_encoded(PW_T_COST, PW_M_COST, PW_PARALLELISM, password, strlen(password),
                               salt, sizeof salt, PW_HASH_LEN, out, SCIM_PASSWORD_HASH_MAX);
    return rc == ARGON2_OK ? 0 : -1;
}

bool scim_password_verify(const char *encoded, const char *password)
{
    if (!encoded || !password || strncmp(encoded, "$argon2id$", 10) != 0)
        return false;
    return argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
}

void scim_wipe(void *p, size_t len)
{
    if (p && len)
        OPENSSL_cleanse(p, len);
}
