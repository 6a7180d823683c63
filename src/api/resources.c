/* /Users and /Groups: create, read, list/search, replace, patch, delete. */
#include "api/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "common/buf.h"
#include "common/jsondump.h"
#include "common/util.h"
#include "scim/compat.h"
#include "scim/patch.h"

/* Output options shared by every handler that returns resources. */
struct output {
    const struct scim_resource_type *rt;
    struct scim_attrlist *attributes;
    struct scim_attrlist *excluded;
    unsigned flags; /* SCIM_STORE_MEMBERS / SCIM_STORE_GROUPS when they will be returned */
};

static void output_release(struct output *o)
{
    scim_attrlist_free(o->attributes);
    scim_attrlist_free(o->excluded);
    o->attributes = o->excluded = NULL;
}

static int output_init(struct api_req *r, const struct scim_resource_type *rt, struct output *o,
                       struct scim_err *err)
{
    memset(o, 0, sizeof *o);
    o->rt = rt;
    if (scim_attrlist_parse(r->api->reg, rt, r->q.attributes, &o->attributes, &r->compat, err) ||
        scim_attrlist_parse(r->api->reg, rt, r->q.excluded, &o->excluded, &r->compat, err)) {
        output_release(o);
        return -1;
    }
    if (rt->kind == SCIM_RT_GROUP &&
        scim_projection_includes(rt, o->attributes, o->excluded, "members"))
        o->flags |= SCIM_STORE_MEMBERS;
    if (rt->kind == SCIM_RT_USER && scim_projection_includes(rt, o->attributes, o->excluded, "groups"))
        o->flags |= SCIM_STORE_GROUPS;
    return 0;
}

/* Appends the client's view of a stored resource (finished and projected) to b as JSON text;
 * -1 on out of memory. */
static int render(struct api_req *r, const struct output *o, json_t *resource, struct scim_buf *b)
{
    return scim_render(b, o->rt, resource, o->attributes, o->excluded, r->base_url);
}

static void respond_resource(struct api_req *r, const struct output *o, int status, json_t *resource)
{
    struct scim_buf body;
    struct scim_err e;

    api_plog_note(r, resource, true);
    scim_buf_init(&body, 0);
    if (render(r, o, resource, &body) < 0) {
        scim_buf_release(&body);
        scim_err_clear(&e);
        scim_err_nomem(&e);
        api_error(r, &e);
        return;
    }
    api_etag_header(r, resource);
    const char *id = json_string_value(json_object_get(resource, "id"));
    if (status == 201 && id) {
        struct scim_buf loc;
        scim_buf_init(&loc, 0);
        if (scim_resource_location(o->rt, r->base_url, id, &loc) == 0)
            scim_response_header(r->resp, "Location", scim_buf_str(&loc));
        scim_buf_release(&loc);
    }
    api_text_take(r, status, &body);
}

/* The doc part of a full resource: everything but schemas, id, meta, members and groups. */
static json_t *doc_of(json_t *resource)
{
    json_t *doc = json_deep_copy(resource);
    if (!doc)
        return NULL;
    json_object_del(doc, "schemas");
    json_object_del(doc, "id");
    json_object_del(doc, "meta");
    json_object_del(doc, "members");
    json_object_del(doc, "groups");
    return doc;
}

/* If-Match: `*` or a list of ETags, one of which must be the current version (RFC 7232). */
static int check_if_match(struct api_req *r, json_t *current, struct scim_err *err)
{
    const char *im = scim_request_header(r->req, "If-Match");
    const char *ver;
    int64_t cur;

    if (!im)
        return 0;
    if (strchr(im, '*'))
        return 0;
    ver = json_string_value(json_object_get(json_object_get(current, "meta"), "version"));
    cur = scim_store_etag_version(ver);
    for (const char *p = im; *p;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        char one[64];
        size_t len;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        len = (size_t)(end - p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len < sizeof one) {
            memcpy(one, p, len);
            one[len] = '\0';
            if (cur >= 0 && scim_store_etag_version(one) == cur)
                return 0;
        }
        p = comma ? comma + 1 : end;
    }
    return scim_err_set(err, 412, NULL,
                        "The resource has changed: If-Match does not match its current version %s.",
                        ver ? ver : "");
}

static bool if_none_match_hits(struct api_req *r, json_t *resource)
{
    const char *inm = scim_request_header(r->req, "If-None-Match");
    const char *ver = json_string_value(json_object_get(json_object_get(resource, "meta"), "version"));
    int64_t cur = scim_store_etag_version(ver);
    if (!inm || cur < 0)
        return false;
    if (strchr(inm, '*'))
        return true;
    for (const char *p = inm; *p; p++) {
        if (*p == '"' || (p[0] == 'W' && p[1] == '/')) {
            const char *start = p;
            const char *end = strchr(p[0] == 'W' ? p + 3 : p + 1, '"');
            char one[64];
            size_t len;
            if (!end)
                break;
            len = (size_t)(end - start + 1);
            if (len < sizeof one) {
                memcpy(one, start, len);
                one[len] = '\0';
                if (scim_store_etag_version(one) == cur)
                    return true;
            }
            p = end;
        }
    }
    return false;
}

static int check_member_count(struct api_req *r, json_t *members, struct scim_err *err)
{
    if (members && json_array_size(members) > r->api->cfg.max_members_per_request)
        return scim_err_set(err, 400, SCIM_TYPE_TOO_MANY,
                            "A request may carry at most %zu member values.",
                            r->api->cfg.max_members_per_request);
    return 0;
}

static int hash_password(struct scim_input *in, char hash[SCIM_PASSWORD_HASH_MAX],
                         struct scim_err *err)
{
    int rc;
    if (!in->password)
        return 0;
    rc = scim_password_hash(in->password, hash);
    scim_wipe(in->password, strlen(in->password));
    if (rc)
        return scim_err_internal(err, "password hashing failed");
    return 0;
}

/* --- create -------------------------------------------------------------------------------- */

static void do_create(struct api_req *r, const struct scim_resource_type *rt)
{
    struct scim_err err;
    struct scim_input in = {0};
    struct output o;
    json_t *body = NULL, *res = NULL;
    char pwhash[SCIM_PASSWORD_HASH_MAX];
    int skipped = 0;
    bool have_output = false;

    scim_err_clear(&err);
    if (output_init(r, rt, &o, &err))
        goto fail;
    have_output = true;
    if (api_parse_body(r, &body, &err))
        goto fail;
    api_plog_note(r, body, false);
    if (scim_resource_normalize(r->api->reg, rt, body, SCIM_NORM_CREATE, &in, &r->compat, &err) ||
        api_compat_check(r, 0, &err) ||
        check_member_count(r, in.members, &err) || hash_password(&in, pwhash, &err))
        goto fail;
    struct scim_store_wopts w;
    api_wopts(r, &w);
    if (scim_store_create_ex(r->api->st, r->tenant_id, rt->kind, in.doc, in.members,
                             in.password ? pwhash : NULL, &w, o.flags, &res, &skipped, &err))
        goto fail;
    if (skipped)
        r->compat |= SCIM_COMPAT_UNKNOWN_MEMBER_SKIPPED;
    respond_resource(r, &o, 201, res);
    goto out;
fail:
    api_error(r, &err);
out:
    scim_wipe(pwhash, sizeof pwhash);
    if (have_output)
        output_release(&o);
    scim_input_release(&in);
    json_decref(body);
    json_decref(res);
}

/* --- read ---------------------------------------------------------------------------------- */

static void do_get(struct api_req *r, const struct scim_resource_type *rt, const char *id)
{
    struct scim_err err;
    struct output o;
    json_t *res = NULL;

    scim_err_clear(&err);
    if (output_init(r, rt, &o, &err)) {
        api_error(r, &err);
        return;
    }
    if (scim_store_get(r->api->st, r->tenant_id, rt->kind, id, o.flags, &res, &err)) {
        api_error(r, &err);
    } else if (if_none_match_hits(r, res)) {
        api_etag_header(r, res);
        r->resp->status = 304;
        r->resp->content_type = NULL;
    } else {
        respond_resource(r, &o, 200, res);
    }
    json_decref(res);
    output_release(&o);
}

/* --- list ---------------------------------------------------------------------------------- */

static bool filter_has_bare(const struct scim_filter *f)
{
    if (!f)
        return false;
    if (f->val.bare)
        return true;
    return filter_has_bare(f->left) || filter_has_bare(f->right);
}

struct list_params {
    struct scim_filter *filter;
    struct scim_path *sort;
    struct scim_store_query q;
};

static void list_params_release(struct list_params *lp)
{
    scim_filter_free(lp->filter);
    scim_path_free(lp->sort);
    memset(lp, 0, sizeof *lp);
}

static int list_params_init(struct api_req *r, struct list_params *lp, struct scim_err *err)
{
    const struct scim_api *api = r->api;
    struct scim_filter_limits lim = {api->cfg.max_filter_length, api->cfg.max_filter_depth};

    memset(lp, 0, sizeof *lp);
    if (r->q.filter && *r->q.filter) {
        if (scim_filter_parse(r->q.filter, &lim, api->reg, &lp->filter, err))
            return -1;
        if (filter_has_bare(lp->filter))
            r->compat |= SCIM_COMPAT_UNQUOTED_FILTER_VALUE;
    }
    if (r->q.sort_by && *r->q.sort_by) {
        if (scim_path_parse(r->q.sort_by, &lim, api->reg, &lp->sort, err) || lp->sort->filter) {
            if (err->status == 500)
                return -1; /* out of memory: not the client's fault */
            scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                         "sortBy must name one attribute, such as userName or name.familyName.");
            return -1;
        }
        lp->q.sort_by = &lp->sort->a;
    }
    if (r->q.sort_order && *r->q.sort_order) {
        if (scim_streq_ci(r->q.sort_order, "descending"))
            lp->q.descending = true;
        else if (!scim_streq_ci(r->q.sort_order, "ascending"))
            return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                                "sortOrder must be \"ascending\" or \"descending\".");
    }
    lp->q.filter = lp->filter;
    lp->q.start_index = r->q.has_start_index ? r->q.start_index : 1;
    if (lp->q.start_index < 1) {
        lp->q.start_index = 1;
        r->compat |= SCIM_COMPAT_START_INDEX_ZERO;
    }
    lp->q.count = r->q.has_count ? r->q.count : api->cfg.default_count;
    if (lp->q.count < 0)
        lp->q.count = 0; /* RFC 7644 §3.4.2.4: a negative count is 0 */
    if (lp->q.count > api->cfg.max_results)
        lp->q.count = api->cfg.max_results;
    return api_compat_check(r, 0, err);
}

/* A ListResponse without its resources: "Resources" is a placeholder (null) that
 * list_text replaces with the rendered resources, in its place among the members. */
static json_t *list_response(int64_t total, int64_t start, size_t n)
{
    return json_pack("{s:[s],s:I,s:I,s:I,s:n}", "schemas", SCIM_MSG_LIST, "totalResults",
                     (json_int_t)total, "startIndex", (json_int_t)start, "itemsPerPage",
                     (json_int_t)n, "Resources");
}

/* Renders a page of stored resources into `items` (comma-separated JSON texts); -1 on out of
 * memory. */
static int render_all(struct api_req *r, const struct output *o, json_t *resources,
                      struct scim_buf *items)
{
    size_t i;
    json_t *item;
    json_array_foreach(resources, i, item) {
        if ((items->len && scim_buf_addc(items, ',') < 0) || render(r, o, item, items) < 0)
            return -1;
    }
    return 0;
}

/* The text of the ListResponse `env` with `items` as its Resources; -1 on out of memory. */
static int list_text(json_t *env, const struct scim_buf *items, struct scim_buf *out)
{
    const char *key;
    json_t *v;
    bool first = true;
    if (scim_buf_addc(out, '{') < 0)
        return -1;
    json_object_foreach(env, key, v) {
        if ((!first && scim_buf_addc(out, ',') < 0) ||
            scim_json_dump_string(out, key, strlen(key)) < 0 || scim_buf_addc(out, ':') < 0)
            return -1;
        first = false;
        if (strcmp(key, "Resources") == 0
                ? (scim_buf_addc(out, '[') < 0 || scim_buf_add(out, items->data, items->len) < 0 ||
                   scim_buf_addc(out, ']') < 0)
                : scim_json_dump_append(out, v) < 0)
            return -1;
    }
    return scim_buf_addc(out, '}');
}

static void do_list(struct api_req *r, const struct scim_resource_type *rt)
{
    struct scim_err err;
    struct output o;
    struct list_params lp;
    struct scim_store_page page;
    json_t *out = NULL;
    struct scim_buf items, body;

    scim_buf_init(&items, 0);
    scim_buf_init(&body, 0);
    memset(&page, 0, sizeof page);
    scim_err_clear(&err);
    if (output_init(r, rt, &o, &err)) {
        api_error(r, &err);
        return; /* nothing to release yet: the buffers hold nothing */
    }
    if (list_params_init(r, &lp, &err) || api_cursor_apply(r, (int)rt->kind, &lp.q, &err))
        goto fail;
    lp.q.flags = o.flags;
    if (scim_store_list(r->api->st, r->tenant_id, rt->kind, &lp.q, &page, &err))
        goto fail;
    if (render_all(r, &o, page.resources, &items) ||
        !(out = list_response(page.total, lp.q.start_index, json_array_size(page.resources))) ||
        api_cursor_finish(r, (int)rt->kind, &lp.q, &page, out) || list_text(out, &items, &body)) {
        json_decref(out);
        scim_err_nomem(&err);
        goto fail;
    }
    json_decref(out);
    api_text_take(r, 200, &body);
    goto out;
fail:
    api_error(r, &err);
out:
    scim_buf_release(&items);
    scim_buf_release(&body);
    json_decref(page.resources);
    list_params_release(&lp);
    output_release(&o);
}

/* POST /.search: one ListResponse over Users then Groups. A filter naming an attribute that a
 * resource type does not have matches nothing of that type. */
void api_root_search(struct api_req *r)
{
    struct scim_err err;
    json_t *body = NULL, *out = NULL;
    struct list_params lp;
    struct scim_buf items, text;
    size_t n_items = 0;
    int64_t total = 0, start, want, skip;
    bool any_ok = false;
    struct scim_err first_err;

    scim_err_clear(&err);
    scim_err_clear(&first_err);
    scim_buf_init(&items, 0);
    scim_buf_init(&text, 0);
    memset(&lp, 0, sizeof lp);
    if (api_parse_body(r, &body, &err) || api_query_from_search(r, body, &err) ||
        list_params_init(r, &lp, &err))
        goto fail;
    if (r->q.cursor) {
        scim_err_set(&err, 400, SCIM_TYPE_INVALID_VALUE,
                     "cursor paging is available per resource type (/Users, /Groups), not on /.search.");
        goto fail;
    }
    start = lp.q.start_index;
    want = lp.q.count;
    skip = start - 1;
    for (int k = 0; k < SCIM_RT_COUNT; k++) {
        const struct scim_resource_type *rt = scim_registry_rt(r->api->reg, (enum scim_rtype)k);
        struct output o;
        struct scim_store_page page = {0, NULL, 0, 0, false};
        struct scim_store_query q = lp.q;
        struct scim_err e;

        scim_err_clear(&e);
        if (output_init(r, rt, &o, &err))
            goto fail;
        q.flags = o.flags;
        q.start_index = skip + 1;
        q.count = want - (int64_t)n_items;
        if (scim_store_list(r->api->st, r->tenant_id, rt->kind, &q, &page, &e)) {
            output_release(&o);
            if (e.status != 400) {
                err = e;
                goto fail;
            }
            if (!first_err.status)
                first_err = e;
            continue;
        }
        any_ok = true;
        total += page.total;
        skip = skip > page.total ? skip - page.total : 0;
        n_items += json_array_size(page.resources);
        if (render_all(r, &o, page.resources, &items)) {
            json_decref(page.resources);
            output_release(&o);
            scim_err_nomem(&err);
            goto fail;
        }
        json_decref(page.resources);
        output_release(&o);
    }
    if (!any_ok) {
        err = first_err;
        goto fail;
    }
    out = list_response(total, start, n_items);
    if (!out || list_text(out, &items, &text)) {
        scim_err_nomem(&err);
        goto fail;
    }
    api_text_take(r, 200, &text);
    goto out;
fail:
    api_error(r, &err);
out:
    list_params_release(&lp);
    scim_buf_release(&items);
    scim_buf_release(&text);
    json_decref(out);
    json_decref(body);
}

/* --- replace ------------------------------------------------------------------------------- */

struct replace_ctx {
    struct api_req *r;
    const struct scim_resource_type *rt;
    struct scim_input *in;
    const char *pwhash;
};

static int replace_cb(void *vctx, json_t *current, struct scim_store_change *chg,
                      struct scim_err *err)
{
    struct replace_ctx *c = vctx;
    json_t *old_doc;
    int rc;

    api_plog_note(c->r, current, false);
    if (check_if_match(c->r, current, err))
        return -1;
    old_doc = doc_of(current);
    if (!old_doc)
        return scim_err_nomem(err);
    rc = scim_resource_check_immutable(c->rt, old_doc, c->in->doc, err);
    if (rc == 0 && c->rt->kind == SCIM_RT_USER)
        rc = api_policy_user_update(c->r, old_doc, c->in->doc, err);
    if (rc == 0 && !json_equal(old_doc, c->in->doc)) {
        chg->modified = true;
        chg->doc = json_incref(c->in->doc);
    }
    json_decref(old_doc);
    if (rc)
        return -1;
    if (c->pwhash) {
        chg->modified = true;
        chg->password_hash = c->pwhash;
    }
    /* A PUT without "members" leaves the membership as it is; with "members" (even []) it
     * replaces it. */
    if (c->in->members) {
        chg->modified = true;
        chg->members_clear = true;
        chg->members_add = c->in->members;
    }
    return 0;
}

static void do_replace(struct api_req *r, const struct scim_resource_type *rt, const char *id)
{
    struct scim_err err;
    struct scim_input in = {0};
    struct output o;
    json_t *body = NULL, *res = NULL;
    char pwhash[SCIM_PASSWORD_HASH_MAX];
    struct replace_ctx ctx = {r, rt, &in, NULL};

    scim_err_clear(&err);
    if (output_init(r, rt, &o, &err)) {
        api_error(r, &err);
        return;
    }
    if (api_parse_body(r, &body, &err))
        goto fail;
    api_plog_note(r, body, false);
    if (scim_resource_normalize(r->api->reg, rt, body, SCIM_NORM_REPLACE, &in, &r->compat, &err) ||
        api_compat_check(r, 0, &err) ||
        check_member_count(r, in.members, &err) || hash_password(&in, pwhash, &err))
        goto fail;
    ctx.pwhash = in.password ? pwhash : NULL;
    struct scim_store_wopts w;
    api_wopts(r, &w);
    if (scim_store_update_ex(r->api->st, r->tenant_id, rt->kind, id, o.flags, replace_cb, &ctx, &w,
                             &res, &err))
        goto fail;
    respond_resource(r, &o, 200, res);
    goto out;
fail:
    api_error(r, &err);
out:
    scim_wipe(pwhash, sizeof pwhash);
    output_release(&o);
    scim_input_release(&in);
    json_decref(body);
    json_decref(res);
}

/* --- patch --------------------------------------------------------------------------------- */

struct patch_ctx {
    struct api_req *r;
    const struct scim_resource_type *rt;
    json_t *body;
    struct scim_member_change mc;
    struct scim_patch_result res;
    char pwhash[SCIM_PASSWORD_HASH_MAX];
};

static int patch_cb(void *vctx, json_t *current, struct scim_store_change *chg,
                    struct scim_err *err)
{
    struct patch_ctx *c = vctx;
    const struct scim_api *api = c->r->api;
    struct scim_patch_opts opts = {
        .reg = api->reg,
        .rt = c->rt,
        .limits = {api->cfg.max_filter_length, api->cfg.max_filter_depth},
        .max_operations = api->cfg.max_operations,
    };

    api_plog_note(c->r, current, false);
    if (check_if_match(c->r, current, err))
        return -1;
    /* The store may call us again after a conflict: start from a clean slate each time. */
    scim_member_change_release(&c->mc);
    scim_patch_result_release(&c->res);
    json_t *before = NULL;
    if (c->rt->kind == SCIM_RT_USER && api_policy_user_active(c->r) && !(before = doc_of(current)))
        return scim_err_nomem(err);
    if (scim_patch_apply(&opts, current, c->body, c->rt->kind == SCIM_RT_GROUP ? &c->mc : NULL,
                         &c->res, err)) {
        json_decref(before);
        return -1;
    }
    if (before) {
        json_t *after = doc_of(current);
        int prc = after ? api_policy_user_update(c->r, before, after, err) : scim_err_nomem(err);
        json_decref(before);
        if (prc == 0) {
            /* email_changes "ignore" may have restored the old e-mails in `after` */
            json_t *em = json_object_get(after, "emails");
            if (!em)
                json_object_del(current, "emails");
            else if (json_object_set(current, "emails", em) < 0)
                prc = scim_err_nomem(err);
        }
        json_decref(after);
        if (prc)
            return -1;
    }
    if (check_member_count(c->r, c->mc.add, err) || check_member_count(c->r, c->mc.remove, err) ||
        api_compat_check(c->r, c->res.compat, err))
        return -1;
    if (!c->res.modified)
        return 0;
    chg->modified = true;
    chg->doc = doc_of(current);
    if (!chg->doc)
        return scim_err_nomem(err);
    chg->members_clear = c->mc.clear;
    chg->members_add = c->mc.add;
    chg->members_remove = c->mc.remove;
    if (c->res.password) {
        /* Password sync (Okta): hashed here, never kept in the doc. */
        if (scim_password_hash(c->res.password, c->pwhash))
            return scim_err_internal(err, "password hashing failed");
        chg->password_hash = c->pwhash;
    }
    return 0;
}

/* RFC 7240 "Prefer: return=representation" asks for the resource in the response. */
static bool wants_representation(const struct api_req *r)
{
    const char *p = scim_request_header(r->req, "Prefer");
    return p && strstr(p, "return=representation") != NULL;
}

static void do_patch(struct api_req *r, const struct scim_resource_type *rt, const char *id)
{
    struct scim_err err;
    struct output o;
    json_t *res = NULL;
    struct patch_ctx ctx;
    unsigned flags;
    bool body_wanted = r->q.attributes || r->q.excluded || wants_representation(r);

    memset(&ctx, 0, sizeof ctx);
    ctx.r = r;
    ctx.rt = rt;
    scim_err_clear(&err);
    if (output_init(r, rt, &o, &err)) {
        api_error(r, &err);
        return;
    }
    if (api_parse_body(r, &ctx.body, &err))
        goto fail;
    flags = body_wanted ? o.flags : 0;
    if (rt->kind == SCIM_RT_GROUP && scim_patch_needs_members(ctx.body))
        flags |= SCIM_STORE_LOAD_MEMBERS;
    struct scim_store_wopts w;
    api_wopts(r, &w);
    if (scim_store_update_ex(r->api->st, r->tenant_id, rt->kind, id, flags, patch_cb, &ctx, &w, &res,
                             &err))
        goto fail;
    r->compat |= ctx.res.compat;
    if (body_wanted) {
        respond_resource(r, &o, 200, res);
    } else {
        api_etag_header(r, res);
        r->resp->status = 204;
        r->resp->content_type = NULL;
    }
    goto out;
fail:
    r->compat |= ctx.res.compat;
    api_error(r, &err);
out:
    scim_wipe(ctx.pwhash, sizeof ctx.pwhash);
    scim_member_change_release(&ctx.mc);
    scim_patch_result_release(&ctx.res);
    output_release(&o);
    json_decref(ctx.body);
    json_decref(res);
}

/* --- delete -------------------------------------------------------------------------------- */

static void do_delete(struct api_req *r, const struct scim_resource_type *rt, const char *id)
{
    struct scim_err err;
    const char *im = scim_request_header(r->req, "If-Match");
    int64_t expected = -1;

    scim_err_clear(&err);
    if (im && !strchr(im, '*')) {
        expected = scim_store_etag_version(im);
        if (expected < 0) {
            scim_err_set(&err, 412, NULL, "If-Match does not name a version of this resource.");
            api_error(r, &err);
            return;
        }
    }
    struct scim_store_wopts w;
    api_wopts(r, &w);
    if (scim_store_delete_ex(r->api->st, r->tenant_id, rt->kind, id, expected, 0, &w, &err)) {
        api_error(r, &err);
        return;
    }
    r->resp->status = 204;
    r->resp->content_type = NULL;
}

/* --- dispatch ------------------------------------------------------------------------------ */

static bool is(const struct api_req *r, const char *m)
{
    return strcmp(r->req->method, m) == 0;
}

void api_resource_dispatch(struct api_req *r, enum scim_rtype kind, const char *id, bool search)
{
    const struct scim_resource_type *rt = scim_registry_rt(r->api->reg, kind);
    struct scim_err cerr;

    r->plog_rtype = kind == SCIM_RT_USER ? "User" : "Group";
    if (id)
        snprintf(r->plog_id, sizeof r->plog_id, "%s", id);
    scim_err_clear(&cerr);
    if (api_compat_check(r, 0, &cerr)) { /* endpoint_case, plus_as_space */
        api_error(r, &cerr);
        return;
    }
    if (search) {
        struct scim_err err;
        json_t *body = NULL;
        scim_err_clear(&err);
        if (!is(r, "POST")) {
            api_method_not_allowed(r, "POST");
            return;
        }
        if (api_parse_body(r, &body, &err) || api_query_from_search(r, body, &err)) {
            json_decref(body);
            api_error(r, &err);
            return;
        }
        json_decref(body);
        do_list(r, rt);
        return;
    }
    if (!id) {
        if (is(r, "GET") || is(r, "HEAD"))
            do_list(r, rt);
        else if (is(r, "POST"))
            do_create(r, rt);
        else
            api_method_not_allowed(r, "GET, POST");
        return;
    }
    if (is(r, "GET") || is(r, "HEAD"))
        do_get(r, rt, id);
    else if (is(r, "PUT"))
        do_replace(r, rt, id);
    else if (is(r, "PATCH"))
        do_patch(r, rt, id);
    else if (is(r, "DELETE"))
        do_delete(r, rt, id);
    else
        api_method_not_allowed(r, "GET, PUT, PATCH, DELETE");
}
