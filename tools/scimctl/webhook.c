/* scimctl webhook: a tenant's webhooks (change feed push delivery) through the admin API. */
#include "scimctl.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    fputs("NAME\n"
          "    scimctl webhook - webhooks: the change feed pushed to a URL\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl --url URL webhook list [--tenant T] [--json]\n"
          "    scimctl --url URL webhook create [--tenant T] --target U\n"
          "                                     [--event-types a,b] [--secret S] [--json]\n"
          "    scimctl --url URL webhook show [--tenant T] ID [--json]\n"
          "    scimctl --url URL webhook enable|disable [--tenant T] ID\n"
          "    scimctl --url URL webhook delete [--tenant T] ID\n"
          "    scimctl --url URL webhook deliveries [--tenant T] ID [--json]\n"
          "\n"
          "DESCRIPTION\n"
          "    Every change of a user or group (and every membership change) is an event of\n"
          "    the tenant's change feed; a webhook receives them as signed HTTP POSTs, in\n"
          "    order, at least once (docs/operations.md, \"Change feed and webhooks\").\n"
          "    list             the webhooks with their delivery state\n"
          "    create           a webhook for the target URL; the secret that signs the\n"
          "                     deliveries is generated unless given and printed once\n"
          "    show ID          one webhook\n"
          "    enable|disable   resume or pause deliveries (events wait meanwhile)\n"
          "    delete ID        remove it\n"
          "    deliveries ID    delivery state: last delivered seq, pending events, failed\n"
          "                     attempts, next attempt, last status and error\n"
          "\n"
          "OPTIONS\n"
          "    --target U\n"
          "        The receiver's http:// or https:// URL (--url names scimd itself).\n"
          "    --event-types a,b\n"
          "        Comma-separated event types (user.created, user.updated, user.deactivated,\n"
          "        user.reactivated, user.deleted, group.created, group.updated,\n"
          "        group.deleted, group.member_added, group.member_removed) or * (default).\n"
          "    --secret S\n"
          "        The signing secret (16 to 256 characters). Default: generated.\n"
          "    --tenant T\n"
          "        The tenant. Default: the admin token's own tenant.\n"
          "    --json\n"
          "        Print the raw JSON answer of the admin API.\n"
          "\n"
          "EXIT STATUS\n"
          "    0 success, 1 error, 2 usage.\n"
          "\n"
          "EXAMPLES\n"
          "    scimctl webhook create --target https://app.example.com/hooks/scim \\\n"
          "        --event-types user.deactivated,user.deleted\n"
          "    scimctl webhook deliveries 0b1c9d1e-3c1f-4e53-9a55-0c3a0e1c2b11\n",
          stdout);
}

static void show_one(const json_t *w)
{
    static const char *const keys[] = {"id", "url", "eventTypes", "enabled", "created", "secret"};
    static const char *const dkeys[] = {"lastDeliveredSeq", "latestSeq", "pending", "attempts",
                                        "nextAttempt", "lastAttempt", "lastSuccess",
                                        "lastStatus", "lastError"};
    const json_t *d = json_object_get(w, "delivery");
    scimctl_print_fields(w, keys, json_object_get(w, "secret") ? 6 : 5);
    scimctl_print_fields(d, dkeys, sizeof dkeys / sizeof dkeys[0]);
    if (json_object_get(w, "secret"))
        fputs("\nthe secret is shown only now: keep it to verify Scimd-Signature\n", stderr);
}

static void show_deliveries(const json_t *d)
{
    static const char *const keys[] = {"webhook", "lastDeliveredSeq", "latestSeq", "pending",
                                       "attempts", "nextAttempt", "lastAttempt", "lastSuccess",
                                       "lastStatus", "lastError", "leased"};
    scimctl_print_fields(d, keys, sizeof keys / sizeof keys[0]);
}

static void show_list(const json_t *list)
{
    static const char *const head[] = {"ID", "URL", "EVENTS", "ENABLED", "DELIVERED", "PENDING",
                                       "LAST ERROR"};
    struct scimctl_table t;
    const json_t *e;
    size_t i;
    if (scimctl_table_init(&t, 7, head) != 0)
        return;
    json_array_foreach(json_object_get(list, "items"), i, e) {
        char b[7][512];
        const json_t *d = json_object_get(e, "delivery");
        const char *row[7] = {
            scimctl_text(json_object_get(e, "id"), b[0], sizeof b[0]),
            scimctl_text(json_object_get(e, "url"), b[1], sizeof b[1]),
            scimctl_text(json_object_get(e, "eventTypes"), b[2], sizeof b[2]),
            scimctl_text(json_object_get(e, "enabled"), b[3], sizeof b[3]),
            scimctl_text(json_object_get(d, "lastDeliveredSeq"), b[4], sizeof b[4]),
            scimctl_text(json_object_get(d, "pending"), b[5], sizeof b[5]),
            scimctl_text(json_object_get(d, "lastError"), b[6], sizeof b[6]),
        };
        if (scimctl_table_add(&t, row) != 0)
            break;
    }
    scimctl_table_print(&t, stdout);
    scimctl_table_free(&t);
}

/* "a,b" -> ["a","b"] */
static json_t *split_types(const char *s)
{
    json_t *a = json_array();
    while (a && s && *s) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (len > 0 && json_array_append_new(a, json_stringn(s, len)) < 0) {
            json_decref(a);
            return NULL;
        }
        s += len + (comma ? 1 : 0);
    }
    return a;
}

int scimctl_webhook(struct scimctl *c, int argc, char **argv)
{
    static const struct scimctl_opt opts[] = {{"--tenant", 1}, {"--json", 0}, {"--target", 1},
                                              {"--url-target", 1}, {"--event-types", 1},
                                              {"--secret", 1}, {NULL, 0}};
    enum { O_TENANT, O_JSON, O_TARGET, O_TARGET2, O_TYPES, O_SECRET };
    const char *v[6] = {0}, *pos[2], *sub, *method = "GET", *done = NULL;
    char t[128], *path = NULL;
    json_t *body = NULL;
    int npos, rc;
    void (*show)(const json_t *) = NULL;

    if (argc < 2) {
        scimctl_errorf("webhook: missing subcommand (list, create, show, enable, disable, "
                       "delete, deliveries)");
        return SCIMCTL_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (scimctl_is_help(argv[i])) {
            help();
            return SCIMCTL_OK;
        }
    }
    sub = argv[1];
    if ((rc = scimctl_parse("webhook", argc, argv, 2, opts, v, pos, 2, &npos)) != 0)
        return rc;
    rc = SCIMCTL_USAGE;
    const char *target = v[O_TARGET] ? v[O_TARGET] : v[O_TARGET2];
    if (strcmp(sub, "list") == 0) {
        if (npos != 0) {
            scimctl_errorf("webhook list: unexpected argument: %s", pos[0]);
            goto out;
        }
        path = scim_strdup("/webhooks");
        show = show_list;
    } else if (strcmp(sub, "create") == 0) {
        if (npos != 0 || !target) {
            scimctl_errorf("webhook create: --target URL is required (and no other argument)");
            goto out;
        }
        json_t *types = v[O_TYPES] ? split_types(v[O_TYPES]) : json_pack("[s]", "*");
        body = types ? json_pack("{s:s, s:o}", "url", target, "eventTypes", types) : NULL;
        if (!body || (v[O_SECRET] && json_object_set_new(body, "secret", json_string(v[O_SECRET])) < 0)) {
            scimctl_errorf("out of memory");
            rc = SCIMCTL_ERROR;
            goto out;
        }
        path = scim_strdup("/webhooks");
        method = "POST";
        show = show_one;
    } else if (!strcmp(sub, "show") || !strcmp(sub, "delete") || !strcmp(sub, "deliveries") ||
               !strcmp(sub, "enable") || !strcmp(sub, "disable")) {
        if (npos != 1) {
            scimctl_errorf("webhook %s: expected exactly one ID", sub);
            goto out;
        }
        path = scimctl_path_id("/webhooks/", pos[0], strcmp(sub, "deliveries") == 0 ? "/deliveries" : "");
        if (!strcmp(sub, "show")) {
            show = show_one;
        } else if (!strcmp(sub, "deliveries")) {
            show = show_deliveries;
        } else if (!strcmp(sub, "delete")) {
            method = "DELETE";
            done = "webhook deleted";
        } else {
            method = "PATCH";
            body = json_pack("{s:b}", "enabled", strcmp(sub, "enable") == 0);
            done = strcmp(sub, "enable") == 0 ? "webhook enabled" : "webhook disabled";
        }
    } else {
        scimctl_errorf("webhook: unknown subcommand: %s", sub);
        goto out;
    }
    if (!c->url) {
        scimctl_errorf("webhook: needs --url (the admin API)");
        goto out;
    }
    rc = SCIMCTL_ERROR;
    if (!path) {
        scimctl_errorf("out of memory");
        goto out;
    }
    if (scimctl_resolve_tenant(c, v[O_TENANT], t, sizeof t) != 0)
        goto out;
    rc = scimctl_tenant_call(c, t, method, path, body, v[O_JSON] != NULL, show);
    if (rc == SCIMCTL_OK && done)
        fprintf(stderr, "%s\n", done);
out:
    json_decref(body);
    free(path);
    return rc;
}
