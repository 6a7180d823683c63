/* The webhook delivery thread. At-least-once: the cursor moves past an event only after its
 * receiver answered 2xx, so a crash between the answer and the cursor update delivers that
 * event again. In order: one event at a time per webhook, the next only after the previous
 * succeeded; a failure keeps the cursor and schedules a retry of the same event. */
#include "feed/delivery.h"

#include <curl/curl.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "store/events.h"
#include "store/store_impl.h" /* scim_store_events_notify */

#define RESPONSE_KEEP 512 /* bytes of a receiver's answer kept for the error message */

struct scim_delivery {
    struct scim_store *st;
    struct scim_delivery_config cfg;
    char owner[160];
    pthread_t thread;
    atomic_bool stop;
};

int scim_webhook_signature(const char *secret, int64_t t, const char *body, size_t len,
                           char out[SCIM_SIGNATURE_MAX])
{
    char ts[32];
    unsigned char mac[32];
    unsigned int mlen = 0;
    char hex[65];
    int tl = snprintf(ts, sizeof ts, "%lld.", (long long)t);
    /* the signed text is "<t>.<body>": built in one buffer so the MAC is a single call */
    char *msg = malloc((size_t)tl + len + 1);
    if (!msg)
        return -1;
    memcpy(msg, ts, (size_t)tl);
    memcpy(msg + tl, body, len);
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg,
              (size_t)tl + len, mac, &mlen) || mlen != 32) {
        free(msg);
        return -1;
    }
    free(msg);
    scim_hex(mac, 32, hex);
    snprintf(out, SCIM_SIGNATURE_MAX, "t=%lld, v1=%s", (long long)t, hex);
    return 0;
}

int64_t scim_delivery_backoff_ms(int64_t attempts, int64_t base_ms, int64_t cap_ms, double r)
{
    int64_t d = base_ms;
    for (int64_t i = 1; i < attempts && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    d = (int64_t)((double)d * (0.8 + 0.4 * r));
    return d > cap_ms ? cap_ms : d;
}

static double rand01(void)
{
    uint32_t x = 0;
    if (scim_random_bytes(&x, sizeof x) < 0)
        return 0.5;
    return (double)x / 4294967296.0;
}

struct sink {
    char text[RESPONSE_KEEP];
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb, room = sizeof s->text - 1 - s->len;
    memcpy(s->text + s->len, p, n < room ? n : room);
    s->len += n < room ? n : room;
    s->text[s->len] = '\0';
    return n; /* the rest is read and dropped */
}

/* POSTs one event. Returns the HTTP status (0 when there was none) and, on failure, a message
 * in `errbuf`; success is 2xx. */
static long post_event(struct scim_delivery *d, const struct scim_webhook_job *job, json_t *ev,
                       char *errbuf, size_t errlen)
{
    char *body = json_dumps(ev, JSON_COMPACT);
    char sig[SCIM_SIGNATURE_MAX], h1[160], h2[96], h3[SCIM_SIGNATURE_MAX + 32];
    struct curl_slist *hdrs = NULL, *tmp;
    struct sink sink = {.len = 0};
    char cerr[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURL *cu = NULL;
    errbuf[0] = '\0';
    if (!body || scim_webhook_signature(job->secret, scim_now_us() / 1000000, body, strlen(body), sig) < 0) {
        snprintf(errbuf, errlen, "out of memory");
        goto out;
    }
    snprintf(h1, sizeof h1, "Scimd-Event-Id: %s", json_string_value(json_object_get(ev, "id")));
    snprintf(h2, sizeof h2, "Scimd-Event-Type: %s", json_string_value(json_object_get(ev, "type")));
    snprintf(h3, sizeof h3, "Scimd-Signature: %s", sig);
    const char *lines[] = {"Content-Type: application/json", "User-Agent: scimd/" SCIMD_VERSION,
                           h1, h2, h3, "Expect:"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!(tmp = curl_slist_append(hdrs, lines[i]))) {
            snprintf(errbuf, errlen, "out of memory");
            goto out;
        }
        hdrs = tmp;
    }
    if (!(cu = curl_easy_init())) {
        snprintf(errbuf, errlen, "cannot create an HTTP client");
        goto out;
    }
    curl_easy_setopt(cu, CURLOPT_URL, job->url);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, (long)d->cfg.connect_timeout_ms);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, (long)d->cfg.total_timeout_ms);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(cu);
    if (rc != CURLE_OK) {
        snprintf(errbuf, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299)
        snprintf(errbuf, errlen, "HTTP %ld%s%.200s", status, sink.len ? ": " : "", sink.text);
out:
    curl_easy_cleanup(cu);
    curl_slist_free_all(hdrs);
    free(body);
    return status;
}

/* Delivers the events of one leased webhook, in order, until it is caught up, an attempt
 * fails (then a retry is scheduled), the batch is done, or the thread is stopping. */
static void deliver(struct scim_delivery *d, struct scim_webhook_job *job)
{
    struct scim_err err;
    json_t *events = NULL;
    int64_t cursor = job->cursor, attempts = job->attempts;
    int64_t lease_us = d->cfg.lease_ms * 1000;
    size_t i;
    json_t *ev;
    scim_err_clear(&err);
    if (scim_store_events_list(d->st, job->tenant_id, job->cursor, d->cfg.batch, &events, NULL,
                               &err) < 0) {
        scim_error("msg=\"webhook: cannot read events\" webhook=%s cause=\"%s\"", job->id, err.log);
        events = NULL;
    }
    json_array_foreach(events, i, ev) {
        int64_t seq = (int64_t)json_integer_value(json_object_get(ev, "seq"));
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (atomic_load(&d->stop))
            break;
        if (!type || !scim_event_type_match(job->event_types, type)) {
            cursor = seq; /* not subscribed: skipped, recorded with the next progress */
            continue;
        }
        char msg[512];
        long status = post_event(d, job, ev, msg, sizeof msg);
        int64_t now = scim_now_us();
        int lost;
        if (!msg[0]) {
            cursor = seq;
            attempts = 0;
            lost = scim_store_webhook_progress(d->st, job, d->owner, cursor, 0, now, (int)status,
                                               NULL, now + lease_us, &err);
            scim_debug("msg=\"webhook delivered\" webhook=%s seq=%lld status=%ld", job->id,
                       (long long)seq, status);
        } else {
            attempts++;
            int64_t delay = scim_delivery_backoff_ms(attempts, d->cfg.backoff_base_ms,
                                                     d->cfg.backoff_cap_ms, rand01());
            lost = scim_store_webhook_progress(d->st, job, d->owner, cursor, attempts,
                                               now + delay * 1000, (int)status, msg, 0, &err);
            scim_warn("msg=\"webhook delivery failed\" webhook=%s seq=%lld attempt=%lld "
                      "retry_in_ms=%lld error=\"%s\"", job->id, (long long)seq,
                      (long long)attempts, (long long)delay, msg);
            json_decref(events);
            if (lost < 0)
                scim_error("msg=\"webhook: cannot record a failure\" cause=\"%s\"", err.log);
            return; /* lease released by that progress */
        }
        if (lost != 0) {
            if (lost < 0)
                scim_error("msg=\"webhook: cannot record progress\" cause=\"%s\"", err.log);
            json_decref(events);
            return; /* the lease is gone: another node may hold it now */
        }
    }
    json_decref(events);
    if (scim_store_webhook_progress(d->st, job, d->owner, cursor, attempts, scim_now_us(), 0, NULL,
                                    0, &err) < 0)
        scim_error("msg=\"webhook: cannot release the lease\" cause=\"%s\"", err.log);
}

static void *run(void *arg)
{
    struct scim_delivery *d = arg;
    uint64_t gen = 0;
    while (!atomic_load(&d->stop)) {
        struct scim_webhook_job job;
        struct scim_err err;
        scim_err_clear(&err);
        int got = scim_store_webhook_claim(d->st, d->owner, scim_now_us(), d->cfg.lease_ms * 1000,
                                           &job, &err);
        if (got < 0)
            scim_error("msg=\"webhook: claim failed\" cause=\"%s\"", err.log);
        if (got == 1) {
            deliver(d, &job);
            scim_webhook_job_release(&job);
            continue;
        }
        /* woken by a local commit; else every 250 ms, so that retries fall due on time and
         * commits of other nodes are seen (an idle claim changes no row: no disk write) */
        scim_store_events_wait_any(d->st, &gen, 250);
        if (gen == 0 && !atomic_load(&d->stop)) {
            struct timespec ts = {0, 100 * 1000000L}; /* the store is shutting down */
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int scim_delivery_start(struct scim_store *st, const struct scim_delivery_config *cfg,
                        struct scim_delivery **out, struct scim_err *err)
{
    struct scim_delivery *d = calloc(1, sizeof *d);
    char host[64] = "scimd", rnd[9];
    unsigned char r[4];
    *out = NULL;
    if (!d)
        return scim_err_nomem(err);
    d->st = st;
    if (cfg)
        d->cfg = *cfg;
    if (d->cfg.connect_timeout_ms <= 0)
        d->cfg.connect_timeout_ms = 5000;
    if (d->cfg.total_timeout_ms <= 0)
        d->cfg.total_timeout_ms = 10000;
    if (d->cfg.backoff_base_ms <= 0)
        d->cfg.backoff_base_ms = 1000;
    if (d->cfg.backoff_cap_ms <= 0)
        d->cfg.backoff_cap_ms = 600000;
    if (d->cfg.lease_ms <= d->cfg.total_timeout_ms)
        d->cfg.lease_ms = d->cfg.total_timeout_ms * 6 > 60000 ? d->cfg.total_timeout_ms * 6 : 60000;
    if (d->cfg.batch <= 0)
        d->cfg.batch = 100;
    if (!d->cfg.node_id) {
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "scimd");
        host[sizeof host - 1] = '\0';
    }
    if (scim_random_bytes(r, sizeof r) < 0) {
        free(d);
        return scim_err_internal(err, "delivery: no randomness");
    }
    scim_hex(r, sizeof r, rnd);
    char prefix[80];
    snprintf(prefix, sizeof prefix, "%s:", d->cfg.node_id ? d->cfg.node_id : host);
    snprintf(d->owner, sizeof d->owner, "%s%ld:%s", prefix, (long)getpid(), rnd);
    d->cfg.node_id = NULL; /* not kept: the caller's string */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(d);
        return scim_err_internal(err, "delivery: cannot initialise libcurl");
    }
    /* leases of this node's earlier processes (a crash or kill -9) are ours to take back now */
    if (scim_store_webhook_release_leases(st, prefix, err) < 0) {
        curl_global_cleanup();
        free(d);
        return -1;
    }
    if (pthread_create(&d->thread, NULL, run, d) != 0) {
        curl_global_cleanup();
        free(d);
        return scim_err_internal(err, "delivery: cannot start the thread");
    }
    scim_info("msg=\"webhook delivery started\" owner=%s", d->owner);
    *out = d;
    return 0;
}

void scim_delivery_stop(struct scim_delivery **dp)
{
    if (!dp || !*dp)
        return;
    struct scim_delivery *d = *dp;
    atomic_store(&d->stop, true);
    scim_store_events_notify(d->st); /* wakes its wait */
    pthread_join(d->thread, NULL);
    curl_global_cleanup();
    free(d);
    *dp = NULL;
}
