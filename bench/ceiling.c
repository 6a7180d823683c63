/* bench/ceiling: the transport ceiling. A libmicrohttpd responder started with the same daemon
 * flags and options as src/http/server.c (internal polling thread + thread pool, epoll, ITC,
 * connection timeout and limit, URI-log and completion callbacks) that answers every request
 * with a fixed small JSON body. Whatever wrk measures against it is what HTTP over loopback
 * allows on this machine; scimd's numbers are reported as a fraction of it.
 *
 *   ceiling PORT [THREADS]      (runs until SIGINT/SIGTERM)
 *
 * Built by bench/run.sh: cc -O2 ceiling.c $(pkg-config --cflags --libs libmicrohttpd) */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The values scimd uses (src/main.c). */
#define CONNECTION_TIMEOUT_S 30
#define MAX_CONNECTIONS 1024

static char body[] = "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],"
                     "\"totalResults\":0,\"Resources\":[]}";
static struct MHD_Response *resp;
static volatile sig_atomic_t stop;

/* scimd allocates a per-request context in the URI-log callback and frees it on completion;
 * so does the ceiling. */
struct req {
    int started;
};

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)cls;
    (void)uri;
    (void)con;
    return calloc(1, sizeof(struct req));
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)con;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

/* Answers like src/http/server.c does: nothing on the headers-only first call, the body (if
 * any) consumed, then the response once the request is complete. Queueing on the first call
 * makes libmicrohttpd close the connection after each response ("Connection: close"), which
 * would measure connection set-up rather than requests. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct req *r = *con_cls;
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload;
    if (!r)
        return MHD_NO;
    if (!r->started) {
        r->started = 1;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(con, MHD_HTTP_OK, resp);
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ceiling PORT [THREADS]\n");
        return 2;
    }
    unsigned port = (unsigned)strtoul(argv[1], NULL, 10);
    unsigned threads = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 8;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
    resp = MHD_create_response_from_buffer(sizeof body - 1, body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "application/scim+json");
    struct MHD_OptionItem opts[4];
    int n = 0;
    if (threads > 1)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1, as scimd in the benchmark */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri,
        NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_ARRAY, opts,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ceiling: cannot listen on port %u\n", port);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("ceiling listening on port %u\n", port);
    fflush(stdout);
    while (!stop)
        pause();
    MHD_stop_daemon(d);
    MHD_destroy_response(resp);
    return 0;
}
