/* e2e/concurrency: concurrent writes on one scimd.
 *  1. 8 threads each create 25 users and PATCH-add each one into the same group (one request
 *     per member): the group must end with exactly 200 members (no lost update).
 *  2. 8 threads POST the same userName at once: exactly one 201, all others 409. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

#define THREADS 8
#define PER_THREAD 25

static struct e2e_server srv;
static char group_id[128];

struct worker {
    int index;
    int failures;
    long statuses[4];
};

static int create_user(const char *userName, char *id, size_t idlen)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"%s\"}",
             userName);
    struct e2e_response r;
    int rc = -1;
    if (e2e_request(&srv, "POST", "/Users", NULL, body, &r) == 0 && r.status == 201 &&
        json_is_string(json_object_get(r.json, "id"))) {
        snprintf(id, idlen, "%s", json_string_value(json_object_get(r.json, "id")));
        rc = 0;
    } else {
        fprintf(stderr, "create %s: %ld %s %s\n", userName, r.status, r.error, r.body);
    }
    e2e_response_free(&r);
    return rc;
}

static void *add_members(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char name[64], id[128], body[512], path[200];
        snprintf(name, sizeof name, "member-%d-%d@example.com", w->index, i);
        if (create_user(name, id, sizeof id) != 0) {
            w->failures++;
            continue;
        }
        snprintf(body, sizeof body,
                 "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],"
                 "\"Operations\":[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"%s\"}]}]}",
                 id);
        snprintf(path, sizeof path, "/Groups/%s", group_id);
        struct e2e_response r;
        if (e2e_request(&srv, "PATCH", path, NULL, body, &r) != 0 ||
            (r.status != 204 && r.status != 200)) {
            fprintf(stderr, "PATCH add %s: %ld %s %s\n", id, r.status, r.error, r.body);
            w->failures++;
        }
        e2e_response_free(&r);
    }
    return NULL;
}

static void *create_same(void *arg)
{
    struct worker *w = arg;
    const char *body = "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
                       "\"userName\":\"race@example.com\"}";
    struct e2e_response r;
    if (e2e_request(&srv, "POST", "/Users", NULL, body, &r) == 0)
        w->statuses[0] = r.status;
    else
        fprintf(stderr, "race POST: %s\n", r.error);
    e2e_response_free(&r);
    return NULL;
}

static int test_group_members(void)
{
    struct e2e_response r;
    int ok = 0;
    const char *gbody = "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
                        "\"displayName\":\"crowd\"}";
    if (e2e_request(&srv, "POST", "/Groups", NULL, gbody, &r) != 0 || r.status != 201 ||
        !json_is_string(json_object_get(r.json, "id"))) {
        fprintf(stderr, "create group: %ld %s\n", r.status, r.body);
        e2e_response_free(&r);
        return 0;
    }
    snprintf(group_id, sizeof group_id, "%s", json_string_value(json_object_get(r.json, "id")));
    e2e_response_free(&r);

    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].index = i;
        pthread_create(&th[i], NULL, add_members, &w[i]);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
    }
    if (failures) {
        fprintf(stderr, "FAIL: %d requests failed during concurrent member adds\n", failures);
        return 0;
    }
    char path[200];
    snprintf(path, sizeof path, "/Groups/%s", group_id);
    if (e2e_request(&srv, "GET", path, NULL, NULL, &r) == 0 && r.status == 200) {
        size_t n = json_array_size(json_object_get(r.json, "members"));
        if (n == THREADS * PER_THREAD) {
            ok = 1;
            printf("group has %zu members\n", n);
        } else {
            fprintf(stderr, "FAIL: group has %zu members, expected %d (lost updates)\n", n,
                    THREADS * PER_THREAD);
        }
    } else {
        fprintf(stderr, "FAIL: GET group: %ld %s\n", r.status, r.body);
    }
    e2e_response_free(&r);
    return ok;
}

static int test_same_username(void)
{
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        pthread_create(&th[i], NULL, create_same, &w[i]);
    }
    int created = 0, conflicts = 0, other = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].statuses[0] == 201)
            created++;
        else if (w[i].statuses[0] == 409)
            conflicts++;
        else
            other++;
    }
    printf("same userName: %d created, %d conflicts, %d other\n", created, conflicts, other);
    if (created != 1 || conflicts != THREADS - 1) {
        fprintf(stderr, "FAIL: expected exactly one 201 and %d 409\n", THREADS - 1);
        return 0;
    }
    struct e2e_response r;
    int ok = 0;
    if (e2e_request(&srv, "GET", "/Users?filter=userName%20eq%20%22race%40example.com%22", NULL,
                    NULL, &r) == 0 &&
        r.status == 200 && json_integer_value(json_object_get(r.json, "totalResults")) == 1)
        ok = 1;
    else
        fprintf(stderr, "FAIL: filter on the raced userName: %ld %s\n", r.status, r.body);
    e2e_response_free(&r);
    return ok;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    e2e_global_init();
    if (e2e_server_start(&srv, NULL) != 0) {
        e2e_server_cleanup(&srv, 0);
        return 1;
    }
    int ok = test_group_members();
    ok = test_same_username() && ok;
    e2e_server_cleanup(&srv, ok);
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
