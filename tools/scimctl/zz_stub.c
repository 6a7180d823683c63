/* Temporary: the store's tenant functions arrive with the admin API branch (dev-admin); until
 * it is merged, --db tenant commands report that they are unavailable. */
#include "scimctl.h"

int scimctl_db_select_tenant(struct scimctl *c, const char *name)
{
    (void)c;
    scimctl_errorf("--tenant %s: not available with --db in this build", name);
    return -1;
}

int scimctl_tenant_db_create(struct scimctl *c, const char *name, int as_json)
{
    (void)c;
    (void)as_json;
    scimctl_errorf("tenant create %s: not available with --db in this build", name);
    return SCIMCTL_ERROR;
}

int scimctl_tenant_db_list(struct scimctl *c, int as_json)
{
    (void)c;
    (void)as_json;
    scimctl_errorf("tenant list: not available with --db in this build");
    return SCIMCTL_ERROR;
}
