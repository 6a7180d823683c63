/* A real HTTP webhook receiver for the e2e tests (libmicrohttpd, one thread per connection):
 * records every POST it gets (body, event id, signature, arrival time), verifies the
 * Scimd-Signature with the secret it was given, and can be told to answer 500 to the next K
 * requests, to hang before answering, or to be down (not listening) for a while. */
#ifndef SCIMD_TESTS_WEBHOOK_RECEIVER_H
#define SCIMD_TESTS_WEBHOOK_RECEIVER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct wr_request {
    json_t *body;        /* parsed body (owned) or NULL */
    char event_id[64];
    char event_type[48];
    int64_t seq;         /* body.seq, -1 when absent */
    int status;          /* what the receiver answered */
    bool sig_ok;         /* the signature verified with the secret */
    int64_t at_ms;       /* arrival, monotonic milliseconds */
};

struct wr;

/* Starts on 127.0.0.1 with a free port; `secret` verifies signatures. NULL on failure. */
struct wr *wr_start(const char *secret);
void wr_free(struct wr *w);
int wr_port(const struct wr *w);
/* "http://127.0.0.1:PORT/hook" */
const char *wr_url(const struct wr *w);
/* The next k requests are answered 500. */
void wr_fail_next(struct wr *w, int k);
/* Each request waits this many milliseconds before being answered (0 = none). */
void wr_hang_ms(struct wr *w, int ms);
/* Stops listening (connections are refused) / listens again on the same port. 0 or -1. */
int wr_down(struct wr *w);
int wr_up(struct wr *w);
/* Number of requests recorded so far, and a copy of request i (body referenced: decref). */
int wr_count(struct wr *w);
int wr_get(struct wr *w, int i, struct wr_request *out);
/* Monotonic milliseconds (same clock as at_ms). */
int64_t wr_now_ms(void);

/* Checks a Scimd-Signature header value against `secret` and `body`: true when it is
 * "t=<t>, v1=<hex>" with hex = HMAC-SHA256(secret, "<t>.<body>"). */
bool wr_signature_ok(const char *secret, const char *header, const char *body, size_t len);

#endif
