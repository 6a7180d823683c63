/* End-to-end test harness: starts a real scimd (and mints its token with scimctl) in a
 * temporary directory and talks to it over real HTTP with libcurl.
 *
 * Binaries come from the environment: SCIMD_BIN, SCIMCTL_BIN (set by ctest). Temporary
 * directories go under $TMPDIR (or /tmp) and are removed by e2e_server_cleanup() when the
 * test passed; they are kept (and their path printed) when it failed, for the logs. */
#ifndef SCIMD_TESTS_E2E_H
#define SCIMD_TESTS_E2E_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define E2E_MAX_ARGS 32
#define E2E_MAX_SECRETS 64

struct e2e_server {
    pid_t pid;              /* 0 when not running */
    int port;
    char base_url[256];     /* "http://127.0.0.1:PORT/scim/v2" as printed by scimd */
    char token[512];        /* minted with scimctl before the first start */
    char admin_token[512];  /* the token scimd printed on first start, or "" */
    char dir[512];          /* the temporary directory */
    char db[640];           /* dir + "/scimd.db", or a PostgreSQL URI (see e2e_backend_pg) */
    char pg_db[64];         /* the test database this server created ("" if none) */
    char log[640];          /* dir + "/scimd.log": scimd's stderr (appended over restarts) */
    char cainfo[640];       /* CA file curl trusts for https (e2e_server_trust), or "" */
    /* Copied from the options so e2e_server_restart() can start the same server again. */
    char *args[E2E_MAX_ARGS];
    size_t n_args;
    char *env[E2E_MAX_ARGS];
    size_t n_env;
    /* Strings that must never appear in scimd's log: the bearer token (always) and whatever
     * e2e_secret() registered (passwords sent). Checked by e2e_server_cleanup(). */
    char *secrets[E2E_MAX_SECRETS];
    size_t n_secrets;
    /* Internal: the thread that drains scimd's stdout after the "listening on" line. */
    int out_fd;
    void *drain;
};

struct e2e_opts {
    const char *const *args; /* extra command-line arguments, e.g. {"--max-body", "1024"} */
    size_t n_args;
    const char *const *env;  /* extra environment entries "NAME=VALUE" */
    size_t n_env;
};

/* True when the suite runs on PostgreSQL: SCIMD_TEST_BACKEND=postgresql, with the admin URL of
 * a throwaway cluster in SCIMD_TEST_PG_URL (scripts/pg-test-cluster.sh). Each server then gets
 * a fresh database scimd_test_<random>, dropped by e2e_server_cleanup() on success. */
int e2e_backend_pg(void);

/* Creates a fresh PostgreSQL test database: its URI into `uri`, its name into `name`.
 * Returns 0 or -1 (message on stderr). */
int e2e_pg_create_db(char *uri, size_t urilen, char *name, size_t namelen);

/* Drops a test database created by e2e_pg_create_db (connections are terminated). */
void e2e_pg_drop_db(const char *name);

/* Runs scripts/pg-test-cluster.sh with `cmd` and `arg` (may be NULL), e.g. "restart", "2";
 * returns its exit code. */
int e2e_pg_cluster(const char *cmd, const char *arg);

/* Exit code a test returns when it does not apply to this backend (ctest SKIP_RETURN_CODE). */
#define E2E_SKIP 77

/* Creates the temporary directory (and on PostgreSQL a fresh database), mints a token with
 * scimctl (with the scopes named by the environment variable E2E_TOKEN_SCOPES when set, e.g.
 * "scim:read scim:write admin"), spawns scimd with `--listen 127.0.0.1:0 --db DIR/scimd.db`
 * plus opts->args, and waits (20 s at most) for its
 * "listening on" line. `opts` may be NULL. Returns 0, or -1 with a message on stderr. */
int e2e_server_start(struct e2e_server *srv, const struct e2e_opts *opts);

/* Makes e2e_request trust the PEM certificate `cafile` (the --tls-cert of an https server
 * started with e2e_server_start). Call after the start. */
void e2e_server_trust(struct e2e_server *srv, const char *cafile);
/* e2e_server_start on an existing database `db` (a URI) instead of a fresh one: several nodes
 * on one PostgreSQL database. The server that created the database keeps ownership of it. */
int e2e_server_start_on(struct e2e_server *srv, const struct e2e_opts *opts, const char *db);

/* Graceful stop: SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status as from
 * waitpid (so WIFEXITED/WEXITSTATUS apply), or -1 when the server was not running. */
int e2e_server_stop(struct e2e_server *srv);

/* SIGKILL now and reap. Returns 0, or -1 when the server was not running. */
int e2e_server_kill9(struct e2e_server *srv);

/* Starts scimd again on the same directory and database (after stop or kill9): the port
 * and base_url change, the token stays. Returns 0 or -1. */
int e2e_server_restart(struct e2e_server *srv);

/* Stops the server when still running; removes the temporary directory when `success`,
 * otherwise prints where it is and the tail of scimd's log. Frees the copied options.
 * Before that it checks that scimd's log contains none of the secrets (the token and what
 * e2e_secret registered): when one is found it says so and exits the test with status 1, so
 * that every e2e program gets this check. */
void e2e_server_cleanup(struct e2e_server *srv, int success);

/* Registers a string that must never appear in scimd's log (a password sent in a request).
 * Strings shorter than 6 characters are ignored (too likely to occur by chance). Not
 * thread-safe: call from the main thread. */
void e2e_secret(struct e2e_server *srv, const char *secret);

/* Returns how many registered secrets (bearer token included) occur in scimd's log, printing
 * each one found to stderr. */
int e2e_server_check_secrets(const struct e2e_server *srv);

/* Prints the last `lines` lines of scimd's log to stderr. */
void e2e_server_dump_log(const struct e2e_server *srv, int lines);

struct e2e_header {
    char *name;
    char *value;
};

#define E2E_MAX_RESP_HEADERS 48

struct e2e_response {
    long status;               /* 0 when the request failed at the transport level */
    char *body;                /* NUL-terminated, never NULL after e2e_request() */
    size_t body_len;
    json_t *json;              /* parsed body when it is JSON, else NULL (owned) */
    /* Frequently used headers (NULL when absent; point into `headers`). */
    const char *content_type;
    const char *etag;
    const char *location;
    const char *www_authenticate;
    const char *retry_after;
    struct e2e_header headers[E2E_MAX_RESP_HEADERS]; /* all headers, names as sent */
    size_t n_headers;
    char error[256];           /* curl's message when status is 0 */
};

/* Sends one request. `path` is relative to srv->base_url ("/Users?filter=...") unless it
 * starts with "http". `headers` is a NULL-terminated array of "Name: value" lines (or NULL);
 * the Authorization header is "Bearer <token>" unless `headers` has an Authorization line
 * ("Authorization:" with nothing after it sends none). With a body and no Content-Type line,
 * Content-Type is application/scim+json. `body` may be NULL. Returns 0 when an HTTP response
 * was received (any status), -1 otherwise (resp->error says why). Always call
 * e2e_response_free() afterwards. Safe to call from several threads at once. */
int e2e_request(const struct e2e_server *srv, const char *method, const char *path,
                const char *const *headers, const char *body, struct e2e_response *resp);

/* Case-insensitive lookup of a response header; NULL when absent. */
const char *e2e_response_header(const struct e2e_response *resp, const char *name);

void e2e_response_free(struct e2e_response *resp);

/* Percent-encodes `in` for a query-string value; returns a malloc'd string (NULL on OOM). */
char *e2e_urlencode(const char *in);

/* Must be called once before any thread is started (curl_global_init). */
void e2e_global_init(void);

#endif
