/* API tokens and passwords: generation, hashing, and parsing of the Authorization header.
 * Tokens are 256 random bits, shown once as "scimd_" + base64url, and stored only as their
 * SHA-256; lookups are by hash (docs/security.md says why that needs no constant-time
 * comparison; secret bytes compared directly use scim_ct_equal). Passwords (when a
 * client sends one) are stored only as an argon2id hash. */
#ifndef SCIM_AUTH_TOKEN_H
#define SCIM_AUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define SCIM_TOKEN_PREFIX "scimd_"
#define SCIM_TOKEN_MAX 64 /* buffer size for a token string */

/* Creates a new random token string and its hash. -1 if the system has no randomness. */
int scim_token_generate(char out[SCIM_TOKEN_MAX], unsigned char hash[32]);
/* SHA-256 of a presented token. */
void scim_token_hash(const char *token, size_t len, unsigned char hash[32]);

/* Extracts the credential from an Authorization header value:
 * "Bearer <token>" (scheme case-insensitive), or "Basic base64(user:password)" where the
 * password (or the user name when the password is empty) is the token (Okta's Basic option).
 * Copies it into `out` (NUL-terminated) and returns 0; -1 when absent or malformed. */
int scim_auth_extract(const char *authorization, char *out, size_t outlen);

/* argon2id hash of a password, in the encoded "$argon2id$v=19$..." form; -1 on failure. */
#define SCIM_PASSWORD_HASH_MAX 128
int scim_password_hash(const char *password, char out[SCIM_PASSWORD_HASH_MAX]);
bool scim_password_verify(const char *encoded, const char *password);

/* Overwrites `len` bytes with zeros in a way the compiler keeps. */
void scim_wipe(void *p, size_t len);

#endif
