/* scimctl entry point: global options, help, dispatch to the command groups. */
#include "scimctl.h"

#include "common/err.h"
#include "common/log.h"
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
          "       scimctl [--db URI] db migrate\n"
          "       scimctl [--db URI] import [--batch N] FILE.jsonl|-\n"
          "       scimctl --help | --version\n",
          f);
}

static void help(void)
{
    fputs("NAME\n"
          "    scimctl - administer a scimd server's database\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl [--db URI] token create --name NAME [--scopes SCOPES] [--expires DAYS]\n"
          "    scimctl [--db URI] token list [--json]\n"
          "    scimctl [--db URI] token revoke NAME\n"
          "    scimctl [--db URI] db migrate\n"
          "    scimctl [--db URI] import [--batch N] FILE.jsonl|-\n"
          "    scimctl --help | --version\n"
          "\n"
          "DESCRIPTION\n"
          "    scimctl works directly on the database that scimd(8) serves; it can run while\n"
          "    scimd is running. It manages the API tokens identity providers use to call the\n"
          "    server, and migrates the database schema. The database is created and migrated\n"
          "    on first use.\n"
          "\n"
          "COMMANDS\n"
          "    token create --name NAME [--scopes SCOPES] [--expires DAYS]\n"
          "        Create a token and print it, alone, on standard output. It is shown once.\n"
          "    token list [--json]\n"
          "        List the live tokens (never the secrets).\n"
          "    token revoke NAME\n"
          "        Revoke the live token NAME.\n"
          "    db migrate\n"
          "        Create the database or bring its schema up to date.\n"
          "    import [--batch N] FILE.jsonl|-\n"
          "        Load Users and Groups from JSON Lines, one resource per line, in large\n"
          "        transactions (migrations, benchmarks).\n"
          "\n"
          "    \"scimctl COMMAND --help\" describes each command in detail.\n"
          "\n"
          "OPTIONS\n"
          "    --db URI\n"
          "        The database: a file path or sqlite:PATH. Environment: SCIMD_DB.\n"
          "        Default: " SCIMCTL_DEFAULT_DB ".\n"
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
        scimctl_errorf("cannot open database %s: %s%s%s", c->db, err.detail,
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

int main(int argc, char **argv)
{
    struct scimctl c = {0};
    const char *env = getenv("SCIMD_DB");
    const char *ext_env = getenv("SCIMD_SCHEMA_EXTENSIONS");
    char **args;
    int n = 0, rc;

    c.db = env && *env ? env : SCIMCTL_DEFAULT_DB;
    c.schema_extensions = ext_env && *ext_env ? ext_env : NULL;
    /* Only errors reach the terminal: the store's informational lines would mix with the
     * output scripts read. */
    scim_log_set_level(SCIM_LOG_WARN);

    /* --db may appear anywhere; collect the other arguments in order. */
    args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) {
        scimctl_errorf("out of memory");
        return SCIMCTL_ERROR;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0) {
            if (i + 1 >= argc) {
                scimctl_errorf("--db needs a value");
                free(args);
                return SCIMCTL_USAGE;
            }
            c.db = argv[++i];
        } else if (strncmp(argv[i], "--db=", 5) == 0) {
            c.db = argv[i] + 5;
        } else if (strcmp(argv[i], "--schema-extensions") == 0) {
            if (i + 1 >= argc) {
                scimctl_errorf("--schema-extensions needs a value");
                free(args);
                return SCIMCTL_USAGE;
            }
            c.schema_extensions = argv[++i];
        } else if (strncmp(argv[i], "--schema-extensions=", 20) == 0) {
            c.schema_extensions = argv[i] + 20;
        } else {
            args[n++] = argv[i];
        }
    }
    if (!*c.db) {
        scimctl_errorf("--db is empty");
        rc = SCIMCTL_USAGE;
    } else if (c.schema_extensions && !*c.schema_extensions) {
        scimctl_errorf("--schema-extensions is empty");
        rc = SCIMCTL_USAGE;
    } else if (n == 0) {
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
    } else if (strcmp(args[0], "db") == 0) {
        rc = scimctl_db(&c, n, args);
    } else if (strcmp(args[0], "import") == 0) {
        rc = scimctl_import(&c, n, args);
    } else {
        scimctl_errorf("unknown command: %s", args[0]);
        usage(stderr);
        rc = SCIMCTL_USAGE;
    }
    free(args);
    return rc;
}
