/* scimd: the SCIM 2.0 provisioning server. Parses its configuration (flags over environment
 * over defaults), opens the store, makes sure an admin token exists, serves HTTP until SIGTERM
 * or SIGINT, then shuts down in order. */
#include "api/api.h"
#include "api/plog.h"
#include "auth/token.h"
#include "common/err.h"
#include "common/jsonalloc.h"
#include "common/log.h"
#include "common/memtune.h"
#include "common/util.h"
#include "feed/delivery.h"
#include "http/server.h"
#include "scim/extconfig.h"
#include "scim/compat.h"
#include "scim/schema.h"
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXIT_USAGE 2

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_DB "var/scimd.db"
#define DEFAULT_PREFIX "/scim/v2"
#define DEFAULT_THREADS 8
#define CONNECTION_TIMEOUT_S 30
#define MAX_CONNECTIONS 1024

struct options {
    const char *listen;
    const char *db;
    const char *public_url;
    const char *prefix;
    const char *log_level;
    const char *tls_cert;
    const char *tls_key;
    const char *threads;
    const char *max_body;
    const char *max_results;
    const char *schema_extensions;
    const char *sqlite_sync;
    const char *bulk_max_operations;
    const char *bulk_max_payload;
    const char *compat_disable;
    const char *log_retention_days;
    const char *log_max_entries;
    const char *log_queue;
    const char *log_prune_interval;
    const char *events_retention_days;
    const char *events_max_entries;
    const char *db_pool;
    const char *rate_limit_token;
    const char *rate_limit_tenant;
};

/* One row per option: flag, environment variable, where it lands, default (for --help). */
struct optdef {
    const char *flag;
    const char *env;
    size_t off;
    const char *arg;
    const char *def;
    const char *help;
};

#define OPT(field) offsetof(struct options, field)

static const struct optdef optdefs[] = {
    {"--listen", "SCIMD_LISTEN", OPT(listen), "HOST:PORT", DEFAULT_LISTEN,
     "Address and port to listen on. HOST is an IPv4 address, \"localhost\", or an IPv6\n"
     "address in brackets ([::1]:8080, [::]:8080). PORT 0 picks a free port."},
    {"--db", "SCIMD_DB", OPT(db), "URI", DEFAULT_DB,
     "The database: a file path or sqlite:PATH (embedded SQLite), or a libpq URI\n"
     "postgresql://user:password@host:port/dbname (several scimd nodes may share one\n"
     "PostgreSQL database). It is created (SQLite) and migrated on first use."},
    {"--public-url", "SCIMD_PUBLIC_URL", OPT(public_url), "URL", "derived from Host",
     "Absolute URL of the server root as clients reach it (behind a reverse proxy),\n"
     "e.g. https://scim.example.com. Used for meta.location and $ref values."},
    {"--prefix", "SCIMD_PREFIX", OPT(prefix), "PATH", DEFAULT_PREFIX,
     "Base path of the SCIM endpoints."},
    {"--log-level", "SCIMD_LOG_LEVEL", OPT(log_level), "LEVEL", "info",
     "One of debug, info, warn, error. Logs go to standard error, one key=value line\n"
     "per event and one per request."},
    {"--tls-cert", "SCIMD_TLS_CERT", OPT(tls_cert), "FILE", "none",
     "PEM certificate chain. With --tls-key, scimd serves HTTPS (TLS 1.2 or later)."},
    {"--tls-key", "SCIMD_TLS_KEY", OPT(tls_key), "FILE", "none", "PEM private key."},
    {"--threads", "SCIMD_THREADS", OPT(threads), "N", "8",
     "Worker threads serving requests (1-1024); also the size of the database pool\n"
     "unless --db-pool is given."},
    {"--db-pool", "SCIMD_DB_POOL", OPT(db_pool), "N", "the value of --threads",
     "Database connections of this process (1-256). PostgreSQL: the connections it\n"
     "opens at most (count them against the server's max_connections for all nodes;\n"
     "see docs/deployment.md). SQLite: the read connections (writes use one more\n"
     "connection of their own). Fewer connections than threads is safe: a request\n"
     "uses one connection at a time and waits for a free one."},
    {"--max-body", "SCIMD_MAX_BODY", OPT(max_body), "BYTES", "8388608",
     "Largest request body accepted; larger bodies are answered 413."},
    {"--max-results", "SCIMD_MAX_RESULTS", OPT(max_results), "N", "1000",
     "Largest page a list or search returns (filter.maxResults)."},
    {"--schema-extensions", "SCIMD_SCHEMA_EXTENSIONS", OPT(schema_extensions), "FILE", "none",
     "JSON file declaring custom extension schemas for User and Group (see\n"
     "docs/extensions.md). They are validated on input, stored, returned, usable in\n"
     "filters, PATCH paths and sortBy, and published in /Schemas and /ResourceTypes."},
    {"--sqlite-sync", "SCIMD_SQLITE_SYNC", OPT(sqlite_sync), "full|normal", "full",
     "SQLite durability. full: every commit is fsynced; an acknowledged write survives\n"
     "a crash of scimd and a power loss. normal: no fsync per commit (much faster\n"
     "writes on slow disks); acknowledged writes survive a crash of scimd (kill -9),\n"
     "but a power loss or OS crash may lose the last ones (the database stays valid)."},
    {"--bulk-max-operations", "SCIMD_BULK_MAX_OPERATIONS", OPT(bulk_max_operations), "N", "1000",
     "Most operations in one /Bulk request (maxOperations; 413 beyond). 0 disables /Bulk."},
    {"--bulk-max-payload", "SCIMD_BULK_MAX_PAYLOAD", OPT(bulk_max_payload), "BYTES", "1048576",
     "Largest /Bulk request body (maxPayloadSize; 413 beyond); at most --max-body."},
    {"--compat-disable", "SCIMD_COMPAT_DISABLE", OPT(compat_disable), "NAMES", "none",
     "Comma-separated compatibility behaviours to turn off, or \"all\" for strict RFC\n"
     "7643/7644 input (names in docs/compatibility.md). A request that needs a turned-off\n"
     "behaviour is answered 400 and changes nothing."},
    {"--log-retention-days", "SCIMD_LOG_RETENTION_DAYS", OPT(log_retention_days), "DAYS", "30",
     "Provisioning log: entries older than this are pruned (decimals allowed; 0 keeps\n"
     "them). See docs/operations.md."},
    {"--log-max-entries", "SCIMD_LOG_MAX_ENTRIES", OPT(log_max_entries), "N", "1000000",
     "Provisioning log: entries kept per tenant, the newest (0 = no limit)."},
    {"--log-queue", "SCIMD_LOG_QUEUE", OPT(log_queue), "N", "65536",
     "Provisioning log: entries waiting to be written at most; beyond, entries are\n"
     "dropped (counted, and a warning is logged at most once a minute)."},
    {"--log-prune-interval", "SCIMD_LOG_PRUNE_INTERVAL", OPT(log_prune_interval), "SECONDS", "60",
     "Provisioning log and change feed: how often old entries and events are pruned."},
    {"--events-retention-days", "SCIMD_EVENTS_RETENTION_DAYS", OPT(events_retention_days), "DAYS",
     "7",
     "Change feed: events older than this are pruned (decimals allowed; 0 keeps them),\n"
     "except those an enabled webhook has not delivered yet. A reader of the events API\n"
     "whose position was pruned is answered 410. See docs/operations.md."},
    {"--events-max-entries", "SCIMD_EVENTS_MAX_ENTRIES", OPT(events_max_entries), "N", "1000000",
     "Change feed: events kept per tenant, the newest (0 = no limit); undelivered events\n"
     "of an enabled webhook are kept beyond it."},
    {"--rate-limit-token", "SCIMD_RATE_LIMIT_TOKEN", OPT(rate_limit_token), "N/s[:BURST]", "off",
     "Requests per second (or N/m, N/h) each bearer token may make, with an optional\n"
     "burst (default: one second's worth). Beyond it: 429 with Retry-After. Off by\n"
     "default: identity providers retry poorly. See docs/security.md."},
    {"--rate-limit-tenant", "SCIMD_RATE_LIMIT_TENANT", OPT(rate_limit_tenant), "N/s[:BURST]",
     "off", "Requests per second all tokens of one tenant may make together, as above."},
};

#define N_OPTDEFS (sizeof optdefs / sizeof optdefs[0])

static const char **field(struct options *o, const struct optdef *d)
{
    return (const char **)(void *)((char *)o + d->off);
}

/* One synopsis for --help and for usage errors. */
#define SYNOPSIS                                                                                  \
    "    scimd [--listen HOST:PORT] [--db URI] [--public-url URL] [--prefix PATH]\n"                \
    "          [--log-level LEVEL] [--tls-cert FILE --tls-key FILE] [--threads N]\n"               \
    "          [--max-body BYTES] [--max-results N] [--schema-extensions FILE]\n"                  \
    "          [--bulk-max-operations N] [--bulk-max-payload BYTES] [--compat-disable NAMES]\n"    \
    "          [--sqlite-sync full|normal] [--log-retention-days DAYS] [--log-max-entries N]\n"   \
    "          [--log-queue N] [--log-prune-interval SECONDS] [--db-pool N]\n"                      \
    "          [--events-retention-days DAYS] [--events-max-entries N]\n"                           \
    "          [--rate-limit-token N/s[:BURST]] [--rate-limit-tenant N/s[:BURST]]\n"               \
    "    scimd --help | --version\n"

static void usage(FILE *f)
{
    fputs("usage:\n" SYNOPSIS, f);
}

static void help(void)
{
    fputs("NAME\n"
          "    scimd - SCIM 2.0 provisioning server\n"
          "\n"
          "SYNOPSIS\n" SYNOPSIS
          "\n"
          "DESCRIPTION\n"
          "    scimd serves the SCIM 2.0 protocol (RFC 7643, RFC 7644) so that identity\n"
          "    providers such as Microsoft Entra ID, Okta or authentik can create, update,\n"
          "    deactivate and delete users and groups. Clients authenticate with a bearer\n"
          "    token (HTTP Basic with the token as password is accepted too).\n"
          "\n"
          "    On its first start against an empty database scimd creates an admin token and\n"
          "    prints it once on standard output; keep it, it is stored only as a hash. More\n"
          "    tokens are managed with scimctl(1). Once serving, scimd prints the line\n"
          "    \"listening on URL\" with the SCIM base URL.\n"
          "\n"
          "OPTIONS\n",
          stdout);
    for (size_t i = 0; i < N_OPTDEFS; i++) {
        const struct optdef *d = &optdefs[i];
        const char *p = d->help;
        printf("    %s %s\n", d->flag, d->arg);
        /* Indent each line of the help text. */
        while (*p) {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            printf("        %.*s\n", (int)n, p);
            p += n + (e ? 1 : 0);
        }
        printf("        Environment: %s. Default: %s.\n\n", d->env, d->def);
    }
    fputs("    -h, --help\n"
          "        Print this help and exit.\n"
          "\n"
          "    --version\n"
          "        Print the version and exit.\n"
          "\n"
          "    Options also accept the --flag=VALUE form.\n"
          "\n"
          "ENVIRONMENT\n"
          "    Every option can be set by the variable named above; a flag on the command line\n"
          "    takes precedence over the variable, which takes precedence over the default.\n"
          "\n"
          "FILES\n"
          "    var/scimd.db\n"
          "        The default SQLite database (relative to the working directory). Its\n"
          "        directory is created if missing.\n"
          "\n"
          "SIGNALS\n"
          "    SIGTERM, SIGINT\n"
          "        Graceful shutdown: stop accepting connections, finish the requests in\n"
          "        flight, close the database, exit 0.\n"
          "\n"
          "EXIT STATUS\n"
          "    0   clean shutdown (or --help, --version)\n"
          "    1   start-up failure: database, address in use, TLS files, extension schemas\n"
          "    2   invalid command line or environment value\n"
          "\n"
          "EXAMPLES\n"
          "    First start on the default address, printing the admin token:\n"
          "        scimd\n"
          "\n"
          "    Listen on all interfaces with TLS and a public URL behind a proxy:\n"
          "        scimd --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem \\\n"
          "              --public-url https://scim.example.com\n"
          "\n"
          "    Configuration from the environment (containers):\n"
          "        SCIMD_LISTEN='[::]:8080' SCIMD_DB=/data/scimd.db scimd\n"
          "\n"
          "    Custom attributes (licence type, cost centre) in an extension schema:\n"
          "        scimd --schema-extensions /etc/scimd/extensions.json\n"
          "\n"
          "SEE ALSO\n"
          "    scimctl(1), RFC 7643, RFC 7644\n",
          stdout);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("scimd: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    return EXIT_USAGE;
}

/* Fills `o` from the environment, then from argv. Returns -1 to continue, else an exit code. */
static int parse_args(int argc, char **argv, struct options *o)
{
    for (size_t i = 0; i < N_OPTDEFS; i++) {
        const char *v = getenv(optdefs[i].env);
        if (v && *v)
            *field(o, &optdefs[i]) = v;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq;
        size_t flen;
        const struct optdef *d = NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return EXIT_SUCCESS;
        }
        if (strcmp(a, "--version") == 0) {
            printf("scimd %s\n", SCIMD_VERSION);
            return EXIT_SUCCESS;
        }
        eq = strchr(a, '=');
        flen = eq ? (size_t)(eq - a) : strlen(a);
        for (size_t k = 0; k < N_OPTDEFS; k++)
            if (strlen(optdefs[k].flag) == flen && strncmp(a, optdefs[k].flag, flen) == 0)
                d = &optdefs[k];
        if (!d)
            return usage_error("unknown option: %s", a);
        if (eq) {
            *field(o, d) = eq + 1;
        } else {
            if (i + 1 >= argc)
                return usage_error("option %s needs a value (%s)", d->flag, d->arg);
            *field(o, d) = argv[++i];
        }
    }
    return -1;
}

/* Parses "HOST:PORT", "[V6]:PORT" or ":PORT" into host (brackets removed) and port. */
static int parse_listen(const char *s, char *host, size_t hostlen, unsigned short *port)
{
    const char *colon, *h = s;
    size_t n;
    int64_t p;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        n = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1; /* no port, or an IPv6 address without brackets */
        n = (size_t)(colon - s);
    }
    if (n >= hostlen || scim_parse_i64(colon + 1, &p) != 0 || p < 0 || p > 65535 ||
        colon[1] == '+' || colon[1] == '-')
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    if (n == 0)
        snprintf(host, hostlen, "127.0.0.1");
    *port = (unsigned short)p;
    return 0;
}

static int parse_count(const char *s, int64_t min, int64_t max, int64_t *out)
{
    return scim_parse_i64(s, out) == 0 && *out >= min && *out <= max ? 0 : -1;
}

/* The provisioning log flags into `c` (defaults first); -1 names nothing: the caller reports. */
static int plog_options(const struct options *o, struct scim_plog_config *c, const char **bad)
{
    int64_t n;
    scim_plog_config_defaults(c);
    if (o->log_retention_days) {
        char *end = NULL;
        double days = strtod(o->log_retention_days, &end);
        *bad = "--log-retention-days";
        if (!end || end == o->log_retention_days || *end || !(days >= 0) || days > 36500)
            return -1;
        c->retention_us = (int64_t)(days * 86400.0 * 1e6);
    }
    if (o->log_max_entries) {
        *bad = "--log-max-entries";
        if (parse_count(o->log_max_entries, 0, INT64_C(1) << 40, &n))
            return -1;
        c->max_entries = n;
    }
    if (o->log_queue) {
        *bad = "--log-queue";
        if (parse_count(o->log_queue, 1, 1 << 24, &n))
            return -1;
        c->capacity = (size_t)n;
    }
    if (o->log_prune_interval) {
        *bad = "--log-prune-interval";
        if (parse_count(o->log_prune_interval, 1, 86400, &n))
            return -1;
        c->prune_interval_us = n * 1000000;
    }
    if (o->events_retention_days) {
        char *end = NULL;
        double days = strtod(o->events_retention_days, &end);
        *bad = "--events-retention-days";
        if (!end || end == o->events_retention_days || *end || !(days >= 0) || days > 36500)
            return -1;
        c->events_retention_us = (int64_t)(days * 86400.0 * 1e6);
    }
    if (o->events_max_entries) {
        *bad = "--events-max-entries";
        if (parse_count(o->events_max_entries, 0, INT64_C(1) << 40, &n))
            return -1;
        c->events_max_entries = n;
    }
    return 0;
}

static bool is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           scim_streq_ci(host, "localhost");
}

/* Creates the directory holding a database file when it is missing (one level). */
static void ensure_db_dir(const char *uri)
{
    char dir[4096];
    const char *path = uri, *slash;
    if (strncmp(uri, "sqlite:", 7) == 0)
        path = uri + 7;
    else if (strstr(uri, "://"))
        return;
    if (strcmp(path, ":memory:") == 0)
        return;
    slash = strrchr(path, '/');
    if (!slash || slash == path || (size_t)(slash - path) >= sizeof dir)
        return;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        scim_warn("msg=\"cannot create database directory\" dir=%s error=\"%s\"", dir,
                  strerror(errno));
}

/* Creates the first admin token when the default tenant has none. On success *created tells
 * whether `tok` holds a new token to show. */
static int bootstrap_token(struct scim_store *st, char tok[SCIM_TOKEN_MAX], bool *created,
                           struct scim_err *err)
{
    int64_t tenant, n = 0;
    unsigned char hash[32];

    *created = false;
    if (scim_store_tenant_default(st, &tenant, err) != 0 ||
        scim_store_token_count(st, tenant, &n, err) != 0)
        return -1;
    if (n > 0)
        return 0;
    if (scim_token_generate(tok, hash) != 0)
        return scim_err_internal(err, "no randomness for the admin token");
    if (scim_store_token_create(st, tenant, "admin", hash, "scim:read scim:write admin", 0,
                                err) != 0) {
        scim_wipe(tok, SCIM_TOKEN_MAX);
        return -1;
    }
    *created = true;
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = {.listen = DEFAULT_LISTEN, .db = DEFAULT_DB, .prefix = DEFAULT_PREFIX,
                        .log_level = "info"};
    struct scim_err err;
    struct scim_registry *reg = NULL;
    struct scim_store *st = NULL;
    struct scim_api *api = NULL;
    struct scim_http_server *srv = NULL;
    struct scim_delivery *dlv = NULL;
    struct scim_api_config acfg;
    struct scim_http_config hcfg;
    struct scim_store_opts sopts;
    struct scim_plog_config pcfg;
    const char *bad_flag = NULL;
    enum scim_log_level level;
    char host[256];
    char url[1024];
    char tok[SCIM_TOKEN_MAX];
    unsigned short port;
    int64_t threads = DEFAULT_THREADS, db_pool, max_body, max_results, n = 0;
    bool created = false;
    sigset_t sigs;
    int sig, rc, status = EXIT_FAILURE;

    scim_malloc_tune(); /* before any thread: bounded arenas, bounded RSS */
    scim_err_clear(&err);
    scim_json_alloc_init(); /* before any JSON value exists */
    rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;

    scim_api_config_defaults(&acfg);
    max_body = (int64_t)acfg.max_body;
    max_results = acfg.max_results;
    if (parse_listen(o.listen, host, sizeof host, &port) != 0)
        return usage_error("invalid --listen value \"%s\" (expected HOST:PORT or [IPv6]:PORT)",
                           o.listen);
    if (scim_log_parse_level(o.log_level, &level) != 0)
        return usage_error("invalid --log-level \"%s\"", o.log_level);
    if (o.threads && parse_count(o.threads, 1, 1024, &threads) != 0)
        return usage_error("invalid --threads \"%s\" (1-1024)", o.threads);
    db_pool = threads;
    if (o.db_pool && parse_count(o.db_pool, 1, 256, &db_pool) != 0)
        return usage_error("invalid --db-pool \"%s\" (1-256)", o.db_pool);
    if (o.max_body && parse_count(o.max_body, 1, INT64_C(1) << 30, &max_body) != 0)
        return usage_error("invalid --max-body \"%s\" (1-1073741824)", o.max_body);
    if (o.max_results && parse_count(o.max_results, 1, 1000000, &max_results) != 0)
        return usage_error("invalid --max-results \"%s\" (1-1000000)", o.max_results);
    if (o.bulk_max_operations && parse_count(o.bulk_max_operations, 0, 1000000, &n) != 0)
        return usage_error("invalid --bulk-max-operations \"%s\" (0-1000000)", o.bulk_max_operations);
    acfg.bulk_max_operations = o.bulk_max_operations ? (size_t)n : acfg.bulk_max_operations;
    if (o.bulk_max_payload && parse_count(o.bulk_max_payload, 1, INT64_C(1) << 30, &n) != 0)
        return usage_error("invalid --bulk-max-payload \"%s\" (1-1073741824)", o.bulk_max_payload);
    acfg.bulk_max_payload = o.bulk_max_payload ? (size_t)n : acfg.bulk_max_payload;
    if (o.compat_disable) {
        char bad[64];
        if (scim_compat_parse(o.compat_disable, &acfg.compat_disabled, bad, sizeof bad) != 0)
            return usage_error("unknown compatibility behaviour \"%s\" in --compat-disable", bad);
    }
    if (plog_options(&o, &pcfg, &bad_flag) != 0)
        return usage_error("invalid %s value", bad_flag);
    if (o.rate_limit_token && scim_rate_parse(o.rate_limit_token, &acfg.rate_token) != 0)
        return usage_error("invalid --rate-limit-token \"%s\" (N/s, N/m or N/h, then :BURST)",
                           o.rate_limit_token);
    if (o.rate_limit_tenant && scim_rate_parse(o.rate_limit_tenant, &acfg.rate_tenant) != 0)
        return usage_error("invalid --rate-limit-tenant \"%s\" (N/s, N/m or N/h, then :BURST)",
                           o.rate_limit_tenant);
    if ((o.tls_cert != NULL) != (o.tls_key != NULL))
        return usage_error("--tls-cert and --tls-key go together");
    if (o.schema_extensions && !*o.schema_extensions)
        return usage_error("--schema-extensions needs a file name");
    if (o.sqlite_sync && strcmp(o.sqlite_sync, "full") != 0 && strcmp(o.sqlite_sync, "normal") != 0)
        return usage_error("invalid --sqlite-sync \"%s\" (full or normal)", o.sqlite_sync);
    if (o.prefix[0] != '/')
        return usage_error("invalid --prefix \"%s\" (must start with /)", o.prefix);
    if (o.public_url && strncmp(o.public_url, "http://", 7) != 0 &&
        strncmp(o.public_url, "https://", 8) != 0)
        return usage_error("invalid --public-url \"%s\" (must be an http:// or https:// URL)",
                           o.public_url);
    scim_log_set_level(level);

    /* Block the shutdown signals before any thread starts, so that every thread inherits the
     * mask and they are only ever received by the sigwait below. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    reg = scim_registry_new();
    if (!reg) {
        scim_error("msg=\"cannot build the schema registry\"");
        goto out;
    }
    if (o.schema_extensions && scim_extconfig_load_file(reg, o.schema_extensions, &err) != 0) {
        /* The detail names the file and the JSON path of the problem. */
        fprintf(stderr, "scimd: invalid --schema-extensions: %s\n", err.detail);
        goto out;
    }
    ensure_db_dir(o.db);
    sopts = (struct scim_store_opts){.reg = reg, .pool_size = (int)db_pool,
                                     .sqlite_sync_normal = o.sqlite_sync &&
                                                           strcmp(o.sqlite_sync, "normal") == 0};
    if (scim_store_open(o.db, &sopts, &st, &err) != 0) {
        char shown[512];
        scim_redact_uri(o.db, shown, sizeof shown);
        scim_error("msg=\"cannot open the database\" db=%s detail=\"%s\" cause=\"%s\"", shown,
                   err.detail, err.log);
        goto out;
    }
    if (bootstrap_token(st, tok, &created, &err) != 0) {
        scim_error("msg=\"cannot create the admin token\" detail=\"%s\" cause=\"%s\"",
                   err.detail, err.log);
        goto out;
    }

    acfg.prefix = o.prefix;
    acfg.public_url = o.public_url;
    acfg.max_body = (size_t)max_body;
    acfg.max_results = max_results;
    if (scim_api_new(&acfg, st, reg, &api, &err) != 0) {
        scim_error("msg=\"cannot start the API\" detail=\"%s\"", err.detail);
        goto out;
    }

    if (scim_plog_start(st, &pcfg, &err) != 0) {
        scim_error("msg=\"cannot start the provisioning log\" cause=\"%s\"", err.log);
        goto out;
    }

    hcfg = (struct scim_http_config){.host = host,
                                     .port = port,
                                     .threads = (unsigned)threads,
                                     .max_body = (size_t)max_body,
                                     .connection_timeout = CONNECTION_TIMEOUT_S,
                                     .max_connections = MAX_CONNECTIONS,
                                     .tls_cert_file = o.tls_cert,
                                     .tls_key_file = o.tls_key};
    if (!is_loopback(host) && !o.tls_cert)
        scim_warn("msg=\"listening on a non-loopback address without TLS: bearer tokens travel "
                  "in clear text; use --tls-cert/--tls-key or a TLS-terminating proxy\" host=%s",
                  host);
    if (scim_http_start(&hcfg, scim_api_handle, api, &srv, &err) != 0) {
        scim_error("msg=\"cannot start the HTTP server\" detail=\"%s\"", err.detail);
        goto out;
    }

    /* webhooks: a thread of its own, so a slow receiver never holds a SCIM request;
     * SCIMD_NODE_ID names this node in the webhook leases (default: the host name) */
    struct scim_delivery_config dcfg = {.node_id = getenv("SCIMD_NODE_ID")};
    if (scim_delivery_start(st, &dcfg, &dlv, &err) != 0) {
        scim_error("msg=\"cannot start webhook delivery\" detail=\"%s\" cause=\"%s\"", err.detail,
                   err.log);
        goto out;
    }

    snprintf(url, sizeof url, "%s://%s%s%s:%u%s", o.tls_cert ? "https" : "http",
             strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
             (unsigned)scim_http_port(srv), o.prefix);
    if (created) {
        char shown[512];
        scim_redact_uri(o.db, shown, sizeof shown);
        printf("scimd %s: first start, database %s\n", SCIMD_VERSION, shown);
        printf("SCIM base URL: %s%s\n", o.public_url ? o.public_url : url,
               o.public_url ? o.prefix : "");
        printf("admin token (shown once): %s\n", tok);
        scim_wipe(tok, sizeof tok);
    }
    printf("listening on %s\n", url);
    fflush(stdout);
    scim_info("msg=\"scimd started\" version=%s url=%s db_backend=%s threads=%lld db_pool=%lld",
              SCIMD_VERSION, url, scim_store_backend(st), (long long)threads, (long long)db_pool);

    do {
        if (sigwait(&sigs, &sig) != 0)
            sig = SIGTERM;
    } while (sig != SIGTERM && sig != SIGINT);
    scim_info("msg=\"shutting down\" signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    status = EXIT_SUCCESS;

out:
    if (st)
        scim_store_events_shutdown(st); /* long-polls answer now instead of holding the stop */
    scim_http_stop(&srv);
    scim_plog_stop(); /* after the last request: writes every queued entry */
    scim_delivery_stop(&dlv);
    scim_api_free(&api);
    scim_store_free(&st);
    scim_registry_free(&reg);
    if (status == EXIT_SUCCESS)
        scim_info("msg=\"scimd stopped\"");
    return status;
}
