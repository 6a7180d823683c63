/* The database a store unit test runs on: SQLite in memory by default, or a fresh PostgreSQL
 * database (scimd_test_<random>, created through the admin URL SCIMD_TEST_PG_URL with psql)
 * when SCIMD_TEST_BACKEND=postgresql. Header-only: included by one test file each. */
#ifndef SCIMD_TESTS_UNIT_TESTDB_H
#define SCIMD_TESTS_UNIT_TESTDB_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool testdb_pg(void)
{
    const char *b = getenv("SCIMD_TEST_BACKEND");
    return b && strcmp(b, "postgresql") == 0;
}

static int testdb_psql(const char *sql)
{
    const char *admin = getenv("SCIMD_TEST_PG_URL");
    char cmd[1024];
    if (!admin || strchr(admin, '\'') || (size_t)snprintf(cmd, sizeof(cmd),
                                                          "psql -X -q -v ON_ERROR_STOP=1 -d '%s' -c '%s' >/dev/null",
                                                          admin, sql) >= sizeof(cmd))
        return -1;
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh PostgreSQL database: its URI into uri[urilen], its name into name[64]. */
static int testdb_create(char *uri, size_t urilen, char name[64])
{
    static unsigned seq;
    const char *admin = getenv("SCIMD_TEST_PG_URL");
    FILE *f = fopen("/dev/urandom", "rb");
    unsigned r = 0;
    if (!admin || !f || fread(&r, sizeof(r), 1, f) != 1) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    snprintf(name, 64, "scimd_test_%08x%04x", r, ++seq & 0xffffu);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    if (testdb_psql(sql) != 0)
        return -1;
    const char *host = strstr(admin, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    size_t prefix = path ? (size_t)(path - admin) : strlen(admin);
    snprintf(uri, urilen, "%.*s/%s", (int)prefix, admin, name);
    return 0;
}

static void testdb_drop(const char *name)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    testdb_psql(sql);
}

#endif
