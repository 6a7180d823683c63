/* scimctl: the admin command-line tool. One file per command group (token.c, db.c, tenant.c,
 * settings.c, user.c, group.c); main.c parses the global options and dispatches; http.c is the
 * admin API client (--url mode); cli.c holds the option parser and the table printer. Every
 * command returns a process exit status. */
#ifndef SCIMCTL_H
#define SCIMCTL_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "scim/schema.h"
#include "store/store.h"

#define SCIMCTL_OK 0
#define SCIMCTL_ERROR 1
#define SCIMCTL_USAGE 2

#define SCIMCTL_DEFAULT_DB "var/scimd.db"

struct scimctl {
    const char *db;              /* store URI: --db, else SCIMD_DB, else the default */
    const char *schema_extensions; /* --schema-extensions, else SCIMD_SCHEMA_EXTENSIONS, or NULL */
    struct scim_registry *reg;   /* set by scimctl_open */
    struct scim_store *st;       /* set by scimctl_open */
    int64_t tenant;              /* the default tenant, set by scimctl_open */
    /* --url mode (the admin API). url is NULL in --db mode. */
    const char *url;             /* --url, else SCIMCTL_URL (unless --db was given) */
    char *token;                 /* --token, --token-file or SCIMCTL_TOKEN; malloc'd, wiped */
    int db_given;                /* --db appeared on the command line */
};

/* Opens (creating and migrating) the store and resolves the default tenant. Prints the reason
 * on stderr and returns -1 on failure. */
int scimctl_open(struct scimctl *c);
/* --db mode: makes the existing tenant `name` the one commands act on (c->tenant). Prints why
 * and returns -1 when it does not exist. Needs an open store. */
int scimctl_db_select_tenant(struct scimctl *c, const char *name);
/* --db mode `tenant create NAME` / `tenant list`: print like their --url counterparts. */
int scimctl_tenant_db_create(struct scimctl *c, const char *name, int as_json);
int scimctl_tenant_db_list(struct scimctl *c, int as_json);
/* Closes what scimctl_open opened. */
void scimctl_close(struct scimctl *c);

/* Prints "scimctl: <message>" on stderr. */
void scimctl_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* `scimctl token ...`: argv[0] is "token". */
int scimctl_token(struct scimctl *c, int argc, char **argv);
/* `scimctl db ...`: argv[0] is "db". */
int scimctl_db(struct scimctl *c, int argc, char **argv);

/* `scimctl import ...`: argv[0] is "import". */
int scimctl_import(struct scimctl *c, int argc, char **argv);
/* `scimctl tenant ...`, `settings ...`, `user ...`, `group ...`: argv[0] is the group name. */
int scimctl_tenant(struct scimctl *c, int argc, char **argv);
int scimctl_settings(struct scimctl *c, int argc, char **argv);
int scimctl_user(struct scimctl *c, int argc, char **argv);
int scimctl_group(struct scimctl *c, int argc, char **argv);
/* `scimctl log ...` (log.c): the provisioning log; argv[0] is "log". */
int scimctl_log(struct scimctl *c, int argc, char **argv);
/* `scimctl webhook ...` (webhook.c) and `scimctl events` (events.c): argv[0] is the name. */
int scimctl_webhook(struct scimctl *c, int argc, char **argv);
int scimctl_events(struct scimctl *c, int argc, char **argv);

/* True when `a` is -h or --help. */
int scimctl_is_help(const char *a);

/* --- cli.c: options and output ------------------------------------------------------- */

/* One option a command accepts: "--name" with a value, or a flag (has_value 0). */
struct scimctl_opt {
    const char *name;
    int has_value;
};

/* Parses argv[start..argc) against `opts` (NULL-name terminated): values[k] receives the
 * value of opts[k] ("1" for a flag that is present, else left untouched); the other
 * arguments go to pos[] (at most max_pos). "--opt VALUE" and "--opt=VALUE" are accepted.
 * Returns SCIMCTL_OK, or SCIMCTL_USAGE after printing why (prefixed with `what`). */
int scimctl_parse(const char *what, int argc, char **argv, int start,
                  const struct scimctl_opt *opts, const char **values, const char **pos,
                  int max_pos, int *n_pos);

/* An aligned text table: the first row is the header. */
struct scimctl_table {
    size_t cols;
    size_t rows;
    size_t cap;
    char **cells; /* rows * cols strings, owned */
};

/* Starts a table with `cols` columns and its header row (NULL: none). Returns 0 or -1 (out of
 * memory). */
int scimctl_table_init(struct scimctl_table *t, size_t cols, const char *const *header);
/* Appends a row of `cols` cells (NULL prints "-"). Returns 0 or -1 (out of memory). */
int scimctl_table_add(struct scimctl_table *t, const char *const *row);
/* Prints the table with columns padded to their widest cell. */
void scimctl_table_print(const struct scimctl_table *t, FILE *f);
void scimctl_table_free(struct scimctl_table *t);

/* The text of a JSON value for a table cell, into buf: strings as is, true/false, numbers,
 * "-" for null or absent, arrays of strings joined with spaces, other values as compact JSON. */
const char *scimctl_text(const json_t *v, char *buf, size_t n);

/* Prints the members `keys` of `o` as aligned "key  value" lines. */
void scimctl_print_fields(const json_t *o, const char *const *keys, size_t n);
/* Appends "?name=value" or "&name=value" (value percent-encoded) to the malloc'd string q,
 * returning the new string (q is freed) or NULL on out of memory (also when q is NULL). A NULL
 * value returns q unchanged. */
char *scimctl_query_add(char *q, const char *name, const char *value);
/* prefix + percent-encoded id + suffix, malloc'd (NULL on out of memory). */
char *scimctl_path_id(const char *prefix, const char *id, const char *suffix);

/* Prints a raw response body (--json) followed by a newline when it lacks one. Returns an
 * exit status. */
int scimctl_print_raw(const char *raw);

/* Reads a whole file ("-" = standard input) into a malloc'd NUL-terminated string; NULL after
 * printing why. */
char *scimctl_read_file(const char *path);

/* --- http.c: the admin API client ------------------------------------------------------ */

/* Sends one request to the admin API: `path` starts with "/admin/v1/", `body` (borrowed) may
 * be NULL. On a 2xx answer returns 0 with *out (when out is not NULL) the parsed body (NULL
 * when empty) and *raw (when raw is not NULL) the body text, both owned by the caller.
 * Otherwise prints the API's error message on stderr and returns -1; *status (when not NULL)
 * receives the HTTP status (0: no answer). The token is never printed. */
int scimctl_http(struct scimctl *c, const char *method, const char *path, const json_t *body,
                 json_t **out, char **raw, long *status);
/* As scimctl_http, but prints nothing on failure. */
int scimctl_http_quiet(struct scimctl *c, const char *method, const char *path,
                       const json_t *body, json_t **out, char **raw, long *status);
/* Percent-encodes a path segment or query value; malloc'd, NULL on out of memory. */
char *scimctl_escape(const char *s);
/* Frees the client's resources and wipes the token (called once by main). */
void scimctl_http_cleanup(struct scimctl *c);

/* The tenant an --url command acts on: `given` (--tenant) when not NULL, else the token's own
 * tenant (asked to the server). Writes it into out. Returns 0, or -1 after printing why. */
int scimctl_resolve_tenant(struct scimctl *c, const char *given, char *out, size_t n);

/* Sends a request on `/admin/v1/tenants/{tenant}{suffix}` and prints the answer: raw with
 * `as_json`, else through `show` (may be NULL: nothing is printed). Returns an exit status. */
int scimctl_tenant_call(struct scimctl *c, const char *tenant, const char *method,
                        const char *suffix, const json_t *body, int as_json,
                        void (*show)(const json_t *));

#endif
