/* scimctl tenant create/list and --tenant on the database (--db mode), through the store's
 * tenant functions: how the first tenant and its admin token are made before scimd runs. */
#include "scimctl.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int scimctl_db_select_tenant(struct scimctl *c, const char *name)
{
    struct scim_tenant t;
    struct scim_err err;
    scim_err_clear(&err);
    memset(&t, 0, sizeof t);
    if (scim_store_tenant_get(c->st, 0, name, &t, &err) != 0) {
        if (err.status == 404)
            scimctl_errorf("no tenant named \"%s\" (create it with: scimctl tenant create %s)",
                           name, name);
        else
            scimctl_errorf("cannot read tenant \"%s\": %s", name, err.detail);
        return -1;
    }
    c->tenant = t.id;
    scim_tenant_release(&t);
    return 0;
}

static int print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!s) {
        scimctl_errorf("out of memory");
        return SCIMCTL_ERROR;
    }
    printf("%s\n", s);
    free(s);
    return fflush(stdout) == 0 ? SCIMCTL_OK : SCIMCTL_ERROR;
}

int scimctl_tenant_db_create(struct scimctl *c, const char *name, int as_json)
{
    struct scim_tenant t;
    struct scim_err err;
    int rc = SCIMCTL_ERROR;

    if (!scim_tenant_name_valid(name)) {
        scimctl_errorf("tenant create: invalid name \"%s\" (1-63 characters from a-z, 0-9 and "
                       "\"-\", not starting with \"-\")",
                       name);
        return SCIMCTL_USAGE;
    }
    if (scimctl_open(c) != 0)
        return SCIMCTL_ERROR;
    scim_err_clear(&err);
    memset(&t, 0, sizeof t);
    if (scim_store_tenant_create(c->st, name, &t, &err) != 0) {
        if (err.status == 409)
            scimctl_errorf("tenant create: a tenant named \"%s\" already exists", name);
        else
            scimctl_errorf("tenant create: %s", err.detail);
        goto out;
    }
    if (as_json) {
        char created[SCIM_DATETIME_LEN];
        json_t *j;
        scim_datetime_format(t.created_us, created);
        j = json_pack("{s:s,s:s,s:b}", "name", t.name, "created", created, "disabled",
                      t.disabled);
        rc = j ? print_json(j) : SCIMCTL_ERROR;
        json_decref(j);
    } else {
        printf("%s\n", t.name);
        rc = fflush(stdout) == 0 ? SCIMCTL_OK : SCIMCTL_ERROR;
    }
    scim_tenant_release(&t);
out:
    scimctl_close(c);
    return rc;
}

int scimctl_tenant_db_list(struct scimctl *c, int as_json)
{
    json_t *arr = NULL, *e;
    struct scim_err err;
    int rc = SCIMCTL_ERROR;
    size_t i;

    if (scimctl_open(c) != 0)
        return SCIMCTL_ERROR;
    scim_err_clear(&err);
    if (scim_store_tenant_list(c->st, &arr, &err) != 0) {
        scimctl_errorf("tenant list: %s", err.detail);
        goto out;
    }
    if (as_json) {
        rc = print_json(arr);
        goto out;
    }
    {
        static const char *const head[] = {"NAME", "ID"};
        struct scimctl_table t;
        if (scimctl_table_init(&t, 2, head) != 0) {
            scimctl_errorf("out of memory");
            goto out;
        }
        json_array_foreach(arr, i, e) {
            char b[2][128];
            const char *row[2] = {scimctl_text(json_object_get(e, "name"), b[0], sizeof b[0]),
                                  scimctl_text(json_object_get(e, "id"), b[1], sizeof b[1])};
            if (scimctl_table_add(&t, row) != 0)
                break;
        }
        scimctl_table_print(&t, stdout);
        scimctl_table_free(&t);
        rc = fflush(stdout) == 0 ? SCIMCTL_OK : SCIMCTL_ERROR;
    }
out:
    json_decref(arr);
    scimctl_close(c);
    return rc;
}
