/* The e2e webhook receiver (webhook_receiver.h). */
#include "webhook_receiver.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WR_MAX 4096
#define WR_BODY_MAX (1 << 20)

struct wr {
    struct MHD_Daemon *d;
    int port;
    char url[64];
    char *secret;
    pthread_mutex_t mu;
    int fail_next;
    int hang_ms;
    struct wr_request reqs[WR_MAX];
    int n;
};

struct conn_ctx {
    char *body;
    size_t len;
};

int64_t wr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool wr_signature_ok(const char *secret, const char *header, const char *body, size_t len)
{
    long long t;
    char hex[65], want[65];
    unsigned char mac[32];
    unsigned int mlen = 0;
    if (!header || sscanf(header, "t=%lld, v1=%64[0-9a-f]", &t, hex) != 2 || strlen(hex) != 64)
        return false;
    char prefix[32];
    int pl = snprintf(prefix, sizeof prefix, "%lld.", t);
    char *msg = malloc((size_t)pl + len + 1);
    if (!msg)
        return false;
    memcpy(msg, prefix, (size_t)pl);
    memcpy(msg + pl, body, len);
    bool ok = HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg,
                   (size_t)pl + len, mac, &mlen) != NULL && mlen == 32;
    free(msg);
    for (int i = 0; ok && i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    return ok && CRYPTO_memcmp(want, hex, 64) == 0;
}

static enum MHD_Result answer(struct MHD_Connection *con, int status)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(con, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_req(void *cls, struct MHD_Connection *con, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **ptr)
{
    struct wr *w = cls;
    struct conn_ctx *c = *ptr;
    (void)url;
    (void)version;
    if (!c) {
        if (!(c = calloc(1, sizeof *c)))
            return MHD_NO;
        *ptr = c;
        return MHD_YES;
    }
    if (*upload_size) {
        if (c->len + *upload_size > WR_BODY_MAX)
            return MHD_NO;
        char *nb = realloc(c->body, c->len + *upload_size + 1);
        if (!nb)
            return MHD_NO;
        c->body = nb;
        memcpy(c->body + c->len, upload, *upload_size);
        c->len += *upload_size;
        c->body[c->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "POST") != 0)
        return answer(con, 405);
    int64_t at = wr_now_ms();
    pthread_mutex_lock(&w->mu);
    int hang = w->hang_ms;
    pthread_mutex_unlock(&w->mu);
    if (hang > 0)
        usleep((useconds_t)hang * 1000);
    struct wr_request rq;
    memset(&rq, 0, sizeof rq);
    rq.at_ms = at;
    json_error_t je;
    rq.body = c->body ? json_loadb(c->body, c->len, 0, &je) : NULL;
    json_t *seq = json_object_get(rq.body, "seq");
    rq.seq = json_is_integer(seq) ? (int64_t)json_integer_value(seq) : -1;
    const char *id = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Scimd-Event-Id");
    const char *ty = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Scimd-Event-Type");
    const char *sig = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Scimd-Signature");
    snprintf(rq.event_id, sizeof rq.event_id, "%s", id ? id : "");
    snprintf(rq.event_type, sizeof rq.event_type, "%s", ty ? ty : "");
    rq.sig_ok = c->body && wr_signature_ok(w->secret, sig, c->body, c->len);
    pthread_mutex_lock(&w->mu);
    rq.status = 200;
    if (w->fail_next > 0) {
        w->fail_next--;
        rq.status = 500;
    }
    if (w->n < WR_MAX)
        w->reqs[w->n++] = rq;
    else
        json_decref(rq.body);
    pthread_mutex_unlock(&w->mu);
    return answer(con, rq.status);
}

static void on_done(void *cls, struct MHD_Connection *con, void **ptr,
                    enum MHD_RequestTerminationCode code)
{
    struct conn_ctx *c = *ptr;
    (void)cls;
    (void)con;
    (void)code;
    if (c) {
        free(c->body);
        free(c);
        *ptr = NULL;
    }
}

static int listen_on(struct wr *w, int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    w->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                            NULL, NULL, on_req, w, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, w, MHD_OPTION_END);
    if (!w->d)
        return -1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_BIND_PORT);
    w->port = di ? di->port : port;
    return 0;
}

struct wr *wr_start(const char *secret)
{
    struct wr *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    pthread_mutex_init(&w->mu, NULL);
    w->secret = strdup(secret);
    if (!w->secret || listen_on(w, 0) < 0) {
        wr_free(w);
        return NULL;
    }
    snprintf(w->url, sizeof w->url, "http://127.0.0.1:%d/hook", w->port);
    return w;
}

void wr_free(struct wr *w)
{
    if (!w)
        return;
    if (w->d)
        MHD_stop_daemon(w->d);
    for (int i = 0; i < w->n; i++)
        json_decref(w->reqs[i].body);
    pthread_mutex_destroy(&w->mu);
    free(w->secret);
    free(w);
}

int wr_port(const struct wr *w)
{
    return w->port;
}

const char *wr_url(const struct wr *w)
{
    return w->url;
}

void wr_fail_next(struct wr *w, int k)
{
    pthread_mutex_lock(&w->mu);
    w->fail_next = k;
    pthread_mutex_unlock(&w->mu);
}

void wr_hang_ms(struct wr *w, int ms)
{
    pthread_mutex_lock(&w->mu);
    w->hang_ms = ms;
    pthread_mutex_unlock(&w->mu);
}

int wr_down(struct wr *w)
{
    if (!w->d)
        return 0;
    MHD_stop_daemon(w->d);
    w->d = NULL;
    return 0;
}

int wr_up(struct wr *w)
{
    if (w->d)
        return 0;
    /* the port may linger for a moment after the stop */
    for (int i = 0; i < 50; i++) {
        if (listen_on(w, w->port) == 0)
            return 0;
        usleep(100 * 1000);
    }
    return -1;
}

int wr_count(struct wr *w)
{
    pthread_mutex_lock(&w->mu);
    int n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

int wr_get(struct wr *w, int i, struct wr_request *out)
{
    pthread_mutex_lock(&w->mu);
    if (i < 0 || i >= w->n) {
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    *out = w->reqs[i];
    json_incref(out->body);
    pthread_mutex_unlock(&w->mu);
    return 0;
}
