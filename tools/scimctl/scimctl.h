/* scimctl: the admin command-line tool. One file per command group (token.c, db.c); main.c
 * parses the global options and dispatches. Every command returns a process exit status. */
#ifndef SCIMCTL_H
#define SCIMCTL_H

#include <stdint.h>

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
};

/* Opens (creating and migrating) the store and resolves the default tenant. Prints the reason
 * on stderr and returns -1 on failure. */
int scimctl_open(struct scimctl *c);
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

/* True when `a` is -h or --help. */
int scimctl_is_help(const char *a);

#endif
