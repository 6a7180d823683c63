/* Fuzzes the PATCH engine: the input is a PatchOp body, parsed with jansson as scimd does
 * (JSON_REJECT_DUPLICATES); scim_patch_needs_members is asked about it, and scim_patch_apply runs
 * it on a copy of a fixed User (full RFC 7643 example with the enterprise extension) and of a
 * fixed Group with loaded members, with scimd's default limits. A rejected body must be a 4xx;
 * an accepted one must leave a resource object and a list of changed attributes; the body itself
 * must stay unchanged. */
#include <jansson.h>
#include <stdio.h>

#include "common/err.h"
#include "fuzz.h"
#include "scim/patch.h"
#include "scim/resource.h"

static json_t *fixtures[SCIM_RT_COUNT];

static const char USER_JSON[] =
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\","
    "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"],"
    "\"id\":\"2819c223-7f76-453a-919d-413861904646\",\"externalId\":\"bjensen\","
    "\"userName\":\"bjensen@example.com\",\"displayName\":\"Babs Jensen\",\"active\":true,"
    "\"name\":{\"familyName\":\"Jensen\",\"givenName\":\"Barbara\"},\"title\":\"Tour Guide\","
    "\"emails\":[{\"value\":\"bjensen@example.com\",\"type\":\"work\",\"primary\":true},"
    "{\"value\":\"babs@jensen.org\",\"type\":\"home\"}],"
    "\"phoneNumbers\":[{\"value\":\"555-555-8377\",\"type\":\"work\"}],"
    "\"addresses\":[{\"type\":\"work\",\"streetAddress\":\"100 Universal City Plaza\"}],"
    "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{\"employeeNumber\":\"701984\","
    "\"department\":\"Tour Operations\",\"manager\":{\"value\":\"26118915\"}},"
    "\"meta\":{\"resourceType\":\"User\",\"created\":\"2010-01-23T04:56:22Z\","
    "\"lastModified\":\"2011-05-13T04:42:34Z\",\"version\":\"W/\\\"3\\\"\"}}";

static const char GROUP_JSON[] =
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
    "\"id\":\"e9e30dba-f08f-4109-8486-d5c6a331660a\",\"displayName\":\"Tour Guides\","
    "\"members\":[{\"value\":\"2819c223-7f76-453a-919d-413861904646\",\"display\":\"Babs\","
    "\"type\":\"User\"},{\"value\":\"902c246b\"}],"
    "\"meta\":{\"resourceType\":\"Group\",\"created\":\"2010-01-23T04:56:22Z\","
    "\"lastModified\":\"2011-05-13T04:42:34Z\",\"version\":\"W/\\\"1\\\"\"}}";

static void init(void)
{
    json_error_t jerr;
    if (fixtures[0])
        return;
    fixtures[SCIM_RT_USER] = json_loads(USER_JSON, 0, &jerr);
    fixtures[SCIM_RT_GROUP] = json_loads(GROUP_JSON, 0, &jerr);
    if (!fixtures[SCIM_RT_USER] || !fixtures[SCIM_RT_GROUP]) {
        fprintf(stderr, "fuzz_patch: bad fixture: %s\n", jerr.text);
        abort();
    }
}

static void fail(const char *what, const struct scim_err *err)
{
    fprintf(stderr, "fuzz_patch: %s: %d %s: %s\n", what, err->status,
            err->scim_type ? err->scim_type : "(null)", err->detail);
    abort();
}

static void apply(enum scim_rtype kind, json_t *body)
{
    const struct scim_registry *reg = fuzz_reg();
    const struct scim_resource_type *rt = scim_registry_rt(reg, kind);
    struct scim_patch_opts opts = {reg, rt, {8192, 100}, 1000};
    struct scim_member_change mc;
    struct scim_patch_result res;
    struct scim_err err;
    json_t *resource = json_deep_copy(fixtures[kind]);

    if (!resource)
        return;
    memset(&mc, 0, sizeof mc);
    memset(&res, 0, sizeof res);
    scim_err_clear(&err);
    if (scim_patch_apply(&opts, resource, body, kind == SCIM_RT_GROUP ? &mc : NULL, &res, &err)) {
        if (err.status < 400 || err.status >= 500)
            fail("scim_patch_apply", &err);
    } else if (!json_is_object(resource) || !json_is_array(res.changed)) {
        fprintf(stderr, "fuzz_patch: success without a resource object or a changed list\n");
        abort();
    }
    scim_member_change_release(&mc);
    scim_patch_result_release(&res);
    json_decref(resource);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *body, *copy;

    if (size > 65536)
        return 0;
    init();
    body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!body)
        return 0;
    copy = json_deep_copy(body);
    (void)scim_patch_needs_members(body);
    apply(SCIM_RT_USER, body);
    apply(SCIM_RT_GROUP, body);
    /* The body is borrowed: the engine must not change it (JSON ownership rule). */
    if (copy && !json_equal(copy, body)) {
        fprintf(stderr, "fuzz_patch: scim_patch_apply modified the PatchOp body\n");
        abort();
    }
    json_decref(copy);
    json_decref(body);
    return 0;
}
