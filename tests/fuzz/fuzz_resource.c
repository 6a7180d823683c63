/* Fuzzes resource input handling: the input is a POST/PUT body, parsed with jansson as scimd does
 * (JSON_REJECT_DUPLICATES), then normalised (scim_resource_normalize) as a User and as a Group in
 * both create and replace mode. Each accepted body is checked (scim_resource_validate,
 * scim_resource_check_immutable), turned into a stored-looking resource (id, meta, members),
 * finished for output (scim_resource_finish) and projected (scim_project) under a few
 * attributes/excludedAttributes lists. A rejected body must be a 400. */
#include <jansson.h>
#include <stdio.h>

#include "common/err.h"
#include "fuzz.h"
#include "scim/resource.h"

#define BASE_URL "https://scim.example.com/scim/v2"

/* attributes / excludedAttributes pairs applied to every accepted resource. */
static const char *const LISTS[][2] = {
    {NULL, NULL},
    {"userName,name.givenName,emails.value", NULL},
    {"displayName,members", NULL},
    {NULL, "members,groups"},
    {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "emails"},
    {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "name.familyName"},
};
#define N_LISTS (sizeof LISTS / sizeof LISTS[0])

static struct scim_attrlist *lists[SCIM_RT_COUNT][N_LISTS][2];

static void init(void)
{
    static int done;
    const struct scim_registry *reg = fuzz_reg();

    if (done)
        return;
    done = 1;
    for (int k = 0; k < SCIM_RT_COUNT; k++) {
        const struct scim_resource_type *rt = scim_registry_rt(reg, (enum scim_rtype)k);
        for (size_t i = 0; i < N_LISTS; i++)
            for (int j = 0; j < 2; j++) {
                struct scim_err err;
                uint32_t compat = 0;
                if (scim_attrlist_parse(reg, rt, LISTS[i][j], &lists[k][i][j], &compat, &err))
                    abort();
            }
    }
}

static void fail(const char *what, const struct scim_err *err)
{
    fprintf(stderr, "fuzz_resource: %s: %d %s: %s\n", what, err->status,
            err->scim_type ? err->scim_type : "(null)", err->detail);
    abort();
}

/* Makes the resource the store would return for `in` and renders it in every projection. */
static void render(const struct scim_resource_type *rt, const struct scim_input *in)
{
    json_t *res = json_deep_copy(in->doc);

    if (!res)
        return;
    json_object_set_new(res, "id", json_string("0f4a2d4e-7c1b-4bde-9d59-1c3b8f7a3e21"));
    json_object_set_new(res, "meta",
                        json_pack("{s:s,s:s,s:s,s:s}", "resourceType", rt->name, "created",
                                  "2024-01-01T00:00:00Z", "lastModified", "2024-01-02T00:00:00Z",
                                  "version", "W/\"1\""));
    if (in->members)
        json_object_set(res, "members", in->members);
    if (scim_resource_finish(rt, res, BASE_URL) == 0) {
        for (size_t i = 0; i < N_LISTS; i++)
            json_decref(scim_project(rt, res, lists[rt->kind][i][0], lists[rt->kind][i][1]));
    }
    json_decref(res);
}

static void check(const struct scim_resource_type *rt, json_t *body)
{
    const struct scim_registry *reg = fuzz_reg();
    struct scim_input created = {0}, replaced = {0};
    struct scim_err err;
    uint32_t compat = 0;
    int rc_c, rc_r;

    scim_err_clear(&err);
    rc_c = scim_resource_normalize(reg, rt, body, SCIM_NORM_CREATE, &created, &compat, &err);
    if (rc_c && err.status != 400)
        fail("normalize (create)", &err);
    scim_err_clear(&err);
    rc_r = scim_resource_normalize(reg, rt, body, SCIM_NORM_REPLACE, &replaced, &compat, &err);
    if (rc_r && err.status != 400)
        fail("normalize (replace)", &err);
    if (rc_c == 0) {
        /* A normalised body must pass the checks run after PATCH. */
        scim_err_clear(&err);
        if (scim_resource_validate(rt, created.doc, &err))
            fail("validate after normalize", &err);
        if (rc_r == 0) {
            scim_err_clear(&err);
            if (scim_resource_check_immutable(rt, created.doc, replaced.doc, &err) &&
                err.status != 400)
                fail("check_immutable", &err);
        }
        render(rt, &created);
    }
    scim_input_release(&created);
    scim_input_release(&replaced);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct scim_registry *reg = fuzz_reg();
    json_error_t jerr;
    json_t *body;

    if (size > 65536)
        return 0;
    init();
    body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!body)
        return 0;
    if (json_is_object(body)) {
        json_t *copy = json_deep_copy(body);
        check(scim_registry_rt(reg, SCIM_RT_USER), body);
        check(scim_registry_rt(reg, SCIM_RT_GROUP), body);
        /* Normalisation must not modify the caller's body (JSON ownership rule). */
        if (copy && !json_equal(copy, body)) {
            fprintf(stderr, "fuzz_resource: scim_resource_normalize modified its input\n");
            abort();
        }
        json_decref(copy);
    }
    json_decref(body);
    return 0;
}
