/* Which identity provider sent a request, for the provisioning log. The rules live in this one
 * table (docs/operations.md lists them): the first matching row wins, so specific signals
 * (a product's own User-Agent) come before dialect guesses (compatibility behaviours that only
 * one client needs). A guess is only a label for the log: nothing else depends on it. */
#include "api/internal.h"

#include <string.h>

#include "common/util.h"
#include "scim/compat.h"

enum rule_kind {
    UA_PREFIX,   /* User-Agent starts with text (case-insensitive) */
    UA_CONTAINS, /* User-Agent contains text (case-insensitive) */
    QUERY_FLAG,  /* the query string has the parameter name text */
    COMPAT_ANY,  /* the request needed one of the compatibility behaviours in mask */
};

struct client_rule {
    const char *client;
    enum rule_kind kind;
    const char *text;
    uint32_t mask;
};

static const struct client_rule rules[] = {
    /* Okta's provisioning agent and OIN integrations: "Okta SCIM Client 1.0.0" */
    {"okta", UA_PREFIX, "Okta", 0},
    /* authentik sends "authentik@<version>" */
    {"authentik", UA_CONTAINS, "authentik", 0},
    /* Entra ID's opt-in to the fixed 2020 behaviour: ?aadOptscim062020 on every request */
    {"entra", QUERY_FLAG, "aadOptscim062020", 0},
    {"entra", UA_CONTAINS, "Azure", 0},
    {"entra", UA_CONTAINS, "Microsoft", 0},
    {"jumpcloud", UA_CONTAINS, "JumpCloud", 0},
    {"onelogin", UA_CONTAINS, "OneLogin", 0},
    /* ssosync (Google Workspace to AWS IAM Identity Center) is a Go program that keeps the Go
     * default User-Agent; other Go clients would be labelled the same */
    {"ssosync", UA_CONTAINS, "ssosync", 0},
    {"ssosync", UA_PREFIX, "Go-http-client", 0},
    /* Entra without the flag: capitalised PATCH ops and "True"/"False" strings are its dialect */
    {"entra", COMPAT_ANY, NULL, SCIM_COMPAT_OP_CASE | SCIM_COMPAT_STRING_BOOLEAN},
};

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (scim_strncasecmp(p, needle, n) == 0)
            return true;
    return false;
}

static bool has_query_flag(const char *query, const char *name)
{
    size_t n = strlen(name);
    const char *p = query;
    while (p && *p) {
        size_t len = strcspn(p, "&");
        if (len >= n && scim_strncasecmp(p, name, n) == 0 && (len == n || p[n] == '='))
            return true;
        p += len;
        if (*p == '&')
            p++;
    }
    return false;
}

const char *api_client_identify(const struct scim_request *req, uint32_t compat)
{
    const char *ua = scim_request_header(req, "User-Agent");
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const struct client_rule *c = &rules[i];
        bool hit = false;
        switch (c->kind) {
        case UA_PREFIX:
            hit = ua && scim_strncasecmp(ua, c->text, strlen(c->text)) == 0;
            break;
        case UA_CONTAINS:
            hit = ua && contains_ci(ua, c->text);
            break;
        case QUERY_FLAG:
            hit = has_query_flag(req->raw_query, c->text);
            break;
        case COMPAT_ANY:
            hit = (compat & c->mask) != 0;
            break;
        }
        if (hit)
            return c->client;
    }
    return "unknown";
}
