/* Fuzzes the filter parser (scim_filter_parse) with scimd's default limits, with and without the
 * schema registry, then renders each AST (scim_filter_to_sexp) and evaluates it
 * (scim_filter_match) against a fixed User, a fixed Group and one element of a multi-valued
 * complex attribute. Any input must give either an AST or a 400 invalidFilter with a position
 * inside the input; the harness aborts otherwise. */
#include <jansson.h>
#include <stdio.h>

#include "common/err.h"
#include "fuzz.h"
#include "scim/filter.h"

static json_t *user_doc, *group_doc;

static const char USER_JSON[] =
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\","
    "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"],"
    "\"id\":\"2819c223-7f76-453a-919d-413861904646\",\"externalId\":\"bjensen\","
    "\"userName\":\"bjensen@example.com\",\"displayName\":\"Babs Jensen\",\"active\":true,"
    "\"name\":{\"formatted\":\"Ms. Barbara J Jensen III\",\"familyName\":\"Jensen\","
    "\"givenName\":\"Barbara\"},\"title\":\"Tour Guide\",\"userType\":\"Employee\","
    "\"emails\":[{\"value\":\"bjensen@example.com\",\"type\":\"work\",\"primary\":true},"
    "{\"value\":\"babs@jensen.org\",\"type\":\"home\"}],"
    "\"phoneNumbers\":[{\"value\":\"555-555-8377\",\"type\":\"work\"}],"
    "\"addresses\":[{\"type\":\"work\",\"streetAddress\":\"100 Universal City Plaza\","
    "\"locality\":\"Hollywood\",\"region\":\"CA\",\"postalCode\":\"91608\",\"country\":\"USA\"}],"
    "\"x509Certificates\":[{\"value\":\"MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw\"}],"
    "\"groups\":[{\"value\":\"e9e30dba-f08f-4109-8486-d5c6a331660a\",\"display\":\"Tour Guides\"}],"
    "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{\"employeeNumber\":\"701984\","
    "\"costCenter\":\"4130\",\"department\":\"Tour Operations\","
    "\"manager\":{\"value\":\"26118915-6090-4610-87e4-49d8ca9f808d\",\"displayName\":\"John Smith\"}},"
    "\"meta\":{\"resourceType\":\"User\",\"created\":\"2010-01-23T04:56:22Z\","
    "\"lastModified\":\"2011-05-13T04:42:34.8617979-07:00\",\"version\":\"W/\\\"3694e05e9dff591\\\"\"}}";

static const char GROUP_JSON[] =
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
    "\"id\":\"e9e30dba-f08f-4109-8486-d5c6a331660a\",\"displayName\":\"Tour Guides\","
    "\"externalId\":\"tg\",\"members\":[{\"value\":\"2819c223-7f76-453a-919d-413861904646\","
    "\"display\":\"Babs Jensen\",\"type\":\"User\"},{\"value\":\"902c246b\"}],"
    "\"meta\":{\"resourceType\":\"Group\",\"created\":\"2010-01-23T04:56:22Z\","
    "\"lastModified\":\"2011-05-13T04:42:34Z\"}}";

static void init(void)
{
    json_error_t jerr;
    if (user_doc)
        return;
    user_doc = json_loads(USER_JSON, 0, &jerr);
    group_doc = json_loads(GROUP_JSON, 0, &jerr);
    if (!user_doc || !group_doc) {
        fprintf(stderr, "fuzz_filter: bad fixture: %s\n", jerr.text);
        abort();
    }
}

static void check(const char *text, const struct scim_registry *reg)
{
    const struct scim_filter_limits lim = {8192, 100};
    const struct scim_registry *r = fuzz_reg();
    const struct scim_resource_type *user = scim_registry_rt(r, SCIM_RT_USER);
    const struct scim_resource_type *group = scim_registry_rt(r, SCIM_RT_GROUP);
    const struct scim_attr *emails = scim_schema_attr(user->schema, "emails");
    struct scim_filter *f = NULL;
    struct scim_err err;

    scim_err_clear(&err);
    if (scim_filter_parse(text, &lim, reg, &f, &err)) {
        /* A rejected filter is a client error, with a position the API can report. */
        if (err.status != 400 || !err.scim_type ||
            strcmp(err.scim_type, SCIM_TYPE_INVALID_FILTER) != 0 || err.pos < -1 ||
            err.pos > (int)strlen(text)) {
            fprintf(stderr, "fuzz_filter: unexpected error %d %s pos %d: %s\n", err.status,
                    err.scim_type ? err.scim_type : "(null)", err.pos, err.detail);
            abort();
        }
        return;
    }
    free(scim_filter_to_sexp(f));
    (void)scim_filter_match(f, user_doc, user, NULL);
    (void)scim_filter_match(f, group_doc, group, NULL);
    (void)scim_filter_match(f, json_array_get(json_object_get(user_doc, "emails"), 0), NULL, emails);
    scim_filter_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size > 16384) /* beyond max_length anyway; keeps runs fast */
        return 0;
    init();
    text = fuzz_cstr(data, size);
    if (!text)
        return 0;
    check(text, NULL);
    check(text, fuzz_reg());
    free(text);
    return 0;
}
