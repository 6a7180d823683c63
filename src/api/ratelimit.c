/* Token buckets in a fixed table. Stripes of the table each have their own mutex so that
 * requests of different keys rarely contend; a key's probe window lies within one stripe. */
#include "api/ratelimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

#define PROBE 8
#define STRIPES 16

struct bucket {
    int64_t key;
    bool used;
    double tokens;
    int64_t last_us; /* last refill, also the recency used for eviction */
};

struct scim_ratelimit {
    struct scim_rate rate;
    unsigned mask; /* slots - 1 */
    unsigned stripe_shift;
    pthread_mutex_t locks[STRIPES];
    struct bucket *slots;
};

int scim_rate_parse(const char *text, struct scim_rate *out)
{
    char num[32];
    const char *slash, *colon;
    int64_t n, burst = 0, per = 1;
    size_t len;

    memset(out, 0, sizeof *out);
    if (strcmp(text, "0") == 0 || strcmp(text, "off") == 0)
        return 0;
    slash = strchr(text, '/');
    if (!slash || (size_t)(slash - text) >= sizeof num || slash == text)
        return -1;
    memcpy(num, text, (size_t)(slash - text));
    num[slash - text] = '\0';
    if (num[0] == '+' || num[0] == '-' || scim_parse_i64(num, &n) || n < 1 || n > 1000000)
        return -1;
    switch (slash[1]) {
    case 's': per = 1; break;
    case 'm': per = 60; break;
    case 'h': per = 3600; break;
    default: return -1;
    }
    colon = slash + 2;
    if (*colon == ':') {
        len = strlen(colon + 1);
        if (len == 0 || colon[1] == '+' || colon[1] == '-' || scim_parse_i64(colon + 1, &burst) ||
            burst < 1 || burst > 100000000)
            return -1;
    } else if (*colon != '\0') {
        return -1;
    }
    out->rate = (double)n / (double)per;
    out->burst = burst ? (double)burst : (out->rate < 1 ? 1 : out->rate);
    return 0;
}

struct scim_ratelimit *scim_ratelimit_new(const struct scim_rate *rate, unsigned slots)
{
    struct scim_ratelimit *rl;
    unsigned n = 256, bits = 8; /* at least PROBE slots per stripe */

    while (n < slots && n < (1u << 24)) {
        n <<= 1;
        bits++;
    }
    rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    rl->slots = calloc(n, sizeof *rl->slots);
    if (!rl->slots) {
        free(rl);
        return NULL;
    }
    rl->rate = *rate;
    rl->mask = n - 1;
    rl->stripe_shift = bits - 4; /* STRIPES == 16 */
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&rl->locks[i], NULL);
    return rl;
}

void scim_ratelimit_free(struct scim_ratelimit **rl)
{
    if (!*rl)
        return;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&(*rl)->locks[i]);
    free((*rl)->slots);
    free(*rl);
    *rl = NULL;
}

int64_t scim_ratelimit_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static unsigned hash64(int64_t key)
{
    uint64_t x = (uint64_t)key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (unsigned)x;
}

int scim_ratelimit_take(struct scim_ratelimit *rl, int64_t key, int64_t now_us)
{
    /* The window starts at a multiple of PROBE so that it never crosses a stripe boundary. */
    unsigned start = hash64(key) & rl->mask & ~(unsigned)(PROBE - 1);
    pthread_mutex_t *lock = &rl->locks[start >> rl->stripe_shift];
    struct bucket *b = NULL, *victim = NULL;
    double wait;
    int rc = 0;

    pthread_mutex_lock(lock);
    for (unsigned i = 0; i < PROBE; i++) {
        struct bucket *s = &rl->slots[start + i];
        if (s->used && s->key == key) {
            b = s;
            break;
        }
        if (!victim || (!s->used && victim->used) ||
            (s->used == victim->used && s->last_us < victim->last_us))
            victim = s;
    }
    if (!b) {
        b = victim;
        b->used = true;
        b->key = key;
        b->tokens = rl->rate.burst;
        b->last_us = now_us;
    }
    if (now_us > b->last_us) {
        b->tokens += (double)(now_us - b->last_us) / 1e6 * rl->rate.rate;
        if (b->tokens > rl->rate.burst)
            b->tokens = rl->rate.burst;
        b->last_us = now_us;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
    } else {
        wait = (1.0 - b->tokens) / rl->rate.rate;
        rc = wait > 86400 ? 86400 : (int)wait;
        if ((double)rc < wait || rc < 1)
            rc++; /* round up: a client waiting this long will pass */
    }
    pthread_mutex_unlock(lock);
    return rc;
}
