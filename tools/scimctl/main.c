/* scimctl entry point: global options, help, dispatch to the command groups. */
#include "scimctl.h"

#include "common/err.h"
#include "common/log.h"
#include "auth/token.h"
#include "common/util.h"
#include "scim/extconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fputs("usage: scimctl [--db URI] token create --name NAME [--scopes SCOPES] [--expires DAYS]\n"
          "       scimctl [--db URI] token list [--json]\n"
          "       scimctl [--db URI] token revoke NAME\n"
          "       scimctl [--db URI] tenant create NAME | tenant list\n"
          "       scimctl [--db URI] db migrate | db export [--output FILE] | db import FILE\n"
          "       scimctl [--db URI] import [--batch N] FILE.jsonl|-\n"
          "       scimctl --url URL (--token TOKEN | --token-file FILE) COMMAND ...\n"
          "           COMMAND: tenant, token, settings, user, group, log, webhook, events\n"
          "       scimctl --help | --version\n",
          f);
}

static void help(void)
{
    fputs("NAME\n"
          "    scimctl - administer a scimd server\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl [--db URI] token create [--tenant T] --name NAME [--scopes SCOPES]\n"
          "                                    [--expires DAYS]\n"
          "    scimctl [--db URI] token list [--tenant T] [--json]\n"
          "    scimctl [--db URI] token revoke [--tenant T] NAME\n"
          "    scimctl [--db URI] tenant create NAME | tenant list [--json]\n"
          "    scimctl [--db URI] db migrate | db export [--output FILE] | db import FILE\n"
          "    scimctl [--db URI] import [--batch N] FILE.jsonl|-\n"
          "    scimctl --url URL [--token TOKEN | --token-file FILE] COMMAND ...\n"
          "    scimctl --help | --version\n"
          "\n"
          "DESCRIPTION\n"
          "    scimctl has two modes.\n"
          "\n"
          "    With --url (or SCIMCTL_URL) it is a client of the admin API of a running scimd\n"
          "    (/admin/v1, docs/admin-api.md), authenticated by a token with the admin scope:\n"
          "    it manages tenants, tokens, policies (settings), users and groups.\n"
          "\n"
          "    Otherwise it works directly on the database that scimd(8) serves (it can run\n"
          "    while scimd is running): it creates the first tenants and their tokens, and\n"
          "    migrates the database schema. The database is created and migrated on first\n"
          "    use.\n"
          "\n"
          "COMMANDS\n"
          "    token create --name NAME [--scopes SCOPES] [--expires DAYS]\n"
          "        Create a token and print it, alone, on standard output. It is shown once.\n"
          "    token list [--json]\n"
          "        List the live tokens (never the secrets).\n"
          "    token revoke NAME\n"
          "        Revoke the live token NAME.\n"
          "    db migrate | db export [--output FILE] | db import FILE\n"
          "        Create the database or bring its schema up to date; move a whole\n"
          "        directory between databases (SQLite and PostgreSQL) as JSON Lines.\n"
          "    import [--batch N] FILE.jsonl|-\n"
          "        Load Users and Groups from JSON Lines, one resource per line, in large\n"
          "        transactions (migrations, benchmarks).\n"
          "    tenant list|create|show|disable|enable|delete\n"
          "        Manage tenants (create and list also work with --db).\n"
          "    settings show|set KEY=VALUE...\n"
          "        Show or change the policies of a tenant (--url only).\n"
          "    user list|show|sign-in|create|delete\n"
          "        The users of a tenant as the application sees them (--url only).\n"
          "    group list|show|create|delete|add-member|remove-member\n"
          "        The groups of a tenant (--url only).\n"
          "    log [--status 4xx] [--user U] [--follow] [--json | --csv] ...\n"
          "        The provisioning log of a tenant (--url only).\n"
          "    webhook list|create|show|enable|disable|delete|deliveries\n"
          "        Webhooks: the change feed pushed to a URL (--url only).\n"
          "    events [--after N] [--follow]\n"
          "        Read the change feed (--url only).\n"
          "\n"
          "    \"scimctl COMMAND --help\" describes each command in detail.\n"
          "\n"
          "OPTIONS\n"
          "    --db URI\n"
          "        The database: a file path or sqlite:PATH. Environment: SCIMD_DB.\n"
          "        Default: " SCIMCTL_DEFAULT_DB ".\n"
          "    --url URL\n"
          "        The scimd server, e.g. http://127.0.0.1:8080: use its admin API instead\n"
          "        of the database. Environment: SCIMCTL_URL (ignored when --db is given).\n"
          "    --token TOKEN\n"
          "        The admin token for --url. Prefer --token-file or SCIMCTL_TOKEN: a token\n"
          "        on the command line is visible in ps(1) and the shell history.\n"
          "    --token-file FILE\n"
          "        Read the admin token from the first line of FILE (\"-\": standard input).\n"
          "    --schema-extensions FILE\n"
          "        The custom extension schemas scimd is started with (docs/extensions.md),\n"
          "        so that both agree on the attributes. Environment: SCIMD_SCHEMA_EXTENSIONS.\n"
          "        Default: none.\n"
          "    -h, --help\n"
          "        Print this help and exit.\n"
          "    --version\n"
          "        Print the version and exit.\n"
          "\n"
          "ENVIRONMENT\n"
          "    SCIMD_DB\n"
          "        The database, as for scimd; --db takes precedence.\n"
          "    SCIMD_SCHEMA_EXTENSIONS\n"
          "        The extension schema file, as for scimd; --schema-extensions takes\n"
          "        precedence.\n"
          "    SCIMCTL_URL\n"
          "        The server, as --url.\n"
          "    SCIMCTL_TOKEN\n"
          "        The admin token, as --token.\n"
          "\n"
          "EXIT STATUS\n"
          "    0   success\n"
          "    1   error (the message is on standard error)\n"
          "    2   invalid command line\n"
          "\n"
          "EXAMPLES\n"
          "    TOKEN=$(scimctl token create --name entra --expires 365)\n"
          "    scimctl --db /var/lib/scimd/scimd.db token list\n"
          "    scimctl token revoke entra\n"
          "    scimctl --db /var/lib/scimd/scimd.db tenant create acme\n"
          "    export SCIMCTL_URL=http://127.0.0.1:8080 SCIMCTL_TOKEN=scimd_...\n"
          "    scimctl tenant list\n"
          "    scimctl settings set --tenant acme allow_manual_updates=true\n"
          "\n"
          "SEE ALSO\n"
          "    scimd(8)\n",
          stdout);
}

void scimctl_errorf(const char *fmt, ...)
{
    va_list ap;
    fputs("scimctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int scimctl_is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* Creates the directory holding a database file when it is missing (one level), as scimd does. */
static void ensure_db_dir(const char *uri)
{
    char dir[4096];
    const char *path = uri, *slash;
    if (strncmp(uri, "sqlite:", 7) == 0)
        path = uri + 7;
    else if (strstr(uri, "://"))
        return;
    slash = strrchr(path, '/');
    if (!slash || slash == path || (size_t)(slash - path) >= sizeof dir)
        return;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        scimctl_errorf("warning: cannot create %s: %s", dir, strerror(errno));
}

int scimctl_open(struct scimctl *c)
{
    struct scim_err err;
    struct scim_store_opts opts;

    scim_err_clear(&err);
    c->reg = scim_registry_new();
    if (!c->reg) {
        scimctl_errorf("out of memory");
        return -1;
    }
    if (c->schema_extensions &&
        scim_extconfig_load_file(c->reg, c->schema_extensions, &err) != 0) {
        /* The detail names the file and the JSON path of the problem. */
        scimctl_errorf("invalid --schema-extensions: %s", err.detail);
        scimctl_close(c);
        return -1;
    }
    ensure_db_dir(c->db);
    opts = (struct scim_store_opts){.reg = c->reg, .pool_size = 1};
    if (scim_store_open(c->db, &opts, &c->st, &err) != 0) {
        char shown[512];
        scim_redact_uri(c->db, shown, sizeof shown);
        scimctl_errorf("cannot open database %s: %s%s%s", shown, err.detail,
                       err.log[0] ? ": " : "", err.log);
        scimctl_close(c);
        return -1;
    }
    if (scim_store_tenant_default(c->st, &c->tenant, &err) != 0) {
        scimctl_errorf("cannot read the default tenant: %s", err.detail);
        scimctl_close(c);
        return -1;
    }
    return 0;
}

void scimctl_close(struct scimctl *c)
{
    scim_store_free(&c->st);
    scim_registry_free(&c->reg);
}

/* Reads the token from the first line of a file ("-": standard input), without the line end
 * and surrounding blanks. */
static char *read_token_file(const char *path)
{
    char *all = scimctl_read_file(path), *tok;
    size_t start = 0, end;
    if (!all)
        return NULL;
    while (all[start] == ' ' || all[start] == '\t')
        start++;
    end = start + strcspn(all + start, "\r\n");
    while (end > start && (all[end - 1] == ' ' || all[end - 1] == '\t'))
        end--;
    tok = scim_strndup(all + start, end - start);
    scim_wipe(all, strlen(all));
    free(all);
    if (!tok)
        scimctl_errorf("out of memory");
    return tok;
}

/* The server's root URL without a trailing slash; a base that ends with the SCIM path
 * ("http://host:port/scim/v2", as scimd prints it) is accepted too. */
static char *normalise_url(const char *url)
{
    char *u = scim_strdup(url);
    size_t n;
    if (!u)
        return NULL;
    n = strlen(u);
    while (n > 0 && u[n - 1] == '/')
        u[--n] = '\0';
    if (n >= 8 && strcmp(u + n - 8, "/scim/v2") == 0)
        u[n - 8] = '\0';
    return u;
}

static int wants_help(int n, char **args)
{
    for (int i = 0; i < n; i++)
        if (scimctl_is_help(args[i]))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    struct scimctl c = {0};
    const char *env = getenv("SCIMD_DB");
    const char *ext_env = getenv("SCIMD_SCHEMA_EXTENSIONS");
    const char *url = NULL, *token = NULL, *token_file = NULL;
    char *url_buf = NULL;
    char **args;
    int n = 0, rc;

    c.db = env && *env ? env : SCIMCTL_DEFAULT_DB;
    c.schema_extensions = ext_env && *ext_env ? ext_env : NULL;
    /* Only errors reach the terminal: the store's informational lines would mix with the
     * output scripts read. */
    scim_log_set_level(SCIM_LOG_WARN);

    /* Global options may appear anywhere; collect the other arguments in order. */
    args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) {
        scimctl_errorf("out of memory");
        return SCIMCTL_ERROR;
    }
    rc = -1;
    for (int i = 1; i < argc && rc < 0; i++) {
        static const char *const global[] = {"--db", "--schema-extensions", "--url", "--token",
                                             "--token-file"};
        const char *val = NULL;
        size_t g = 0;
        for (; g < sizeof global / sizeof global[0]; g++) {
            size_t len = strlen(global[g]);
            if (strcmp(argv[i], global[g]) == 0) {
                if (i + 1 >= argc) {
                    scimctl_errorf("%s needs a value", global[g]);
                    rc = SCIMCTL_USAGE;
                    break;
                }
                val = argv[++i];
                break;
            }
            if (strncmp(argv[i], global[g], len) == 0 && argv[i][len] == '=') {
                val = argv[i] + len + 1;
                break;
            }
        }
        if (rc >= 0)
            break;
        switch (g) {
        case 0:
            c.db = val;
            c.db_given = 1;
            break;
        case 1:
            c.schema_extensions = val;
            break;
        case 2:
            url = val;
            break;
        case 3:
            token = val;
            break;
        case 4:
            token_file = val;
            break;
        default:
            args[n++] = argv[i];
        }
    }
    if (rc >= 0)
        goto out;
    if (!url && !c.db_given) {
        const char *e = getenv("SCIMCTL_URL");
        url = e && *e ? e : NULL;
    }
    if (!*c.db) {
        scimctl_errorf("--db is empty");
        rc = SCIMCTL_USAGE;
        goto out;
    }
    if (c.schema_extensions && !*c.schema_extensions) {
        scimctl_errorf("--schema-extensions is empty");
        rc = SCIMCTL_USAGE;
        goto out;
    }
    if (url && c.db_given) {
        scimctl_errorf("--url and --db exclude each other");
        rc = SCIMCTL_USAGE;
        goto out;
    }
    if (url) {
        if (!*url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
            scimctl_errorf("--url must start with http:// or https://");
            rc = SCIMCTL_USAGE;
            goto out;
        }
        if (!(url_buf = normalise_url(url))) {
            scimctl_errorf("out of memory");
            rc = SCIMCTL_ERROR;
            goto out;
        }
        c.url = url_buf;
        if (token_file) {
            if (!(c.token = read_token_file(token_file))) {
                rc = SCIMCTL_ERROR;
                goto out;
            }
        } else {
            const char *e = getenv("SCIMCTL_TOKEN");
            if (!token)
                token = e && *e ? e : NULL;
            if (token && !(c.token = scim_strdup(token))) {
                scimctl_errorf("out of memory");
                rc = SCIMCTL_ERROR;
                goto out;
            }
        }
        if ((!c.token || !*c.token) && n > 0 && !wants_help(n, args) &&
            strcmp(args[0], "--version") != 0) {
            scimctl_errorf("--url needs a token: --token-file FILE, SCIMCTL_TOKEN or --token");
            rc = SCIMCTL_USAGE;
            goto out;
        }
    } else if (token || token_file) {
        scimctl_errorf("--token and --token-file need --url (or SCIMCTL_URL)");
        rc = SCIMCTL_USAGE;
        goto out;
    }

    if (n == 0) {
        usage(stderr);
        rc = SCIMCTL_USAGE;
    } else if (scimctl_is_help(args[0]) || strcmp(args[0], "help") == 0) {
        help();
        rc = SCIMCTL_OK;
    } else if (strcmp(args[0], "--version") == 0) {
        printf("scimctl %s\n", SCIMD_VERSION);
        rc = SCIMCTL_OK;
    } else if (strcmp(args[0], "token") == 0) {
        rc = scimctl_token(&c, n, args);
    } else if (strcmp(args[0], "tenant") == 0) {
        rc = scimctl_tenant(&c, n, args);
    } else if (strcmp(args[0], "settings") == 0) {
        rc = scimctl_settings(&c, n, args);
    } else if (strcmp(args[0], "user") == 0) {
        rc = scimctl_user(&c, n, args);
    } else if (strcmp(args[0], "group") == 0) {
        rc = scimctl_group(&c, n, args);
    } else if (strcmp(args[0], "log") == 0) {
        rc = scimctl_log(&c, n, args);
    } else if (strcmp(args[0], "webhook") == 0) {
        rc = scimctl_webhook(&c, n, args);
    } else if (strcmp(args[0], "events") == 0) {
        rc = scimctl_events(&c, n, args);
    } else if (strcmp(args[0], "db") == 0) {
        if (c.url && !wants_help(n, args)) {
            scimctl_errorf("db: works on the database; use --db instead of --url");
            rc = SCIMCTL_USAGE;
        } else {
            rc = scimctl_db(&c, n, args);
        }
    } else if (strcmp(args[0], "import") == 0) {
        if (c.url && !wants_help(n, args)) {
            scimctl_errorf("import: works on the database; use --db instead of --url");
            rc = SCIMCTL_USAGE;
        } else {
            rc = scimctl_import(&c, n, args);
        }
    } else {
        scimctl_errorf("unknown command: %s", args[0]);
        usage(stderr);
        rc = SCIMCTL_USAGE;
    }
out:
    scimctl_http_cleanup(&c);
    free(url_buf);
    free(args);
    return rc;
}
