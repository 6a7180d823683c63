/* scimctl's admin API client (--url mode): one libcurl easy request per call, JSON in and
 * out, the API's error message on stderr. The bearer token only ever goes into the
 * Authorization header: it is never printed, and it is wiped when scimctl ends. */
#include "scimctl.h"

#include "auth/token.h"
#include "common/util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESPONSE ((size_t)256 << 20)

static int curl_ready;

struct buf {
    char *data;
    size_t len;
    size_t cap;
    int overflow;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = cap > MAX_RESPONSE ? NULL : realloc(b->data, cap);
        if (!d) {
            b->overflow = 1;
            return 0; /* makes curl fail the transfer */
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* The message of an error body: the admin API's error.message, else a SCIM Error's detail
 * (the authentication layer answers 401 in SCIM form), else NULL. */
static const char *error_message(const json_t *j)
{
    const json_t *e = json_object_get(j, "error");
    const char *m = json_string_value(json_object_get(e, "message"));
    if (m && *m)
        return m;
    m = json_string_value(json_object_get(j, "detail"));
    return m && *m ? m : NULL;
}

static int request(struct scimctl *c, const char *method, const char *path, const json_t *body,
                   json_t **out, char **raw, long *status, int quiet)
{
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL, *tmp;
    struct buf resp = {0};
    char *url = NULL, *payload = NULL, *auth = NULL;
    char cerr[CURL_ERROR_SIZE] = "";
    long code = 0;
    int rc = -1;
    size_t n;

    if (out)
        *out = NULL;
    if (raw)
        *raw = NULL;
    if (status)
        *status = 0;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
            if (!quiet)
                scimctl_errorf("cannot initialise libcurl");
            return -1;
        }
        curl_ready = 1;
    }
    n = strlen(c->url) + strlen(path) + 1;
    url = malloc(n);
    auth = malloc(strlen(c->token) + 32);
    if (body)
        payload = json_dumps(body, JSON_COMPACT);
    h = curl_easy_init();
    if (!url || !auth || (body && !payload) || !h) {
        if (!quiet)
            scimctl_errorf("out of memory");
        goto out;
    }
    snprintf(url, n, "%s%s", c->url, path);
    snprintf(auth, strlen(c->token) + 32, "Authorization: Bearer %s", c->token);
    if (!(tmp = curl_slist_append(hdrs, auth)))
        goto oom;
    hdrs = tmp;
    if (!(tmp = curl_slist_append(hdrs, "Accept: application/json")))
        goto oom;
    hdrs = tmp;
    if (payload) {
        if (!(tmp = curl_slist_append(hdrs, "Content-Type: application/json")))
            goto oom;
        hdrs = tmp;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    /* Never follow redirects: the Authorization header must not travel to another host. */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (payload) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        if (!quiet) {
            if (resp.overflow)
                scimctl_errorf("%s %s: the answer is too large", method, path);
            else
                scimctl_errorf("cannot reach %s: %s", c->url,
                               cerr[0] ? cerr : curl_easy_strerror(cc));
        }
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (status)
        *status = code;
    json_t *j = NULL;
    if (resp.len > 0)
        j = json_loadb(resp.data, resp.len, JSON_DECODE_ANY, NULL);
    if (code < 200 || code > 299) {
        if (!quiet) {
            const char *m = error_message(j);
            if (m)
                scimctl_errorf("%s (HTTP %ld)", m, code);
            else
                scimctl_errorf("%s %s: HTTP %ld", method, path, code);
        }
        json_decref(j);
        goto out;
    }
    if (resp.len > 0 && !j) {
        if (!quiet)
            scimctl_errorf("%s %s: the answer is not JSON", method, path);
        goto out;
    }
    if (out)
        *out = j;
    else
        json_decref(j);
    if (raw) {
        *raw = resp.data ? resp.data : scim_strdup("");
        resp.data = NULL;
        if (!*raw) {
            if (out) {
                json_decref(*out);
                *out = NULL;
            }
            goto oom;
        }
    }
    rc = 0;
    goto out;
oom:
    if (!quiet)
        scimctl_errorf("out of memory");
out:
    if (auth) {
        scim_wipe(auth, strlen(auth));
        free(auth);
    }
    curl_slist_free_all(hdrs); /* libcurl does not wipe its copy; it is freed here */
    if (h)
        curl_easy_cleanup(h);
    free(url);
    free(payload);
    free(resp.data);
    return rc;
}

int scimctl_http(struct scimctl *c, const char *method, const char *path, const json_t *body,
                 json_t **out, char **raw, long *status)
{
    return request(c, method, path, body, out, raw, status, 0);
}

int scimctl_http_quiet(struct scimctl *c, const char *method, const char *path,
                       const json_t *body, json_t **out, char **raw, long *status)
{
    return request(c, method, path, body, out, raw, status, 1);
}

char *scimctl_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *o = malloc(n * 3 + 1), *p = o;
    if (!o)
        return NULL;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    *p = '\0';
    return o;
}

void scimctl_http_cleanup(struct scimctl *c)
{
    if (c->token) {
        scim_wipe(c->token, strlen(c->token));
        free(c->token);
        c->token = NULL;
    }
    if (curl_ready) {
        curl_global_cleanup();
        curl_ready = 0;
    }
}

int scimctl_resolve_tenant(struct scimctl *c, const char *given, char *out, size_t n)
{
    json_t *list = NULL;
    long status = 0;
    if (given) {
        if (!*given) {
            scimctl_errorf("--tenant is empty");
            return -1;
        }
        snprintf(out, n, "%s", given);
        return 0;
    }
    /* The API has no "who am I": an operator token lists every tenant, "default" among them
     * (its own); a tenant admin token sees only its own tenant. */
    if (scimctl_http_quiet(c, "GET", "/admin/v1/tenants?count=1000", NULL, &list, NULL,
                           &status) == 0) {
        const json_t *items = json_object_get(list, "items"), *t;
        const char *only = NULL;
        size_t i;
        int found_default = 0;
        json_array_foreach(items, i, t) {
            const char *name = json_string_value(json_object_get(t, "name"));
            if (name && strcmp(name, "default") == 0)
                found_default = 1;
            if (i == 0)
                only = name;
        }
        if (found_default) {
            snprintf(out, n, "default");
        } else if (json_array_size(items) == 1 && only) {
            snprintf(out, n, "%s", only);
        } else {
            json_decref(list);
            scimctl_errorf("cannot tell the token's tenant: give --tenant NAME");
            return -1;
        }
        json_decref(list);
        return 0;
    }
    /* Print the server's reason (bad token, no admin scope, disabled tenant, or a tenant
     * admin token, which may not list tenants). */
    if (scimctl_http(c, "GET", "/admin/v1/tenants?count=1000", NULL, NULL, NULL, &status) == 0)
        scimctl_errorf("cannot tell the token's tenant: give --tenant NAME");
    else if (status == 403)
        scimctl_errorf("a tenant's own admin token must name its tenant: give --tenant NAME");
    return -1;
}

int scimctl_tenant_call(struct scimctl *c, const char *tenant, const char *method,
                        const char *suffix, const json_t *body, int as_json,
                        void (*show)(const json_t *))
{
    char *t = scimctl_escape(tenant), *path = NULL, *raw = NULL;
    json_t *j = NULL;
    int rc = SCIMCTL_ERROR;
    size_t n;
    if (!t) {
        scimctl_errorf("out of memory");
        return SCIMCTL_ERROR;
    }
    n = strlen("/admin/v1/tenants/") + strlen(t) + strlen(suffix) + 1;
    path = malloc(n);
    if (!path) {
        scimctl_errorf("out of memory");
        goto out;
    }
    snprintf(path, n, "/admin/v1/tenants/%s%s", t, suffix);
    if (scimctl_http(c, method, path, body, &j, &raw, NULL) != 0)
        goto out;
    if (as_json) {
        rc = scimctl_print_raw(raw);
    } else {
        if (show)
            show(j);
        rc = fflush(stdout) == 0 ? SCIMCTL_OK : SCIMCTL_ERROR;
    }
out:
    json_decref(j);
    free(raw);
    free(path);
    free(t);
    return rc;
}
