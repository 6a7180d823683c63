/* e2e/ratelimit: --rate-limit-token and --rate-limit-tenant. With a burst of 3 the first three
 * requests pass, the fourth is 429 with an integer Retry-After >= 1 and a SCIM Error, and after
 * waiting that long a request passes again. Discovery (no token) is never limited. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"

static int fails;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                  \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
            fails++;                                                                              \
        }                                                                                         \
    } while (0)

static long get(struct e2e_server *srv, const char *path, int *retry_after)
{
    struct e2e_response r;
    long status;
    *retry_after = -1;
    if (e2e_request(srv, "GET", path, NULL, NULL, &r) != 0) {
        fprintf(stderr, "transport error: %s\n", r.error);
        e2e_response_free(&r);
        return 0;
    }
    status = r.status;
    if (status == 429) {
        const char *ra = r.retry_after;
        char *end = NULL;
        long v = ra ? strtol(ra, &end, 10) : -1;
        CHECK(ra && end && *end == '\0' && end != ra, "Retry-After '%s' is not an integer",
              ra ? ra : "(none)");
        *retry_after = (int)v;
        CHECK(json_is_object(r.json), "429 body is not JSON: %s", r.body);
        const char *st = json_string_value(json_object_get(r.json, "status"));
        CHECK(st && !strcmp(st, "429"), "429 body status '%s'", st ? st : "(none)");
        json_t *schemas = json_array_get(json_object_get(r.json, "schemas"), 0);
        CHECK(schemas && !strcmp(json_string_value(schemas),
                                 "urn:ietf:params:scim:api:messages:2.0:Error"),
              "429 body is not a SCIM Error: %s", r.body);
    }
    e2e_response_free(&r);
    return status;
}

static void scenario(const char *flag, const char *value, int burst)
{
    struct e2e_server srv;
    const char *args[] = {flag, value};
    struct e2e_opts o = {.args = args, .n_args = 2};
    int ra;
    long st;

    if (e2e_server_start(&srv, &o) != 0) {
        fails++;
        e2e_server_cleanup(&srv, 0);
        return;
    }
    for (int i = 0; i < burst; i++) {
        st = get(&srv, "/Users?count=1", &ra);
        CHECK(st == 200, "%s %s: request %d of the burst: %ld", flag, value, i + 1, st);
    }
    st = get(&srv, "/Users?count=1", &ra);
    CHECK(st == 429, "%s %s: request past the burst: %ld, expected 429", flag, value, st);
    CHECK(ra >= 1 && ra <= 5, "%s %s: Retry-After %d", flag, value, ra);
    /* Discovery is not authenticated, hence not limited. */
    st = get(&srv, "/ServiceProviderConfig", &ra);
    CHECK(st == 200, "%s: discovery while limited: %ld", flag, st);
    st = get(&srv, "/Users?count=1", &ra);
    if (st == 429 && ra >= 1 && ra <= 5) {
        sleep((unsigned)ra);
        st = get(&srv, "/Users?count=1", &ra);
        CHECK(st == 200, "%s %s: after waiting Retry-After: %ld", flag, value, st);
    } else {
        CHECK(0, "%s %s: still limited expected, got %ld (Retry-After %d)", flag, value, st, ra);
    }
    e2e_server_cleanup(&srv, fails == 0);
}

int main(void)
{
    e2e_global_init();
    scenario("--rate-limit-token", "1/s:3", 3);
    scenario("--rate-limit-tenant", "30/m:2", 2);
    printf("%s\n", fails ? "FAIL" : "PASS");
    return fails ? 1 : 0;
}
