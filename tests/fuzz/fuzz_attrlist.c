/* Fuzzes the attributes/excludedAttributes parameter parser (scim_attrlist_parse) for User and
 * Group, then uses the parsed list both ways: as `attributes` and as `excludedAttributes` in
 * scim_projection_includes and scim_project over a fixed, finished resource. The parser must never
 * fail on a malformed list (it skips bad entries) except for out of memory. */
#include <jansson.h>
#include <stdio.h>

#include "common/err.h"
#include "fuzz.h"
#include "scim/resource.h"

static json_t *docs[SCIM_RT_COUNT];

static const char USER_JSON[] =
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"u1\","
    "\"externalId\":\"x1\",\"userName\":\"bjensen\",\"displayName\":\"Babs\",\"active\":true,"
    "\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},"
    "\"emails\":[{\"value\":\"b@example.com\",\"type\":\"work\",\"primary\":true}],"
    "\"groups\":[{\"value\":\"g1\",\"display\":\"Admins\"}],"
    "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{\"employeeNumber\":\"7\","
    "\"manager\":{\"value\":\"u2\"}},"
    "\"meta\":{\"resourceType\":\"User\",\"created\":\"2024-01-01T00:00:00Z\","
    "\"lastModified\":\"2024-01-02T00:00:00Z\",\"version\":\"W/\\\"1\\\"\"}}";
static const char GROUP_JSON[] =
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"id\":\"g1\","
    "\"displayName\":\"Admins\",\"members\":[{\"value\":\"u1\",\"display\":\"Babs\"}],"
    "\"meta\":{\"resourceType\":\"Group\",\"created\":\"2024-01-01T00:00:00Z\","
    "\"lastModified\":\"2024-01-02T00:00:00Z\"}}";

static void init(void)
{
    json_error_t jerr;
    const struct scim_registry *reg = fuzz_reg();

    if (docs[0])
        return;
    docs[SCIM_RT_USER] = json_loads(USER_JSON, 0, &jerr);
    docs[SCIM_RT_GROUP] = json_loads(GROUP_JSON, 0, &jerr);
    if (!docs[SCIM_RT_USER] || !docs[SCIM_RT_GROUP] ||
        scim_resource_finish(scim_registry_rt(reg, SCIM_RT_USER), docs[SCIM_RT_USER],
                             "https://scim.example.com/scim/v2") ||
        scim_resource_finish(scim_registry_rt(reg, SCIM_RT_GROUP), docs[SCIM_RT_GROUP],
                             "https://scim.example.com/scim/v2"))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct scim_registry *reg = fuzz_reg();
    char *text;

    if (size > 16384)
        return 0;
    init();
    text = fuzz_cstr(data, size);
    if (!text)
        return 0;
    for (int k = 0; k < SCIM_RT_COUNT; k++) {
        const struct scim_resource_type *rt = scim_registry_rt(reg, (enum scim_rtype)k);
        struct scim_attrlist *l = NULL;
        struct scim_err err;
        uint32_t compat = 0;

        scim_err_clear(&err);
        if (scim_attrlist_parse(reg, rt, text, &l, &compat, &err)) {
            fprintf(stderr, "fuzz_attrlist: parse failed %d: %s\n", err.status, err.detail);
            abort(); /* only out of memory may fail, and libFuzzer does not make malloc fail */
        }
        (void)scim_projection_includes(rt, l, NULL, "members");
        (void)scim_projection_includes(rt, NULL, l, "groups");
        (void)scim_projection_includes(rt, l, l, "userName");
        json_decref(scim_project(rt, docs[k], l, NULL));
        json_decref(scim_project(rt, docs[k], NULL, l));
        json_decref(scim_project(rt, docs[k], l, l));
        scim_attrlist_free(l);
    }
    free(text);
    return 0;
}
