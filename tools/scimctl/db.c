/* scimctl db: schema migration, and moving a whole directory between databases (export to /
 * import from JSON Lines, store.h scim_store_export / scim_store_import). */
#include "scimctl.h"
#include "common/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    fputs("NAME\n"
          "    scimctl db - database maintenance\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl [--db URI] db migrate\n"
          "    scimctl [--db URI] db export [--output FILE]\n"
          "    scimctl [--db URI] db import FILE\n"
          "\n"
          "DESCRIPTION\n"
          "    migrate\n"
          "        Create the database if it does not exist and apply every pending schema\n"
          "        migration, then report the backend. Running it again is harmless. scimd\n"
          "        and the other scimctl commands migrate on open too; this command is for\n"
          "        doing it ahead of a deployment.\n"
          "\n"
          "    export\n"
          "        Write the whole directory as JSON Lines (standard output, or FILE with\n"
          "        --output): a header line, then one line per tenant (with its settings),\n"
          "        token (its hash only), user, group and membership (with its origin), read\n"
          "        from one snapshot while scimd keeps running. Ids, times, versions and\n"
          "        password hashes are kept. The provisioning log, the change feed, webhooks\n"
          "        and the cursor key are not exported.\n"
          "\n"
          "    import FILE\n"
          "        Load an export (FILE, or - for standard input) into the database given with\n"
          "        --db, of either backend, in one transaction. The database must have no\n"
          "        users, groups, tokens or webhooks (a new one); stop scimd while importing.\n"
          "\n"
          "OPTIONS\n"
          "    --db URI\n"
          "        The database (a file path, sqlite:PATH or a postgresql:// URI); default\n"
          "        SCIMD_DB, else\n"
          "        " SCIMCTL_DEFAULT_DB ". db does not work with --url.\n"
          "\n"
          "EXIT STATUS\n"
          "    0 success, 1 the database could not be opened or migrated, 2 usage.\n"
          "\n"
          "EXAMPLES\n"
          "    scimctl --db /var/lib/scimd/scimd.db db migrate\n"
          "    scimctl --db /var/lib/scimd/scimd.db db export --output scimd.jsonl\n"
          "    scimctl --db postgresql://scimd@db/scimd db import scimd.jsonl\n",
          stdout);
}

#define EXPORT_FORMAT "scimd-export"

static int write_record(void *ctx, json_t *rec, struct scim_err *err)
{
    /* sorted keys: the same directory exports to the same bytes on either backend */
    if (json_dumpf(rec, ctx, JSON_COMPACT | JSON_SORT_KEYS) < 0 || fputc('\n', ctx) == EOF)
        return scim_err_set(err, 500, NULL, "cannot write the export: %s", strerror(errno));
    return 0;
}

static int db_export(struct scimctl *c, const char *output)
{
    struct scim_err err;
    scim_err_clear(&err);
    FILE *f = output ? fopen(output, "w") : stdout;
    int rc = SCIMCTL_ERROR;
    if (!f) {
        scimctl_errorf("cannot create %s: %s", output, strerror(errno));
        return SCIMCTL_ERROR;
    }
    if (scimctl_open(c) != 0)
        goto out;
    json_t *head = json_pack("{s:s, s:i, s:s}", "format", EXPORT_FORMAT, "version", SCIM_STORE_EXPORT_VERSION,
                             "backend", scim_store_backend(c->st));
    if (!head) {
        scim_err_nomem(&err);
    } else if (write_record(f, head, &err) == 0 && scim_store_export(c->st, write_record, f, &err) == 0 &&
               fflush(f) == 0) {
        rc = SCIMCTL_OK;
    } else if (!err.detail[0]) {
        scim_err_set(&err, 500, NULL, "cannot write the export: %s", strerror(errno));
    }
    json_decref(head);
    if (rc != SCIMCTL_OK)
        scimctl_errorf("export failed: %s", err.detail);
out:
    scimctl_close(c);
    if (output && fclose(f) != 0 && rc == SCIMCTL_OK) {
        scimctl_errorf("cannot write %s: %s", output, strerror(errno));
        rc = SCIMCTL_ERROR;
    }
    if (output && rc != SCIMCTL_OK)
        remove(output); /* no half export left behind */
    return rc;
}

static int db_import(struct scimctl *c, const char *input)
{
    struct scim_err err;
    char *text = scimctl_read_file(input);
    json_t *records = json_array();
    int rc = SCIMCTL_ERROR, line = 0;
    size_t counts[4] = {0};
    static const char *const types[4] = {"tenant", "token", "resource", "member"};
    if (!text || !records)
        goto out;
    for (char *p = text, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
        json_error_t je;
        nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        line++;
        if (!*p)
            continue;
        json_t *rec = json_loads(p, 0, &je);
        if (!json_is_object(rec)) {
            scimctl_errorf("%s:%d: not a JSON object (%s)", input, line, je.text);
            json_decref(rec);
            goto out;
        }
        if (line == 1) {
            const char *fmt = json_string_value(json_object_get(rec, "format"));
            json_int_t ver = json_integer_value(json_object_get(rec, "version"));
            bool ok = fmt && strcmp(fmt, EXPORT_FORMAT) == 0 && ver == SCIM_STORE_EXPORT_VERSION;
            json_decref(rec);
            if (!ok) {
                scimctl_errorf("%s: not a scimd export of version %d (scimctl db export)", input,
                               SCIM_STORE_EXPORT_VERSION);
                goto out;
            }
            continue;
        }
        const char *type = json_string_value(json_object_get(rec, "type"));
        for (int k = 0; type && k < 4; k++)
            counts[k] += strcmp(type, types[k]) == 0;
        if (json_array_append_new(records, rec) < 0)
            goto out;
    }
    if (line == 0) {
        scimctl_errorf("%s: empty file", input);
        goto out;
    }
    if (scimctl_open(c) != 0)
        goto out;
    if (scim_store_import(c->st, records, &err) != 0) {
        scimctl_errorf("import failed: %s", err.detail);
        scimctl_close(c);
        goto out;
    }
    printf("imported %zu tenants, %zu tokens, %zu users and groups, %zu memberships into %s (%s)\n", counts[0],
           counts[1], counts[2], counts[3], c->db, scim_store_backend(c->st));
    scimctl_close(c);
    rc = SCIMCTL_OK;
out:
    free(text);
    json_decref(records);
    return rc;
}

int scimctl_db(struct scimctl *c, int argc, char **argv)
{
    if (argc < 2) {
        scimctl_errorf("db: missing subcommand (migrate, export, import)");
        return SCIMCTL_USAGE;
    }
    if (scimctl_is_help(argv[1]) || (argc > 2 && scimctl_is_help(argv[2]))) {
        help();
        return SCIMCTL_OK;
    }
    if (strcmp(argv[1], "export") == 0) {
        static const struct scimctl_opt opts[] = {{"--output", 1}, {NULL, 0}};
        const char *values[1] = {NULL}, *pos[1];
        int n_pos = 0;
        int prc = scimctl_parse("db export", argc, argv, 2, opts, values, pos, 0, &n_pos);
        return prc != SCIMCTL_OK ? prc : db_export(c, values[0]);
    }
    if (strcmp(argv[1], "import") == 0) {
        if (argc != 3) {
            scimctl_errorf("db import: expected one FILE (or - for standard input)");
            return SCIMCTL_USAGE;
        }
        return db_import(c, argv[2]);
    }
    if (strcmp(argv[1], "migrate") != 0) {
        scimctl_errorf("db: unknown subcommand: %s", argv[1]);
        return SCIMCTL_USAGE;
    }
    if (argc > 2) {
        scimctl_errorf("db migrate: unexpected argument: %s", argv[2]);
        return SCIMCTL_USAGE;
    }
    if (scimctl_open(c) != 0)
        return SCIMCTL_ERROR;
    char shown[512];
    scim_redact_uri(c->db, shown, sizeof shown);
    printf("database %s is up to date (%s)\n", shown, scim_store_backend(c->st));
    scimctl_close(c);
    return SCIMCTL_OK;
}
