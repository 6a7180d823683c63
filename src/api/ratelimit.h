/* Token-bucket rate limiting keyed by a 64-bit id (a token id or a tenant id).
 *
 * Memory is bounded: a fixed-size open-addressing table; when a key's short probe window is
 * full, the least recently seen bucket in it is evicted (its key starts again with a full
 * bucket). Every call is O(1) and thread-safe (the table is split into lock stripes). */
#ifndef SCIM_API_RATELIMIT_H
#define SCIM_API_RATELIMIT_H

#include <stdint.h>

struct scim_ratelimit;

/* A limit as configured: `rate` tokens per second refill, at most `burst` saved up. */
struct scim_rate {
    double rate;  /* > 0; 0 = no limit */
    double burst; /* >= 1 */
};

/* Parses "N/s", "N/m" or "N/h", optionally followed by ":BURST" (e.g. "10/s:50"). The burst
 * defaults to one second's worth of the rate (at least 1). "0" or "off" disable the limit.
 * Returns 0, or -1 when the text is not such a limit. */
int scim_rate_parse(const char *text, struct scim_rate *out);

/* Creates a limiter for `rate` with room for `slots` keys (rounded up to a power of two,
 * at least 256). Returns NULL on out of memory. */
struct scim_ratelimit *scim_ratelimit_new(const struct scim_rate *rate, unsigned slots);
void scim_ratelimit_free(struct scim_ratelimit **rl);

/* Monotonic clock for scim_ratelimit_take, in microseconds. */
int64_t scim_ratelimit_now_us(void);

/* Takes one token from `key`'s bucket at time `now_us` (monotonic microseconds). Returns 0
 * when allowed; otherwise returns the whole number of seconds (>= 1) after which a request
 * will be allowed again. */
int scim_ratelimit_take(struct scim_ratelimit *rl, int64_t key, int64_t now_us);

#endif
