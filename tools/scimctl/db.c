/* scimctl db: schema migration. */
#include "scimctl.h"

#include <stdio.h>
#include <string.h>

static void help(void)
{
    fputs("NAME\n"
          "    scimctl db - database maintenance\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl [--db URI] db migrate\n"
          "\n"
          "DESCRIPTION\n"
          "    migrate\n"
          "        Create the database if it does not exist and apply every pending schema\n"
          "        migration, then report the backend. Running it again is harmless. scimd\n"
          "        and the other scimctl commands migrate on open too; this command is for\n"
          "        doing it ahead of a deployment.\n"
          "\n"
          "OPTIONS\n"
          "    --db URI\n"
          "        The database (a file path or sqlite:PATH); default SCIMD_DB, else\n"
          "        " SCIMCTL_DEFAULT_DB ". db does not work with --url.\n"
          "\n"
          "EXIT STATUS\n"
          "    0 success, 1 the database could not be opened or migrated, 2 usage.\n"
          "\n"
          "EXAMPLES\n"
          "    scimctl --db /var/lib/scimd/scimd.db db migrate\n",
          stdout);
}

int scimctl_db(struct scimctl *c, int argc, char **argv)
{
    if (argc < 2) {
        scimctl_errorf("db: missing subcommand (migrate)");
        return SCIMCTL_USAGE;
    }
    if (scimctl_is_help(argv[1]) || (argc > 2 && scimctl_is_help(argv[2]))) {
        help();
        return SCIMCTL_OK;
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
    printf("database %s is up to date (%s)\n", c->db, scim_store_backend(c->st));
    scimctl_close(c);
    return SCIMCTL_OK;
}
