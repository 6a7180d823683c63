/* Allocation-failure driver (built with cmake -DSCIMD_FAILALLOC=ON).
 *
 * Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup, so that every
 * allocation made by scimd's own code (the static libraries linked into this program) goes
 * through the counters below; jansson's allocations come here too, through the hook scimd
 * installs with json_set_alloc_funcs (scim_json_alloc_init, whose malloc call is wrapped).
 * SQLite's allocations (inside libsqlite3, which --wrap cannot reach) are included through
 * sqlite3_config(SQLITE_CONFIG_MALLOC); ALLOC_SQLITE=0 leaves them out.
 *
 * `alloc_driver REQUEST` runs one representative request in-process through scim_api_handle
 * against a temporary SQLite file, failing allocation 1, 2, 3, ... in turn (a fresh database
 * each time) until a run completes without reaching the armed allocation. Every run must end
 * in the request's success status or a 500 SCIM Error, without crashing; after a 500 the
 * store's resources must be exactly as before the request (no partial write). In a sanitizer
 * build (-DSCIMD_SANITIZE=ON) LeakSanitizer is asked every LEAK_CHECK_EVERY runs (and at
 * the end) whether anything leaked; ALLOC_TRACE=1 prints the stack of each failed
 * allocation; `alloc_driver REQUEST FIRST LAST` runs only allocations FIRST..LAST. */
#include <errno.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "api/api.h"
#include "auth/token.h"
#include "common/jsonalloc.h"
#include "common/log.h"
#include "scim/schema.h"
#include "store/store.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
/* A leak check costs tens of milliseconds: checking every 8th run keeps the tests fast and
 * still narrows a leak down to 8 runs (the leaked block stays unreachable until checked). */
#define LEAK_CHECK_EVERY 8
#else
#define HAVE_LSAN 0
#endif

/* ---- the allocator shim ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static atomic_long alloc_count;  /* allocations since arming */
static atomic_long fail_at;      /* 0 = disarmed; else the allocation number that fails */
static atomic_int failure_hit;

/* True when this allocation is the one to fail. */
static int should_fail(void)
{
    long at = atomic_load(&fail_at);
    if (at == 0)
        return 0;
    if (atomic_fetch_add(&alloc_count, 1) + 1 == at) {
        atomic_store(&failure_hit, 1);
        if (getenv("ALLOC_TRACE")) {
            /* Where the failing allocation is made (debugging aid). */
            void *frames[16];
            atomic_store(&fail_at, 0);
            backtrace_symbols_fd(frames, backtrace(frames, 16), 2);
            atomic_store(&fail_at, at);
        }
        return 1;
    }
    return 0;
}

/* A failed allocation sets errno to ENOMEM, as glibc's does. */
void *__wrap_malloc(size_t n)
{
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strdup(s);
}

/* SQLite's allocator, when included: a size header in front of each block. */
static void *sq_malloc(int n)
{
    if (should_fail())
        return NULL;
    size_t *p = __real_malloc((size_t)n + 16);
    if (!p)
        return NULL;
    p[0] = (size_t)n;
    return (char *)p + 16;
}

static void sq_free(void *p)
{
    if (p)
        free((char *)p - 16);
}

static void *sq_realloc(void *p, int n)
{
    if (should_fail())
        return NULL;
    size_t *q = __real_realloc(p ? (char *)p - 16 : NULL, (size_t)n + 16);
    if (!q)
        return NULL;
    q[0] = (size_t)n;
    return (char *)q + 16;
}

static int sq_size(void *p)
{
    return p ? (int)*(size_t *)(void *)((char *)p - 16) : 0;
}

static int sq_roundup(int n)
{
    return (n + 7) & ~7;
}

static int sq_init(void *arg)
{
    (void)arg;
    return SQLITE_OK;
}

static void sq_shutdown(void *arg)
{
    (void)arg;
}

static void arm(long n)
{
    atomic_store(&alloc_count, 0);
    atomic_store(&failure_hit, 0);
    atomic_store(&fail_at, n);
}

static void disarm(void)
{
    atomic_store(&fail_at, 0);
}

/* ---- the requests ---- */

struct reqdef {
    const char *name;
    const char *method;
    const char *path;  /* {u1} {u2} {g1} are replaced by the seeded ids */
    const char *query;
    const char *body;
};

static const struct reqdef requests[] = {
    {"post_user", "POST", "/scim/v2/Users", "",
     "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\","
     "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"],"
     "\"userName\":\"new.user@example.com\",\"externalId\":\"ext-9\",\"active\":true,"
     "\"password\":\"Secret-pw-1\",\"name\":{\"givenName\":\"New\",\"familyName\":\"User\"},"
     "\"emails\":[{\"value\":\"new.user@example.com\",\"type\":\"work\",\"primary\":true}],"
     "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{\"department\":\"R&D\","
     "\"manager\":{\"value\":\"{u2}\"}}}"},
    {"get_user", "GET", "/scim/v2/Users/{u1}", "", NULL},
    {"list_filter", "GET", "/scim/v2/Users",
     "filter=userName%20sw%20%22a%22%20and%20emails%5Btype%20eq%20%22work%22%5D&sortBy=userName"
     "&count=10&attributes=userName,emails",
     NULL},
    {"patch_user", "PATCH", "/scim/v2/Users/{u1}", "",
     "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":["
     "{\"op\":\"replace\",\"path\":\"active\",\"value\":false},"
     "{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"value\":\"a2@example.com\",\"type\":"
     "\"home\"}]},"
     "{\"op\":\"replace\",\"path\":\"emails[type eq \\\"work\\\"].value\",\"value\":"
     "\"a3@example.com\"},"
     "{\"op\":\"Replace\",\"value\":{\"displayName\":\"Alice A.\",\"name.givenName\":\"Al\"}},"
     "{\"op\":\"remove\",\"path\":\"title\"}]}"},
    {"put_user", "PUT", "/scim/v2/Users/{u1}", "",
     "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
     "\"userName\":\"alice@example.com\",\"displayName\":\"Alice Put\",\"active\":true,"
     "\"emails\":[{\"value\":\"alice@example.com\",\"type\":\"work\",\"primary\":true}],"
     "\"phoneNumbers\":[{\"value\":\"+1 555 0100\",\"type\":\"work\"}]}"},
    {"post_group", "POST", "/scim/v2/Groups", "",
     "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"displayName\":"
     "\"Engineering\",\"externalId\":\"g-ext\",\"members\":[{\"value\":\"{u1}\"},{\"value\":"
     "\"{u2}\",\"display\":\"Bob\"}]}"},
    {"patch_members", "PATCH", "/scim/v2/Groups/{g1}", "",
     "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":["
     "{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"{u2}\"}]},"
     "{\"op\":\"remove\",\"path\":\"members[value eq \\\"{u1}\\\"]\"},"
     "{\"op\":\"replace\",\"path\":\"displayName\",\"value\":\"Renamed\"}]}"},
    {"delete_user", "DELETE", "/scim/v2/Users/{u1}", "", NULL},
    {"discovery", "GET", "/scim/v2/Schemas", "", NULL},
    {"discovery_spc", "GET", "/scim/v2/ServiceProviderConfig", "", NULL},
    {"discovery_rt", "GET", "/scim/v2/ResourceTypes", "", NULL},
    {"search", "POST", "/scim/v2/Users/.search", "",
     "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:SearchRequest\"],"
     "\"filter\":\"userName eq \\\"bob@example.com\\\" or displayName co \\\"Ali\\\"\","
     "\"excludedAttributes\":[\"emails\"],\"startIndex\":1,\"count\":5}"},
};

/* Replaces {u1}, {u2}, {g1} in `tmpl` (result malloc'd before arming). */
static char *expand(const char *tmpl, const char *u1, const char *u2, const char *g1)
{
    size_t cap = strlen(tmpl) * 2 + 200, o = 0;
    char *out = __real_malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = tmpl; *p;) {
        const char *v = NULL;
        if (!strncmp(p, "{u1}", 4))
            v = u1;
        else if (!strncmp(p, "{u2}", 4))
            v = u2;
        else if (!strncmp(p, "{g1}", 4))
            v = g1;
        if (v) {
            o += (size_t)snprintf(out + o, cap - o, "%s", v);
            p += 4;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- one run ---- */

struct world {
    char db[256];
    struct scim_registry *reg;
    struct scim_store *st;
    struct scim_api *api;
    char token[SCIM_TOKEN_MAX];
    char u1[64], u2[64], g1[64];
    int64_t tenant;
};

static int create(struct world *w, enum scim_rtype kind, const char *json, char id[64])
{
    struct scim_err err;
    json_error_t je;
    json_t *doc = json_loads(json, 0, &je), *members = NULL, *out = NULL;
    scim_err_clear(&err);
    if (kind == SCIM_RT_GROUP) {
        members = json_pack("[{s:s}]", "value", w->u1);
    }
    int rc = scim_store_create(w->st, w->tenant, kind, doc, members, NULL, 0, &out, NULL, &err);
    if (rc == 0)
        snprintf(id, 64, "%s", json_string_value(json_object_get(out, "id")));
    else
        fprintf(stderr, "seed: %s / %s\n", err.detail, err.log);
    json_decref(doc);
    json_decref(members);
    json_decref(out);
    return rc;
}

/* The seeded database, built once and copied for every run. */
static char template_db[256];
static char seed_token[SCIM_TOKEN_MAX], seed_u1[64], seed_u2[64], seed_g1[64];

static int make_template(const char *dir)
{
    struct world w;
    struct scim_err err;
    struct scim_store_opts so;
    unsigned char hash[32];
    int rc = -1;

    memset(&w, 0, sizeof w);
    scim_err_clear(&err);
    snprintf(template_db, sizeof template_db, "%s/template.db", dir);
    w.reg = scim_registry_new();
    so = (struct scim_store_opts){.reg = w.reg, .pool_size = 1};
    if (!w.reg || scim_store_open(template_db, &so, &w.st, &err) ||
        scim_store_tenant_default(w.st, &w.tenant, &err) ||
        scim_token_generate(seed_token, hash) ||
        scim_store_token_create(w.st, w.tenant, "alloc", hash, "scim:read scim:write", 0,
                                &err)) {
        fprintf(stderr, "setup failed: %s %s\n", err.detail, err.log);
        goto out;
    }
    if (create(&w, SCIM_RT_USER,
               "{\"userName\":\"alice@example.com\",\"displayName\":\"Alice\",\"title\":\"Dr\","
               "\"emails\":[{\"value\":\"alice@example.com\",\"type\":\"work\",\"primary\":true}]}",
               w.u1) ||
        create(&w, SCIM_RT_USER,
               "{\"userName\":\"bob@example.com\",\"displayName\":\"Bob\"}", w.u2) ||
        create(&w, SCIM_RT_GROUP, "{\"displayName\":\"Seed group\"}", w.g1))
        goto out;
    memcpy(seed_u1, w.u1, sizeof seed_u1);
    memcpy(seed_u2, w.u2, sizeof seed_u2);
    memcpy(seed_g1, w.g1, sizeof seed_g1);
    rc = 0;
out:
    /* Closing checkpoints the WAL into the main file, so copying that file is enough. */
    scim_store_free(&w.st);
    scim_registry_free(&w.reg);
    return rc;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int rc = in && out ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc;
}

static int world_open(struct world *w, const char *dir, int n)
{
    struct scim_err err;
    struct scim_store_opts so;
    struct scim_api_config cfg;

    memset(w, 0, sizeof *w);
    scim_err_clear(&err);
    snprintf(w->db, sizeof w->db, "%s/run-%d.db", dir, n);
    if (copy_file(template_db, w->db))
        return -1;
    w->reg = scim_registry_new();
    so = (struct scim_store_opts){.reg = w->reg, .pool_size = 1};
    if (!w->reg || scim_store_open(w->db, &so, &w->st, &err) ||
        scim_store_tenant_default(w->st, &w->tenant, &err)) {
        fprintf(stderr, "setup failed: %s %s\n", err.detail, err.log);
        return -1;
    }
    scim_api_config_defaults(&cfg);
    if (scim_api_new(&cfg, w->st, w->reg, &w->api, &err))
        return -1;
    memcpy(w->token, seed_token, sizeof w->token);
    memcpy(w->u1, seed_u1, sizeof w->u1);
    memcpy(w->u2, seed_u2, sizeof w->u2);
    memcpy(w->g1, seed_g1, sizeof w->g1);
    return 0;
}

static void world_close(struct world *w)
{
    char side[300];
    scim_api_free(&w->api);
    scim_store_free(&w->st);
    scim_registry_free(&w->reg);
    unlink(w->db);
    snprintf(side, sizeof side, "%s-wal", w->db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", w->db);
    unlink(side);
}

static int is_new_uuid(const struct world *w, const char *s)
{
    if (strlen(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
        return 0;
    return strcmp(s, w->u1) && strcmp(s, w->u2) && strcmp(s, w->g1);
}

/* Makes a snapshot comparable across runs: timestamps dropped, ids of resources created by
 * the request (random UUIDs) replaced by "NEW". */
static void normalize(const struct world *w, json_t *j)
{
    const char *k;
    json_t *v;
    void *tmp;
    size_t i;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) {
            if (json_is_string(v) && is_new_uuid(w, json_string_value(v)))
                json_array_set_new(j, i, json_string("NEW"));
            else
                normalize(w, v);
        }
    } else if (json_is_object(j)) {
        json_object_del(j, "created");
        json_object_del(j, "lastModified");
        json_object_foreach_safe(j, tmp, k, v) {
            if (json_is_string(v) && is_new_uuid(w, json_string_value(v)))
                json_object_set_new(j, k, json_string("NEW"));
            else
                normalize(w, v);
        }
    }
}

/* All resources of the tenant, with members and groups, as one JSON text (normalized). */
static char *snapshot(struct world *w)
{
    json_t *all = json_object();
    for (int k = 0; k < 2; k++) {
        struct scim_store_query q = {.start_index = 1, .count = 1000,
                                     .flags = SCIM_STORE_MEMBERS | SCIM_STORE_GROUPS};
        struct scim_store_page page = {0};
        struct scim_err err;
        scim_err_clear(&err);
        if (scim_store_list(w->st, w->tenant, k ? SCIM_RT_GROUP : SCIM_RT_USER, &q, &page, &err)) {
            json_decref(all);
            return NULL;
        }
        json_object_set_new(all, k ? "groups" : "users", page.resources);
    }
    normalize(w, all);
    char *s = json_dumps(all, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(all);
    return s;
}

/* Runs the request with allocation `n` armed to fail (0 = none). Returns 0 when the run is
 * acceptable, 1 otherwise; *hit tells whether the armed allocation was reached; *status is the
 * answer's status. */
/* The store after the reference run (nothing failing), normalized. */
static char *reference_after;
static int committed_500; /* runs answered 500 after their write had committed */

static int run_once(const struct reqdef *d, const char *dir, long n, int *hit, int *status,
                    int expect_status)
{
    struct world w;
    struct scim_request req;
    struct scim_response resp;
    char auth[128];
    int bad = 0;

    *hit = 0;
    if (world_open(&w, dir, (int)n)) {
        world_close(&w);
        return 1;
    }
    char *before = snapshot(&w);
    char *path = expand(d->path, w.u1, w.u2, w.g1);
    char *query = expand(d->query, w.u1, w.u2, w.g1);
    char *body = d->body ? expand(d->body, w.u1, w.u2, w.g1) : NULL;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    snprintf(auth, sizeof auth, "Bearer %s", w.token);
    req.method = d->method;
    req.raw_path = path;
    req.raw_query = query;
    req.headers[0] = (struct scim_header){"Authorization", auth};
    req.headers[1] = (struct scim_header){"Host", "scim.example.com"};
    req.headers[2] = (struct scim_header){"Content-Type", "application/scim+json"};
    req.n_headers = 3;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.remote_addr = "127.0.0.1";
    snprintf(req.request_id, sizeof req.request_id, "alloc-%ld", n);

    if (n > 0)
        arm(n);
    scim_api_handle(w.api, &req, &resp);
    disarm();
    *hit = atomic_load(&failure_hit);
    *status = resp.status;

    if (resp.status == 500) {
        json_error_t je;
        json_t *b = resp.body ? json_loadb(resp.body, resp.body_len, 0, &je) : NULL;
        const char *st = json_string_value(json_object_get(b, "status"));
        if (!st || strcmp(st, "500") != 0) {
            fprintf(stderr, "%s, failing allocation %ld: a 500 without a SCIM Error body: %.*s\n",
                    d->name, n, (int)resp.body_len, resp.body ? resp.body : "");
            bad = 1;
        }
        json_decref(b);
        /* Atomicity: the store holds either nothing of the request or all of it (the write
         * may have committed before a later allocation failed: then the client's retry meets
         * the finished write). Anything in between is a partial write. */
        char *after = snapshot(&w);
        if (!before || !after ||
            (strcmp(before, after) != 0 && (!reference_after || strcmp(reference_after, after)))) {
            fprintf(stderr, "%s, failing allocation %ld: 500 and a partial write:\nbefore %s\n"
                            "after  %s\nwanted %s\n",
                    d->name, n, before ? before : "?", after ? after : "?",
                    reference_after ? reference_after : "?");
            bad = 1;
        } else if (strcmp(before, after) != 0) {
            committed_500++;
        }
        free(after);
    } else if (expect_status && resp.status != expect_status) {
        fprintf(stderr, "%s, failing allocation %ld: status %d, expected %d or 500: %.*s\n",
                d->name, n, resp.status, expect_status, (int)resp.body_len,
                resp.body ? resp.body : "");
        bad = 1;
    }
    if (n == 0)
        reference_after = snapshot(&w);
    scim_response_release(&resp);
    free(before);
    free(path);
    free(query);
    free(body);
    world_close(&w);
#if HAVE_LSAN
    if ((n % LEAK_CHECK_EVERY == 0 || !*hit) && __lsan_do_recoverable_leak_check()) {
        fprintf(stderr, "%s, failing allocations up to %ld: LeakSanitizer found a leak (above)\n",
                d->name, n);
        bad = 1;
    }
#endif
    return bad;
}

int main(int argc, char **argv)
{
    const struct reqdef *d = NULL;
    char dir[256];
    int hit, status, expect, failures = 0;
    long n, max_runs = 100000;

    if (argc < 2) {
        fprintf(stderr, "usage: %s REQUEST [FIRST [LAST]]\n", argv[0]);
        return 2;
    }
    /* The driver always works on its own SQLite file: the PostgreSQL pass of the suite would
     * only repeat the same runs. */
    if (getenv("SCIMD_TEST_BACKEND") && strcmp(getenv("SCIMD_TEST_BACKEND"), "sqlite") != 0) {
        printf("alloc: skipped on backend %s\n", getenv("SCIMD_TEST_BACKEND"));
        return 77;
    }
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++)
        if (!strcmp(requests[i].name, argv[1]))
            d = &requests[i];
    if (!d) {
        fprintf(stderr, "unknown request %s\n", argv[1]);
        return 2;
    }
    if (!getenv("ALLOC_SQLITE") || strcmp(getenv("ALLOC_SQLITE"), "0") != 0) {
        static const sqlite3_mem_methods mem = {sq_malloc, sq_free, sq_realloc, sq_size,
                                                sq_roundup, sq_init, sq_shutdown, NULL};
        if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK) {
            fprintf(stderr, "sqlite3_config(SQLITE_CONFIG_MALLOC) failed\n");
            return 2;
        }
    }
    /* scimd's own jansson hook (as scimd installs it): it calls malloc, which is wrapped. */
    scim_json_alloc_init();
    scim_log_set_level(SCIM_LOG_ERROR);
    snprintf(dir, sizeof dir, "%s/scimd-alloc-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }

    if (make_template(dir)) {
        fprintf(stderr, "cannot build the seeded database in %s\n", dir);
        return 2;
    }
    /* The reference run: nothing fails. */
    if (run_once(d, dir, 0, &hit, &expect, 0)) {
        rmdir(dir);
        return 1;
    }
    if (expect < 200 || expect > 299) {
        fprintf(stderr, "%s: the reference run answered %d\n", d->name, expect);
        rmdir(dir);
        return 1;
    }
    long first = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
    if (argc > 3)
        max_runs = strtol(argv[3], NULL, 10);
    int n500 = 0, nok = 0;
    for (n = first; n <= max_runs; n++) {
        failures += run_once(d, dir, n, &hit, &status, expect);
        if (!hit)
            break;
        if (status == 500)
            n500++;
        else
            nok++;
    }
    unlink(template_db);
    rmdir(dir);
    printf("%s: expected %d; failed allocations 1..%ld: %d answered 500 (%d of them after the "
           "write had committed), %d succeeded anyway; %d bad runs\n",
           d->name, expect, n - 1, n500, committed_500, nok, failures);
    free(reference_after);
    return failures ? 1 : 0;
}
