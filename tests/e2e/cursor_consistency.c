/* e2e/cursor_consistency: RFC 9865 cursor paging stays exact under concurrent writes.
 * 2000 "stable" users and 500 "victim" users are created, interleaved. One thread then pages
 * through /Users with cursors (count=100) while another keeps deleting victims and creating
 * and deleting "churn" users. Every stable user must be seen exactly once, no id may appear
 * twice, and the last page must have no nextCursor. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e.h"

#define STABLE 2000
#define VICTIMS 500
#define CREATORS 4
#define PAGE 100

static struct e2e_server srv;
static char victim_ids[VICTIMS][64];
static atomic_int reading_done;
static atomic_int churn_ops;

static int create_user(const char *userName, char *id, size_t idlen)
{
    char body[512];
    struct e2e_response r;
    int rc = -1;
    snprintf(body, sizeof body,
             "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"%s\"}",
             userName);
    if (e2e_request(&srv, "POST", "/Users", NULL, body, &r) == 0 && r.status == 201 &&
        json_is_string(json_object_get(r.json, "id"))) {
        if (id)
            snprintf(id, idlen, "%s", json_string_value(json_object_get(r.json, "id")));
        rc = 0;
    } else {
        fprintf(stderr, "create %s: %ld %s %s\n", userName, r.status, r.error, r.body);
    }
    e2e_response_free(&r);
    return rc;
}

static int delete_user(const char *id)
{
    char path[128];
    struct e2e_response r;
    int rc;
    snprintf(path, sizeof path, "/Users/%s", id);
    rc = e2e_request(&srv, "DELETE", path, NULL, NULL, &r) == 0 && r.status == 204 ? 0 : -1;
    if (rc)
        fprintf(stderr, "delete %s: %ld %s\n", id, r.status, r.body);
    e2e_response_free(&r);
    return rc;
}

struct creator {
    int index;
    int failures;
};

/* Creator k makes every CREATORS-th user; one in five is a victim, so victims sit between
 * stable users in creation order. */
static void *create_all(void *arg)
{
    struct creator *c = arg;
    for (int i = c->index; i < STABLE + VICTIMS; i += CREATORS) {
        char name[64];
        if (i % 5 == 4) {
            snprintf(name, sizeof name, "victim-%04d@example.com", i / 5);
            if (create_user(name, victim_ids[i / 5], sizeof victim_ids[0]))
                c->failures++;
        } else {
            snprintf(name, sizeof name, "stable-%04d@example.com", i - i / 5);
            if (create_user(name, NULL, 0))
                c->failures++;
        }
    }
    return NULL;
}

static void *churn(void *arg)
{
    int *failures = arg;
    int v = 0, n = 0;
    while (!atomic_load(&reading_done)) {
        char name[64], id[64];
        if (v < VICTIMS && delete_user(victim_ids[v++]))
            (*failures)++;
        snprintf(name, sizeof name, "churn-%05d@example.com", n++);
        if (create_user(name, id, sizeof id) || (n % 2 == 0 && delete_user(id)))
            (*failures)++;
        atomic_fetch_add(&churn_ops, 1);
    }
    return NULL;
}

int main(void)
{
    static unsigned char seen_stable[STABLE];
    json_t *seen_ids = NULL;
    pthread_t th[CREATORS], churner;
    struct creator cr[CREATORS];
    int failures = 0, churn_failures = 0, pages = 0, ok = 0;
    char cursor[256] = "";
    bool more = true;

    e2e_global_init();
    if (e2e_server_start(&srv, NULL))
        return 1;
    seen_ids = json_object();
    for (int k = 0; k < CREATORS; k++) {
        cr[k] = (struct creator){k, 0};
        pthread_create(&th[k], NULL, create_all, &cr[k]);
    }
    for (int k = 0; k < CREATORS; k++) {
        pthread_join(th[k], NULL);
        failures += cr[k].failures;
    }
    if (failures) {
        fprintf(stderr, "FAIL: %d creations failed\n", failures);
        goto out;
    }

    pthread_create(&churner, NULL, churn, &churn_failures);
    while (more) {
        char path[400];
        struct e2e_response r;
        json_t *res, *item, *next;
        size_t i;

        snprintf(path, sizeof path, "/Users?count=%d&attributes=userName&cursor=%s", PAGE, cursor);
        if (e2e_request(&srv, "GET", path, NULL, NULL, &r) != 0 || r.status != 200 || !r.json) {
            fprintf(stderr, "FAIL: page %d: %ld %s %s\n", pages, r.status, r.error, r.body);
            e2e_response_free(&r);
            failures++;
            break;
        }
        pages++;
        res = json_object_get(r.json, "Resources");
        if (json_array_size(res) > PAGE) {
            fprintf(stderr, "FAIL: page %d has %zu items\n", pages, json_array_size(res));
            failures++;
        }
        json_array_foreach(res, i, item) {
            const char *id = json_string_value(json_object_get(item, "id"));
            const char *un = json_string_value(json_object_get(item, "userName"));
            int n;
            if (!id || !un) {
                failures++;
                continue;
            }
            if (json_object_get(seen_ids, id)) {
                fprintf(stderr, "FAIL: %s (%s) seen twice\n", id, un);
                failures++;
            }
            json_object_set_new(seen_ids, id, json_true());
            if (sscanf(un, "stable-%d@", &n) == 1 && n >= 0 && n < STABLE)
                seen_stable[n]++;
        }
        next = json_object_get(r.json, "nextCursor");
        more = json_is_string(next);
        if (more)
            snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        e2e_response_free(&r);
        /* Give the writer time between pages, so that deletions and creations really land
         * between the reader's requests. */
        nanosleep(&(struct timespec){0, 30 * 1000 * 1000}, NULL);
        if (pages > 1000) {
            fprintf(stderr, "FAIL: paging does not end\n");
            failures++;
            break;
        }
    }
    atomic_store(&reading_done, 1);
    pthread_join(churner, NULL);

    for (int n = 0; n < STABLE; n++) {
        if (seen_stable[n] != 1) {
            fprintf(stderr, "FAIL: stable-%04d seen %d times\n", n, seen_stable[n]);
            failures++;
        }
    }
    if (churn_failures) {
        fprintf(stderr, "FAIL: %d churn requests failed\n", churn_failures);
        failures++;
    }
    if (atomic_load(&churn_ops) < 50) {
        /* The writer must really have run while the reader paged. */
        fprintf(stderr, "FAIL: only %d churn operations overlapped the paging\n",
                atomic_load(&churn_ops));
        failures++;
    }
    fprintf(stderr, "cursor_consistency: %d pages, %d churn operations, %d failures\n", pages,
            atomic_load(&churn_ops), failures);
    ok = failures == 0;
out:
    json_decref(seen_ids);
    e2e_server_cleanup(&srv, ok);
    return ok ? 0 : 1;
}
