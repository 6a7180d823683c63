/* e2e/discovery_consistency: what /ServiceProviderConfig, /ResourceTypes and /Schemas claim is
 * what the server actually does.
 *  - every ResourceType endpoint answers a list, and names schemas /Schemas publishes;
 *  - for every top-level attribute of every schema of a resource type: required ones missing
 *    give 400; readOnly ones sent on POST are ignored (201, value not stored); readWrite
 *    simple ones round-trip; writeOnly / returned "never" ones are never returned;
 *  - SPC: patch works; filter.maxResults caps a page; bulk.maxOperations is enforced (413);
 *    etag -> ETag header; sort -> sortBy orders; changePassword matches whether a PATCH of
 *    password is accepted; pagination.cursor -> cursor paging works; /Me answers 501. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

#define MAX_RESULTS 5
#define BULK_MAX 3

static struct e2e_server srv;
static int failures;
static int serial;
static int checks;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL: " __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* Sends a request with an optional JSON body; returns the status (0 on transport failure). */
static long req(const char *method, const char *path, json_t *body, struct e2e_response *r)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc = e2e_request(&srv, method, path, NULL, text, r);
    free(text);
    if (rc != 0)
        fprintf(stderr, "%s %s: %s\n", method, path, r->error);
    return rc == 0 ? r->status : 0;
}

static json_t *get_json(const char *path)
{
    struct e2e_response r;
    json_t *out = NULL;
    if (req("GET", path, NULL, &r) == 200 && r.json)
        out = json_incref(r.json);
    else
        CHECK(0, "GET %s: %ld %s", path, r.status, r.body);
    e2e_response_free(&r);
    return out;
}

static bool str_is(json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* A value of the attribute's type (first canonical value when it has some). */
static json_t *sample(json_t *attr, bool multi_ok);

static json_t *sample_single(json_t *attr)
{
    const char *type = json_string_value(json_object_get(attr, "type"));
    json_t *canon = json_object_get(attr, "canonicalValues");
    char buf[64];

    if (!type)
        return NULL;
    if (json_array_size(canon) > 0)
        return json_deep_copy(json_array_get(canon, 0));
    if (strcmp(type, "string") == 0) {
        snprintf(buf, sizeof buf, "dc-value-%d", ++serial);
        return json_string(buf);
    }
    if (strcmp(type, "boolean") == 0)
        return json_true();
    if (strcmp(type, "integer") == 0)
        return json_integer(7);
    if (strcmp(type, "decimal") == 0)
        return json_real(1.5);
    if (strcmp(type, "dateTime") == 0)
        return json_string("2020-01-02T03:04:05Z");
    if (strcmp(type, "reference") == 0)
        return json_string("https://example.com/ref");
    if (strcmp(type, "binary") == 0)
        return json_string("AAAA");
    if (strcmp(type, "complex") == 0) {
        json_t *o = json_object(), *sub;
        size_t i;
        json_array_foreach(json_object_get(attr, "subAttributes"), i, sub) {
            const char *m = json_string_value(json_object_get(sub, "mutability"));
            const char *n = json_string_value(json_object_get(sub, "name"));
            if (n && m && strcmp(m, "readOnly") != 0 && strcmp(n, "$ref") != 0 &&
                strcmp(n, "primary") != 0) {
                json_t *v = sample(sub, false);
                if (v)
                    json_object_set_new(o, n, v);
            }
        }
        return o;
    }
    return NULL;
}

static json_t *sample(json_t *attr, bool multi_ok)
{
    json_t *v = sample_single(attr);
    if (v && multi_ok && json_is_true(json_object_get(attr, "multiValued"))) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        return a;
    }
    return v;
}

/* Sets attribute `name` of schema `urn` in `doc` (core attributes at the top level). */
static void put_attr(json_t *doc, const char *urn, bool core, const char *name, json_t *v)
{
    json_t *target = doc;
    if (!core) {
        target = json_object_get(doc, urn);
        if (!target) {
            target = json_object();
            json_object_set_new(doc, urn, target);
        }
    }
    json_object_set_new(target, name, v);
}

static json_t *get_attr(json_t *res, const char *urn, bool core, const char *name)
{
    return json_object_get(core ? res : json_object_get(res, urn), name);
}

/* A minimal valid resource: its schemas plus a sample of every required core attribute. */
static json_t *minimal(json_t *core_schema, const char *core_urn, const char *skip)
{
    json_t *doc = json_pack("{s:[s]}", "schemas", core_urn), *attr;
    size_t i;
    json_array_foreach(json_object_get(core_schema, "attributes"), i, attr) {
        const char *n = json_string_value(json_object_get(attr, "name"));
        if (json_is_true(json_object_get(attr, "required")) && n && (!skip || strcmp(n, skip)))
            json_object_set_new(doc, n, sample(attr, true));
    }
    return doc;
}

static json_t *find_schema(json_t *schemas, const char *urn)
{
    json_t *s;
    size_t i;
    json_array_foreach(json_object_get(schemas, "Resources"), i, s) {
        if (str_is(json_object_get(s, "id"), urn))
            return s;
    }
    return NULL;
}

static void check_schema_attrs(json_t *rt, json_t *core_schema, json_t *schema, bool core)
{
    const char *ep = json_string_value(json_object_get(rt, "endpoint"));
    const char *core_urn = json_string_value(json_object_get(core_schema, "id"));
    const char *urn = json_string_value(json_object_get(schema, "id"));
    json_t *attr, *all = minimal(core_schema, core_urn, NULL), *expect = json_object();
    struct e2e_response r;
    size_t i;

    if (!core)
        json_array_append_new(json_object_get(all, "schemas"), json_string(urn));
    json_array_foreach(json_object_get(schema, "attributes"), i, attr) {
        const char *n = json_string_value(json_object_get(attr, "name"));
        const char *mut = json_string_value(json_object_get(attr, "mutability"));
        const char *ret = json_string_value(json_object_get(attr, "returned"));
        bool required = json_is_true(json_object_get(attr, "required"));
        json_t *doc, *v;

        if (!n || !mut || !ret)
            continue;
        if (required) {
            /* Missing required attribute: 400. */
            doc = core ? minimal(core_schema, core_urn, n) : minimal(core_schema, core_urn, NULL);
            if (!core)
                json_array_append_new(json_object_get(doc, "schemas"), json_string(urn));
            long st = req("POST", ep, doc, &r);
            CHECK(st == 400, "%s: POST without required %s:%s gave %ld", ep, urn, n, st);
            e2e_response_free(&r);
            json_decref(doc);
        }
        if (strcmp(mut, "readOnly") == 0) {
            /* readOnly on POST: ignored, not an error, and not stored. */
            doc = minimal(core_schema, core_urn, NULL);
            v = json_string("ffffffff-ffff-4fff-bfff-ffffffffffff");
            if (json_is_true(json_object_get(attr, "multiValued")) ||
                str_is(json_object_get(attr, "type"), "complex")) {
                json_decref(v);
                v = json_pack("[{s:s}]", "value", "ffffffff-ffff-4fff-bfff-ffffffffffff");
            }
            if (!core)
                json_array_append_new(json_object_get(doc, "schemas"), json_string(urn));
            put_attr(doc, urn, core, n, json_incref(v));
            long st = req("POST", ep, doc, &r);
            CHECK(st == 201, "%s: POST with readOnly %s:%s gave %ld (%s)", ep, urn, n, st, r.body);
            if (st == 201)
                CHECK(!strstr(r.body, "ffffffff-ffff-4fff-bfff-ffffffffffff"),
                      "%s: readOnly %s:%s was stored: %s", ep, urn, n, r.body);
            e2e_response_free(&r);
            json_decref(doc);
            json_decref(v);
            continue;
        }
        if (required || json_object_get(all, n))
            continue;
        v = sample(attr, true);
        if (!v)
            continue;
        put_attr(all, urn, core, n, json_incref(v));
        if (strcmp(ret, "never") == 0 || strcmp(mut, "writeOnly") == 0)
            json_object_set_new(expect, n, json_null()); /* must be absent */
        else if (!str_is(json_object_get(attr, "type"), "complex") &&
                 !str_is(json_object_get(attr, "type"), "dateTime") &&
                 !json_is_true(json_object_get(attr, "multiValued")))
            json_object_set(expect, n, v);
        json_decref(v);
    }
    /* Every writable attribute at once: accepted, and simple ones round-trip. */
    {
        long st = req("POST", ep, all, &r);
        const char *key;
        json_t *want;
        CHECK(st == 201, "%s: POST with every writable attribute of %s gave %ld (%s)", ep, urn,
              st, r.body);
        if (st == 201 && r.json) {
            json_object_foreach(expect, key, want) {
                json_t *got = get_attr(r.json, urn, core, key);
                if (json_is_null(want))
                    CHECK(!got, "%s: %s:%s is writeOnly/never returned but came back", ep, urn, key);
                else
                    CHECK(got && json_equal(got, want), "%s: %s:%s did not round-trip", ep, urn,
                          key);
            }
        }
        e2e_response_free(&r);
    }
    json_decref(all);
    json_decref(expect);
}

static void check_resource_types(json_t *schemas)
{
    json_t *rts = get_json("/ResourceTypes"), *rt;
    size_t i;

    CHECK(json_array_size(json_object_get(rts, "Resources")) >= 2, "fewer than 2 resource types");
    json_array_foreach(json_object_get(rts, "Resources"), i, rt) {
        const char *ep = json_string_value(json_object_get(rt, "endpoint"));
        const char *urn = json_string_value(json_object_get(rt, "schema"));
        json_t *core = urn ? find_schema(schemas, urn) : NULL, *ext;
        char path[256];
        size_t k;
        struct e2e_response r;

        CHECK(ep && core, "resource type %zu: endpoint or schema missing from /Schemas", i);
        if (!ep || !core)
            continue;
        snprintf(path, sizeof path, "%s?count=1", ep);
        CHECK(req("GET", path, NULL, &r) == 200 && r.json &&
                  json_object_get(r.json, "totalResults"),
              "GET %s does not list", ep);
        e2e_response_free(&r);
        check_schema_attrs(rt, core, core, true);
        json_array_foreach(json_object_get(rt, "schemaExtensions"), k, ext) {
            const char *eurn = json_string_value(json_object_get(ext, "schema"));
            json_t *es = eurn ? find_schema(schemas, eurn) : NULL;
            CHECK(es, "%s: extension %s not in /Schemas", ep, eurn ? eurn : "?");
            if (es)
                check_schema_attrs(rt, core, es, false);
        }
    }
    json_decref(rts);
}

static char *create_user(const char *name)
{
    json_t *doc = json_pack("{s:[s],s:s}", "schemas", "urn:ietf:params:scim:schemas:core:2.0:User",
                            "userName", name);
    struct e2e_response r;
    char *id = NULL;
    if (req("POST", "/Users", doc, &r) == 201 && r.json)
        id = strdup(json_string_value(json_object_get(r.json, "id")));
    else
        CHECK(0, "create %s: %ld %s", name, r.status, r.body);
    e2e_response_free(&r);
    json_decref(doc);
    return id;
}

static void check_spc(json_t *spc)
{
    struct e2e_response r;
    char path[256];
    char *id = create_user("spc-a@example.com");
    long st;

    for (int i = 0; i < MAX_RESULTS + 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "spc-%c@example.com", 'b' + i);
        free(create_user(name));
    }
    if (!id)
        return;
    /* patch */
    {
        json_t *p = json_pack("{s:[s],s:[{s:s,s:s,s:s}]}", "schemas",
                              "urn:ietf:params:scim:api:messages:2.0:PatchOp", "Operations", "op",
                              "replace", "path", "displayName", "value", "Patched");
        snprintf(path, sizeof path, "/Users/%s", id);
        st = req("PATCH", path, p, &r);
        CHECK(json_is_true(json_object_get(json_object_get(spc, "patch"), "supported")) ==
                  (st == 200 || st == 204),
              "patch.supported does not match PATCH (%ld)", st);
        e2e_response_free(&r);
        json_decref(p);
    }
    /* changePassword */
    {
        json_t *p = json_pack("{s:[s],s:[{s:s,s:s,s:s}]}", "schemas",
                              "urn:ietf:params:scim:api:messages:2.0:PatchOp", "Operations", "op",
                              "replace", "path", "password", "value", "N3w-Passw0rd!");
        bool claim = json_is_true(json_object_get(json_object_get(spc, "changePassword"), "supported"));
        st = req("PATCH", path, p, &r);
        CHECK(claim == (st == 200 || st == 204),
              "changePassword.supported=%d but PATCH of password gave %ld", claim, st);
        e2e_response_free(&r);
        json_decref(p);
    }
    /* etag */
    st = req("GET", path, NULL, &r);
    CHECK(json_is_true(json_object_get(json_object_get(spc, "etag"), "supported")) ==
              (st == 200 && r.etag != NULL),
          "etag.supported does not match the ETag header");
    e2e_response_free(&r);
    /* filter.maxResults caps a page */
    {
        json_int_t max = json_integer_value(json_object_get(json_object_get(spc, "filter"), "maxResults"));
        CHECK(max == MAX_RESULTS, "filter.maxResults is %lld, expected %d", (long long)max,
              MAX_RESULTS);
        st = req("GET", "/Users?count=100", NULL, &r);
        CHECK(st == 200 && json_integer_value(json_object_get(r.json, "itemsPerPage")) == max &&
                  json_array_size(json_object_get(r.json, "Resources")) == (size_t)max &&
                  json_integer_value(json_object_get(r.json, "totalResults")) > max,
              "maxResults %lld not honoured as page cap: %s", (long long)max, r.body);
        e2e_response_free(&r);
        st = req("GET", "/Users?filter=userName%20sw%20%22spc-a%22", NULL, &r);
        CHECK(st == 200 && json_integer_value(json_object_get(r.json, "totalResults")) == 1,
              "filter.supported but a filter does not work");
        e2e_response_free(&r);
    }
    /* sort */
    if (json_is_true(json_object_get(json_object_get(spc, "sort"), "supported"))) {
        st = req("GET", "/Users?sortBy=userName&sortOrder=descending&count=2&filter=userName%20sw%20%22spc-%22",
                 NULL, &r);
        json_t *res = json_object_get(r.json, "Resources");
        const char *a = json_string_value(json_object_get(json_array_get(res, 0), "userName"));
        const char *b = json_string_value(json_object_get(json_array_get(res, 1), "userName"));
        CHECK(st == 200 && a && b && strcmp(a, "spc-h@example.com") == 0 &&
                  strcmp(b, "spc-g@example.com") == 0,
              "sort.supported but sortBy=userName descending gave %s", r.body);
        e2e_response_free(&r);
    }
    /* bulk */
    {
        json_t *bulk = json_object_get(spc, "bulk");
        json_int_t max = json_integer_value(json_object_get(bulk, "maxOperations"));
        json_t *ops = json_array(), *body;
        CHECK(json_is_true(json_object_get(bulk, "supported")) && max == BULK_MAX,
              "bulk.supported/maxOperations do not reflect --bulk-max-operations");
        for (json_int_t i = 0; i <= max; i++)
            json_array_append_new(ops, json_pack("{s:s,s:s}", "method", "DELETE", "path",
                                                 "/Users/00000000-0000-0000-0000-000000000000"));
        body = json_pack("{s:[s],s:o}", "schemas", "urn:ietf:params:scim:api:messages:2.0:BulkRequest",
                         "Operations", ops);
        st = req("POST", "/Bulk", body, &r);
        CHECK(st == 413, "bulk maxOperations %lld + 1 operations gave %ld", (long long)max, st);
        e2e_response_free(&r);
        json_array_remove(ops, 0);
        st = req("POST", "/Bulk", body, &r);
        CHECK(st == 200 && json_array_size(json_object_get(r.json, "Operations")) == (size_t)max,
              "bulk with maxOperations operations gave %ld %s", st, r.body);
        e2e_response_free(&r);
        json_decref(body);
    }
    /* cursor pagination */
    if (json_is_true(json_object_get(json_object_get(spc, "pagination"), "cursor"))) {
        st = req("GET", "/Users?cursor=&count=2", NULL, &r);
        CHECK(st == 200 && json_is_string(json_object_get(r.json, "nextCursor")),
              "pagination.cursor claimed but cursor= does not page: %s", r.body);
        e2e_response_free(&r);
    }
    /* /Me */
    st = req("GET", "/Me", NULL, &r);
    CHECK(st == 501, "/Me gave %ld", st);
    e2e_response_free(&r);
    free(id);
}

int main(void)
{
    static const char *const args[] = {"--max-results", "5", "--bulk-max-operations", "3"};
    struct e2e_opts opts = {args, 4, NULL, 0};
    json_t *spc, *schemas;
    int ok;

    e2e_global_init();
    if (e2e_server_start(&srv, &opts))
        return 1;
    spc = get_json("/ServiceProviderConfig");
    schemas = get_json("/Schemas");
    if (spc && schemas) {
        check_resource_types(schemas);
        check_spc(spc);
    }
    json_decref(spc);
    json_decref(schemas);
    fprintf(stderr, "discovery_consistency: %d checks, %d failures\n", checks, failures);
    if (checks < 30)
        failures++; /* the documents were too thin to test anything */
    ok = failures == 0;
    e2e_server_cleanup(&srv, ok);
    return ok ? 0 : 1;
}
