/* e2e_runner CASE.json: runs one end-to-end case file against a fresh scimd.
 *
 * Case file:
 *   {"name": "...", "source": "where the flow comes from (informational)",
 *    "server": {"args": [...], "env": [...]},                          (server optional)
 *    "steps": [ {"name": "...",
 *                "request": {"method": "GET", "path": "/Users?...", "headers": {...},
 *                            "body": <json, or a string sent raw>,
 *                            "auth": "default" | "none" | "<literal Authorization value>"},
 *                "expect": {"status": 201 | [200, 204],
 *                           "headers": {"Content-Type": "application/scim+json", "ETag": "$any"},
 *                           "body": <subset match>, "equals": <exact json>,
 *                           "absent": ["password", "Resources.members"],
 *                           "count": {"Resources": 2},
 *                           "log": "compat=op_case"},  (a substring of scimd's log after the step)
 *                "save": {"uid": "id", "etag": "header:ETag", "first": "Resources.0.id"}},
 *              {"name": "...", "restart": true} ] }          (graceful restart, same db)
 *
 * ${var} is replaced in paths, header values and every string of bodies and expectations;
 * a string that is exactly "${var}" becomes the saved JSON value itself (number, object...).
 * ${base} is the absolute base URL, ${token} the bearer token, ${token_basic} the base64 of
 * "e2e:<token>" (for Basic auth), ${root} the server root (the base URL without its SCIM
 * prefix: "${root}/admin/v1/tenants"). "server": {"token_scopes": "scim:read admin"} mints the
 * harness token with those scopes.
 *
 * Subset match: an expected object matches when each of its keys (case-sensitive) matches;
 * an expected array matches when each element matches a distinct actual element, in any
 * order; {"$ordered": [...]} requires the same length and element i to match element i.
 * Special strings: "$any" (present), "$absent", "$string", "$number", "$int", "$bool",
 * "$array", "$object", "$empty" (absent, null or []), "$falsy" (absent, null or false),
 * "$not:<text>" (present and not that string), "$re:<extended regex, case-insensitive>", "$contains:<text>" (case-insensitive).
 * Paths ("absent", "count", "save") are dotted; a numeric segment indexes an array and a
 * name applied to an array applies to every element ("absent" only). "absent" compares
 * attribute names case-insensitively.
 *
 * Checked automatically on every step: a response with content (any status but 204/304)
 * has Content-Type application/scim+json and a JSON body; 204/304 have no body; every
 * non-2xx answer is a SCIM Error (schemas has the Error URN, "status" is the HTTP status as a
 * string, "detail" is a string). For paths under /admin/v1: Content-Type application/json and
 * errors {"error": {"status": <int>, "code": <string>, "message": <string>}}. */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include "e2e.h"

#define ERROR_URN "urn:ietf:params:scim:api:messages:2.0:Error"

static struct e2e_server srv;
static json_t *vars;
static char why[4096]; /* the reason of the last mismatch */

static int log_contains(const char *needle);

/* ---- substitution ---- */

static char *base64(const char *in)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in);
    char *out = malloc(4 * (n / 3 + 1) + 1), *o = out;
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)in;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = tbl[(v >> 18) & 63];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static char *var_text(const char *name)
{
    json_t *v = json_object_get(vars, name);
    if (!v)
        return NULL;
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Returns a malloc'd copy of `s` with ${var} replaced, or NULL (message printed). */
static char *subst(const char *s)
{
    size_t cap = strlen(s) + 64, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = s; *p;) {
        const char *piece = p;
        size_t plen = 1;
        char *val = NULL;
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            if (end) {
                char name[128];
                snprintf(name, sizeof name, "%.*s", (int)(end - p - 2), p + 2);
                val = var_text(name);
                if (!val) {
                    fprintf(stderr, "runner: unknown variable ${%s} in '%s'\n", name, s);
                    free(out);
                    return NULL;
                }
                piece = val;
                plen = strlen(val);
                p = end + 1;
            } else {
                p++;
            }
        } else {
            p++;
        }
        if (len + plen + 1 > cap) {
            cap = 2 * (len + plen + 1);
            char *n = realloc(out, cap);
            if (!n) {
                free(val);
                free(out);
                return NULL;
            }
            out = n;
        }
        memcpy(out + len, piece, plen);
        len += plen;
        free(val);
    }
    out[len] = '\0';
    return out;
}

/* Deep copy of `j` with every string substituted; NULL on error. */
static json_t *subst_json(json_t *j)
{
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        size_t n = strlen(s);
        if (n > 3 && s[0] == '$' && s[1] == '{' && s[n - 1] == '}' && !strchr(s + 2, '$')) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(n - 3), s + 2);
            json_t *v = json_object_get(vars, name);
            if (v)
                return json_deep_copy(v);
        }
        char *t = subst(s);
        if (!t)
            return NULL;
        json_t *r = json_string(t);
        free(t);
        return r;
    }
    if (json_is_object(j)) {
        json_t *r = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            char *kk = subst(k);
            json_t *vv = subst_json(v);
            if (!kk || !vv) {
                free(kk);
                json_decref(vv);
                json_decref(r);
                return NULL;
            }
            json_object_set_new(r, kk, vv);
            free(kk);
        }
        return r;
    }
    if (json_is_array(j)) {
        json_t *r = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            json_t *vv = subst_json(v);
            if (!vv) {
                json_decref(r);
                return NULL;
            }
            json_array_append_new(r, vv);
        }
        return r;
    }
    return json_deep_copy(j);
}

/* ---- matching ---- */

static char *dump(const json_t *j)
{
    if (!j)
        return strdup("(absent)");
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
}

static int fail_at(const char *path, const json_t *exp, const json_t *act, const char *what)
{
    char *e = dump(exp), *a = dump(act);
    snprintf(why, sizeof why, "at %s: %s\n      expected: %.1500s\n      actual:   %.1500s",
             *path ? path : "(root)", what, e ? e : "?", a ? a : "?");
    free(e);
    free(a);
    return 0;
}

static int match(const json_t *exp, const json_t *act, const char *path);

static int fail_special(const char *s, const char *path, const json_t *act, const char *what)
{
    json_t *e = json_string(s);
    fail_at(path, e, act, what);
    json_decref(e);
    return 0;
}

static int match_special(const char *s, const json_t *act, const char *path, int *handled)
{
    *handled = 1;
    if (!strcmp(s, "$any"))
        return act ? 1 : fail_special(s, path, act, "value must be present");
    if (!strcmp(s, "$absent"))
        return !act ? 1 : fail_at(path, NULL, act, "value must be absent");
    /* RFC 7643 §2.5: unassigned, null and [] are the same state. */
    if (!strcmp(s, "$empty"))
        return (!act || json_is_null(act) || (json_is_array(act) && !json_array_size(act)))
                   ? 1 : fail_special(s, path, act, "must be absent, null or []");
    if (!strcmp(s, "$falsy"))
        return (!act || json_is_null(act) || json_is_false(act))
                   ? 1 : fail_special(s, path, act, "must be absent, null or false");
    if (!strncmp(s, "$not:", 5))
        return (act && !(json_is_string(act) && !strcmp(json_string_value(act), s + 5)))
                   ? 1 : fail_special(s, path, act, "must be present and differ");
    if (!act)
        return fail_special(s, path, act, "value missing");
    if (!strcmp(s, "$string"))
        return json_is_string(act) ? 1 : fail_special(s, path, act, "not a string");
    if (!strcmp(s, "$number"))
        return json_is_number(act) ? 1 : fail_special(s, path, act, "not a number");
    if (!strcmp(s, "$int"))
        return json_is_integer(act) ? 1 : fail_special(s, path, act, "not an integer");
    if (!strcmp(s, "$bool"))
        return json_is_boolean(act) ? 1 : fail_special(s, path, act, "not a boolean");
    if (!strcmp(s, "$array"))
        return json_is_array(act) ? 1 : fail_special(s, path, act, "not an array");
    if (!strcmp(s, "$object"))
        return json_is_object(act) ? 1 : fail_special(s, path, act, "not an object");
    if (!strncmp(s, "$contains:", 10)) {
        if (!json_is_string(act))
            return fail_special(s, path, act, "not a string");
        const char *hay = json_string_value(act), *needle = s + 10;
        size_t n = strlen(needle);
        for (const char *p = hay; *p; p++)
            if (!strncasecmp(p, needle, n))
                return 1;
        return n == 0 ? 1 : fail_special(s, path, act, "substring not found");
    }
    if (!strncmp(s, "$re:", 4)) {
        if (!json_is_string(act))
            return fail_special(s, path, act, "not a string");
        regex_t re;
        if (regcomp(&re, s + 4, REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0)
            return fail_special(s, path, act, "bad regex in the case file");
        int ok = regexec(&re, json_string_value(act), 0, NULL, 0) == 0;
        regfree(&re);
        return ok ? 1 : fail_special(s, path, act, "regex does not match");
    }
    *handled = 0;
    return 0;
}

static int numbers_equal(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    return json_number_value(a) == json_number_value(b);
}

/* Bipartite matching of expected elements onto distinct actual elements (Kuhn). */
static int augment(size_t i, const unsigned char *ok, size_t na, int *owner, unsigned char *seen)
{
    for (size_t j = 0; j < na; j++) {
        if (!ok[i * na + j] || seen[j])
            continue;
        seen[j] = 1;
        if (owner[j] < 0 || augment((size_t)owner[j], ok, na, owner, seen)) {
            owner[j] = (int)i;
            return 1;
        }
    }
    return 0;
}

static int match_unordered(const json_t *exp, const json_t *act, const char *path)
{
    size_t ne = json_array_size(exp), na = json_array_size(act);
    if (ne == 0)
        return 1;
    unsigned char *ok = calloc(ne * (na ? na : 1), 1);
    int *owner = malloc((na ? na : 1) * sizeof *owner);
    unsigned char *seen = malloc(na ? na : 1);
    int result = 1;
    if (!ok || !owner || !seen) {
        result = fail_at(path, exp, act, "out of memory");
        goto out;
    }
    char sub[1024];
    for (size_t i = 0; i < ne; i++) {
        int any = 0;
        for (size_t j = 0; j < na; j++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, j);
            ok[i * na + j] = (unsigned char)match(json_array_get(exp, i), json_array_get(act, j), sub);
            any |= ok[i * na + j];
        }
        if (!any) {
            char p2[1100];
            snprintf(p2, sizeof p2, "%s (expected element %zu)", path, i);
            result = fail_at(p2, json_array_get(exp, i), act, "no actual element matches");
            goto out;
        }
    }
    for (size_t j = 0; j < na; j++)
        owner[j] = -1;
    for (size_t i = 0; i < ne; i++) {
        memset(seen, 0, na ? na : 1);
        if (!augment(i, ok, na, owner, seen)) {
            result = fail_at(path, exp, act, "expected elements cannot match distinct actual elements");
            goto out;
        }
    }
out:
    free(ok);
    free(owner);
    free(seen);
    return result;
}

static int match(const json_t *exp, const json_t *act, const char *path)
{
    char sub[1024];
    if (json_is_string(exp) && json_string_value(exp)[0] == '$') {
        int handled;
        int r = match_special(json_string_value(exp), act, path, &handled);
        if (handled)
            return r;
    }
    if (!act)
        return fail_at(path, exp, act, "missing");
    if (json_is_object(exp) && json_object_size(exp) == 1 && json_object_get(exp, "$ordered")) {
        const json_t *list = json_object_get(exp, "$ordered");
        if (!json_is_array(act))
            return fail_at(path, exp, act, "not an array");
        if (json_array_size(list) != json_array_size(act))
            return fail_at(path, list, act, "ordered array: lengths differ");
        for (size_t i = 0; i < json_array_size(list); i++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            if (!match(json_array_get(list, i), json_array_get(act, i), sub))
                return 0;
        }
        return 1;
    }
    switch (json_typeof(exp)) {
    case JSON_OBJECT: {
        if (!json_is_object(act))
            return fail_at(path, exp, act, "not an object");
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)exp, k, v) {
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
            if (!match(v, json_object_get(act, k), sub))
                return 0;
        }
        return 1;
    }
    case JSON_ARRAY:
        if (!json_is_array(act))
            return fail_at(path, exp, act, "not an array");
        return match_unordered(exp, act, path);
    case JSON_INTEGER:
    case JSON_REAL:
        if (!json_is_number(act) || !numbers_equal(exp, act))
            return fail_at(path, exp, act, "numbers differ");
        return 1;
    default:
        if (!json_equal((json_t *)exp, (json_t *)act))
            return fail_at(path, exp, act, "values differ");
        return 1;
    }
}

/* Follows a dotted path with numeric array indexes; NULL when absent. */
static json_t *get_path(json_t *root, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = root;
    char *save = NULL;
    for (char *seg = strtok_r(buf, ".", &save); seg && cur; seg = strtok_r(NULL, ".", &save)) {
        if (json_is_array(cur)) {
            char *end;
            long idx = strtol(seg, &end, 10);
            cur = (*end || idx < 0) ? NULL : json_array_get(cur, (size_t)idx);
        } else {
            cur = json_object_get(cur, seg);
        }
    }
    return cur;
}

static json_t *get_ci(json_t *obj, const char *key)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (!strcasecmp(k, key))
            return v;
    }
    return NULL;
}

/* Checks that the dotted path does not exist; names on arrays apply to every element. */
static int check_absent(json_t *cur, const char *rest, const char *full)
{
    if (!cur)
        return 1;
    if (json_is_array(cur)) {
        char *end;
        long idx = strtol(rest, &end, 10);
        if (end != rest && (*end == '.' || !*end)) {
            json_t *el = json_array_get(cur, (size_t)idx);
            return *end ? check_absent(el, end + 1, full) : !el;
        }
        size_t i;
        json_t *el;
        json_array_foreach(cur, i, el) {
            if (!check_absent(el, rest, full))
                return 0;
        }
        return 1;
    }
    if (!json_is_object(cur))
        return 1;
    const char *dot = strchr(rest, '.');
    /* URN-qualified names contain dots only in "2.0": keep "urn:...:2.0:User" whole. */
    if (!strncasecmp(rest, "urn:", 4)) {
        const char *colon = strrchr(rest, ':');
        dot = colon ? strchr(colon, '.') : NULL;
    }
    char seg[512];
    snprintf(seg, sizeof seg, "%.*s", dot ? (int)(dot - rest) : (int)strlen(rest), rest);
    json_t *v = get_ci(cur, seg);
    if (!dot) {
        if (v) {
            char *a = dump(v);
            snprintf(why, sizeof why, "'%s' must be absent, found: %.1500s", full, a ? a : "?");
            free(a);
            return 0;
        }
        return 1;
    }
    return check_absent(v, dot + 1, full);
}

/* ---- steps ---- */

static int media_type_is(const char *ct, const char *want)
{
    if (!ct)
        return 0;
    size_t n = strlen(want);
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, want, n))
        return 0;
    ct += n;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* ${root}: the base URL without its path ("http://127.0.0.1:PORT"). */
static void set_root(void)
{
    char root[256];
    snprintf(root, sizeof root, "%s", srv.base_url);
    char *p = strstr(root, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    if (p)
        *p = '\0';
    json_object_set_new(vars, "root", json_string(root));
}

static int admin_request; /* the current step's path is under /admin/v1 */

static int admin_checks(const struct e2e_response *r)
{
    if (!media_type_is(r->content_type, "application/json")) {
        snprintf(why, sizeof why, "admin API: Content-Type must be application/json, got '%s'",
                 r->content_type ? r->content_type : "(none)");
        return 0;
    }
    if (!r->json) {
        snprintf(why, sizeof why, "the body is not JSON: %.500s", r->body);
        return 0;
    }
    if (r->status >= 200 && r->status < 300)
        return 1;
    json_t *e = json_object_get(r->json, "error");
    if (json_integer_value(json_object_get(e, "status")) != r->status ||
        !json_is_string(json_object_get(e, "code")) || !json_is_string(json_object_get(e, "message"))) {
        snprintf(why, sizeof why, "admin API error must be {\"error\":{status,code,message}}: %.500s",
                 r->body);
        return 0;
    }
    return 1;
}

static int auto_checks(const struct e2e_response *r)
{
    if (admin_request && r->status != 204 && r->status != 304)
        return admin_checks(r);
    if (r->status == 204 || r->status == 304) {
        if (r->body_len != 0) {
            snprintf(why, sizeof why, "a %ld response must have no body, got: %.500s", r->status,
                     r->body);
            return 0;
        }
        return 1;
    }
    if (!media_type_is(r->content_type, "application/scim+json")) {
        snprintf(why, sizeof why, "Content-Type must be application/scim+json, got '%s'",
                 r->content_type ? r->content_type : "(none)");
        return 0;
    }
    if (!r->json) {
        snprintf(why, sizeof why, "the body is not JSON: %.500s", r->body);
        return 0;
    }
    if (r->status >= 200 && r->status < 300)
        return 1;
    json_t *schemas = json_object_get(r->json, "schemas");
    int has = 0;
    size_t i;
    json_t *s;
    json_array_foreach(schemas, i, s) {
        if (json_is_string(s) && !strcmp(json_string_value(s), ERROR_URN))
            has = 1;
    }
    char st[16];
    snprintf(st, sizeof st, "%ld", r->status);
    json_t *status = json_object_get(r->json, "status");
    json_t *detail = json_object_get(r->json, "detail");
    if (!has || !json_is_string(status) || strcmp(json_string_value(status), st) ||
        !json_is_string(detail)) {
        snprintf(why, sizeof why,
                 "a %ld answer must be a SCIM Error (schemas has %s, \"status\":\"%s\" as a "
                 "string, \"detail\" present); got: %.800s",
                 r->status, ERROR_URN, st, r->body);
        return 0;
    }
    return 1;
}

static int check_status(json_t *want, long got)
{
    if (!want)
        return 1;
    if (json_is_integer(want)) {
        if (json_integer_value(want) == got)
            return 1;
    } else if (json_is_array(want)) {
        size_t i;
        json_t *v;
        json_array_foreach(want, i, v) {
            if (json_integer_value(v) == got)
                return 1;
        }
    }
    char *w = dump(want);
    snprintf(why, sizeof why, "status: expected %s, got %ld", w ? w : "?", got);
    free(w);
    return 0;
}

static int check_headers(json_t *want, const struct e2e_response *r)
{
    const char *name;
    json_t *v;
    json_object_foreach(want, name, v) {
        const char *got = e2e_response_header(r, name);
        const char *w = json_string_value(v);
        if (!w)
            continue;
        char path[300];
        snprintf(path, sizeof path, "header %s", name);
        if (w[0] == '$') {
            json_t *g = got ? json_string(got) : NULL;
            int ok = match(v, g, path);
            json_decref(g);
            if (!ok)
                return 0;
            continue;
        }
        int ok = !strcasecmp(name, "Content-Type") ? media_type_is(got, w) : (got && !strcmp(got, w));
        if (!ok) {
            snprintf(why, sizeof why, "header %s: expected '%s', got '%s'", name, w,
                     got ? got : "(absent)");
            return 0;
        }
    }
    return 1;
}

static int do_save(json_t *save, const struct e2e_response *r)
{
    const char *name;
    json_t *v;
    json_object_foreach(save, name, v) {
        const char *src = json_string_value(v);
        if (!src)
            continue;
        json_t *val = NULL;
        if (!strncasecmp(src, "header:", 7)) {
            const char *h = e2e_response_header(r, src + 7);
            val = h ? json_string(h) : NULL;
        } else if (!strcmp(src, "status")) {
            val = json_integer(r->status);
        } else {
            val = json_incref(get_path(r->json, src));
        }
        if (!val) {
            snprintf(why, sizeof why, "save %s: '%s' not found in the response", name, src);
            return 0;
        }
        json_object_set_new(vars, name, val);
    }
    return 1;
}

/* Registers every password a request body sends (a "password" attribute at any depth, or a
 * PATCH operation on the path "password"), so that the harness checks scimd never logs it. */
static void register_secrets(json_t *j)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v)
            register_secrets(v);
        return;
    }
    if (!json_is_object(j))
        return;
    const char *path = json_string_value(json_object_get(j, "path"));
    if (path && !strcasecmp(path, "password"))
        e2e_secret(&srv, json_string_value(json_object_get(j, "value")));
    json_object_foreach(j, k, v) {
        if (!strcasecmp(k, "password") && json_is_string(v))
            e2e_secret(&srv, json_string_value(v));
        else
            register_secrets(v);
    }
}

static int run_request(json_t *req, struct e2e_response *r)
{
    const char *method = json_string_value(json_object_get(req, "method"));
    const char *rawpath = json_string_value(json_object_get(req, "path"));
    const char *auth = json_string_value(json_object_get(req, "auth"));
    json_t *hdrs = json_object_get(req, "headers");
    json_t *bodyj = json_object_get(req, "body");
    char *path = NULL, *body = NULL;
    char *lines[64] = {0};
    size_t nl = 0;
    int rc = -1;

    if (!method)
        method = "GET";
    if (!rawpath) {
        snprintf(why, sizeof why, "request has no path");
        return -1;
    }
    if (!(path = subst(rawpath)))
        goto out;
    const char *name;
    json_t *v;
    json_object_foreach(hdrs, name, v) {
        if (nl >= 60)
            break;
        char *val = subst(json_string_value(v) ? json_string_value(v) : "");
        if (!val)
            goto out;
        size_t n = strlen(name) + strlen(val) + 3;
        lines[nl] = malloc(n);
        if (lines[nl]) {
            /* An empty value removes the header ("Accept:" sends no Accept). */
            snprintf(lines[nl], n, "%s:%s%s", name, *val ? " " : "", val);
            nl++;
        }
        free(val);
    }
    if (auth && strcmp(auth, "default")) {
        char *val = strcmp(auth, "none") ? subst(auth) : strdup("");
        if (!val)
            goto out;
        size_t n = strlen(val) + 20;
        lines[nl] = malloc(n);
        if (lines[nl]) {
            snprintf(lines[nl], n, "Authorization:%s%s", *val ? " " : "", val);
            nl++;
        }
        free(val);
    }
    lines[nl] = NULL;
    if (bodyj) {
        if (json_is_string(bodyj)) {
            body = subst(json_string_value(bodyj));
        } else {
            json_t *b = subst_json(bodyj);
            register_secrets(b);
            body = b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            json_decref(b);
        }
        if (!body)
            goto out;
    }
    printf("  %s %s\n", method, path);
    admin_request = strstr(path, "/admin/v1") != NULL;
    if (e2e_request(&srv, method, path, (const char *const *)lines, body, r) != 0) {
        snprintf(why, sizeof why, "transport error: %s", r->error);
        goto out;
    }
    rc = 0;
out:
    free(path);
    free(body);
    for (size_t i = 0; i < nl; i++)
        free(lines[i]);
    return rc;
}

static int run_step(json_t *step)
{
    if (json_is_true(json_object_get(step, "restart"))) {
        if (e2e_server_restart(&srv) != 0) {
            snprintf(why, sizeof why, "restart failed");
            return 0;
        }
        json_object_set_new(vars, "base", json_string(srv.base_url));
        set_root();
        return 1;
    }
    json_t *req = json_object_get(step, "request");
    json_t *expect_raw = json_object_get(step, "expect");
    json_t *expect = expect_raw ? subst_json(expect_raw) : json_object();
    struct e2e_response r;
    int ok = 0;
    if (!expect) {
        snprintf(why, sizeof why, "substitution failed in expect");
        return 0;
    }
    if (run_request(req, &r) != 0) {
        e2e_response_free(&r);
        json_decref(expect);
        return 0;
    }
    json_t *body = json_object_get(expect, "body");
    json_t *equals = json_object_get(expect, "equals");
    json_t *absent = json_object_get(expect, "absent");
    json_t *count = json_object_get(expect, "count");
    json_t *headers = json_object_get(expect, "headers");
    if (!check_status(json_object_get(expect, "status"), r.status))
        goto out;
    if (!auto_checks(&r))
        goto out;
    if (headers && !check_headers(headers, &r))
        goto out;
    if (body && !match(body, r.json, ""))
        goto out;
    if (equals && !json_equal(equals, r.json)) {
        fail_at("", equals, r.json, "body is not exactly equal");
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(absent, i, v) {
        if (json_is_string(v) && !check_absent(r.json, json_string_value(v), json_string_value(v)))
            goto out;
    }
    const char *k;
    json_object_foreach(count, k, v) {
        json_t *arr = get_path(r.json, k);
        if (!json_is_array(arr) || (json_int_t)json_array_size(arr) != json_integer_value(v)) {
            char *a = dump(arr);
            snprintf(why, sizeof why, "count of %s: expected %" JSON_INTEGER_FORMAT ", got %zu (%s): %.1500s",
                     k, json_integer_value(v), json_array_size(arr),
                     json_is_array(arr) ? "array" : "not an array", a ? a : "?");
            free(a);
            goto out;
        }
    }
    const char *log_needle = json_string_value(json_object_get(expect, "log"));
    if (log_needle && !log_contains(log_needle)) {
        snprintf(why, sizeof why, "scimd's log does not contain \"%s\"", log_needle);
        goto out;
    }
    if (!do_save(json_object_get(step, "save"), &r))
        goto out;
    ok = 1;
out:
    if (!ok) {
        fprintf(stderr, "    response: %ld, Content-Type: %s\n    body: %.2000s\n", r.status,
                r.content_type ? r.content_type : "(none)", r.body);
    }
    e2e_response_free(&r);
    json_decref(expect);
    return ok;
}

/* The request log line is written when the response has been sent, so it may appear a moment
 * after the client has the response: poll for up to two seconds. */
static int log_contains(const char *needle)
{
    for (int tries = 0; tries < 40; tries++) {
        FILE *f = fopen(srv.log, "r");
        char line[8192];
        int found = 0;
        if (f) {
            while (!found && fgets(line, sizeof line, f))
                found = strstr(line, needle) != NULL;
            fclose(f);
        }
        if (found)
            return 1;
        usleep(50000);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASE.json\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    e2e_global_init();
    json_error_t je;
    json_t *tc = json_load_file(argv[1], 0, &je);
    if (!tc) {
        fprintf(stderr, "%s:%d: %s\n", argv[1], je.line, je.text);
        return 2;
    }
    const char *cname = json_string_value(json_object_get(tc, "name"));
    json_t *server = json_object_get(tc, "server");
    const char *args[E2E_MAX_ARGS], *env[E2E_MAX_ARGS];
    struct e2e_opts opts = {args, 0, env, 0};
    size_t i;
    json_t *v;
    /* ${source} (the source tree) may appear in server arguments and environment, e.g. the
     * path of a configuration file the case needs. */
    const char *source = getenv("SCIMD_SOURCE_DIR");
    vars = json_object();
    json_object_set_new(vars, "source", json_string(source ? source : "."));
    json_t *server_subst = server ? subst_json(server) : json_object();
    json_array_foreach(json_object_get(server_subst, "args"), i, v) {
        if (opts.n_args < E2E_MAX_ARGS)
            args[opts.n_args++] = json_string_value(v);
    }
    json_array_foreach(json_object_get(server_subst, "env"), i, v) {
        if (opts.n_env < E2E_MAX_ARGS)
            env[opts.n_env++] = json_string_value(v);
    }
    const char *scopes = json_string_value(json_object_get(server_subst, "token_scopes"));
    if (scopes)
        setenv("E2E_TOKEN_SCOPES", scopes, 1);
    if (e2e_server_start(&srv, &opts) != 0) {
        fprintf(stderr, "FAIL %s: scimd did not start\n", cname ? cname : argv[1]);
        e2e_server_cleanup(&srv, 0);
        json_decref(server_subst);
        json_decref(tc);
        return 1;
    }
    json_object_set_new(vars, "base", json_string(srv.base_url));
    set_root();
    json_object_set_new(vars, "token", json_string(srv.token));
    char userpass[600];
    snprintf(userpass, sizeof userpass, "e2e:%s", srv.token);
    char *b64 = base64(userpass);
    json_object_set_new(vars, "token_basic", json_string(b64 ? b64 : ""));
    free(b64);
    printf("case %s: scimd at %s\n", cname ? cname : argv[1], srv.base_url);

    json_t *steps = json_object_get(tc, "steps");
    int ok = 1;
    json_array_foreach(steps, i, v) {
        const char *sname = json_string_value(json_object_get(v, "name"));
        printf("step %zu: %s\n", i + 1, sname ? sname : "");
        why[0] = '\0';
        if (!run_step(v)) {
            fprintf(stderr, "FAIL %s, step %zu \"%s\":\n    %s\n", cname ? cname : argv[1], i + 1,
                    sname ? sname : "", why);
            ok = 0;
            break;
        }
    }
    e2e_server_cleanup(&srv, ok);
    if (ok)
        printf("PASS %s (%zu steps)\n", cname ? cname : argv[1], json_array_size(steps));
    json_decref(vars);
    json_decref(server_subst);
    json_decref(tc);
    return ok ? 0 : 1;
}
