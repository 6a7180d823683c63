/* scimctl import: load Users and Groups from JSON Lines (migrations, benchmarks).
 *
 * Lines are parsed and normalised here exactly as the API would (scim_resource_normalize), then
 * written in batches through scim_store_import_batch: one transaction per batch, so a million users
 * load in seconds instead of a million fsyncs. */
#include "scimctl.h"

#include "auth/token.h"
#include "common/util.h"
#include "scim/resource.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BATCH 10000
/* A batch also ends after this many member references, so that one huge group does not share
 * its transaction with ten thousand other lines' worth of memory. */
#define BATCH_MEMBERS 200000
#define MAX_ID_LEN SCIM_STORE_ID_MAX

static void help(void)
{
    fputs("NAME\n"
          "    scimctl import - load Users and Groups from a JSON Lines file\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl [--db URI] import [--batch N] FILE.jsonl\n"
          "    scimctl [--db URI] import [--batch N] -          (standard input)\n"
          "\n"
          "DESCRIPTION\n"
          "    Each line is one SCIM User or Group resource, as a client would POST it. The\n"
          "    type comes from \"schemas\" (the core User or Group URN); a line without them\n"
          "    is a User if it has \"userName\", a Group if it has \"displayName\". Lines are\n"
          "    validated and normalised like API requests; blank lines are skipped.\n"
          "\n"
          "    \"id\", when present, is kept (1-64 characters of A-Z a-z 0-9 . _ - ~), so\n"
          "    references from the system migrated from stay valid; otherwise a new UUID is\n"
          "    made. A Group's members each name a resource by id ({\"value\": ID}) or a User\n"
          "    by userName ({\"userName\": NAME}); they must be in the database already or on\n"
          "    an earlier line of the file. Members that name nothing are skipped and counted.\n"
          "    A \"password\" is hashed (argon2id), which is slow: about 50 ms per user.\n"
          "\n"
          "    Lines are written in batches of N (default 10000), each one transaction. A line\n"
          "    that is invalid or clashes (userName or id in use) is reported with its line\n"
          "    number and skipped; the others are imported. The summary goes to standard\n"
          "    output, errors to standard error.\n"
          "\n"
          "    This loads SCIM resources from another system. To copy a whole scimd database\n"
          "    (tenants, tokens, ids, times, versions) use \"scimctl db export\" and\n"
          "    \"scimctl db import\" instead. Works on SQLite and PostgreSQL; it writes no\n"
          "    change-feed events.\n"
          "\n"
          "EXIT STATUS\n"
          "    0 every line imported, 1 some lines failed or the database failed, 2 usage.\n"
          "\n"
          "EXAMPLE\n"
          "    scimctl --db var/scimd.db import users.jsonl\n"
          "    {\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"ann\"}\n"
          "    {\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\n"
          "     \"displayName\":\"staff\",\"members\":[{\"userName\":\"ann\"}]}\n",
          stdout);
}

struct pending {
    struct scim_store_import_item *items;
    long *lines;
    char **ids;
    char **pwhashes;
    size_t n, cap, members;
};

struct totals {
    long users, groups, failed, skipped_members;
};

static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_ID_LEN)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '~'))
            return false;
    }
    return true;
}

static bool has_schema(json_t *schemas, const char *urn)
{
    size_t i;
    json_t *v;
    json_array_foreach(schemas, i, v) {
        if (json_is_string(v) && scim_streq_ci(json_string_value(v), urn))
            return true;
    }
    return false;
}

/* Which resource type a line is: 0 user, 1 group, -1 unknown. */
static int line_kind(json_t *obj)
{
    json_t *schemas = json_object_get(obj, "schemas");
    if (has_schema(schemas, SCIM_SCHEMA_USER))
        return SCIM_RT_USER;
    if (has_schema(schemas, SCIM_SCHEMA_GROUP))
        return SCIM_RT_GROUP;
    if (json_is_string(json_object_get(obj, "userName")))
        return SCIM_RT_USER;
    if (json_is_string(json_object_get(obj, "displayName")))
        return SCIM_RT_GROUP;
    return -1;
}

/* The members of a Group line as the store wants them: [{"value"|"userName", "display"?}].
 * Taken out of the line before normalisation (which knows no "userName" key in a member). */
static int take_members(json_t *obj, json_t **out, char *why, size_t whylen)
{
    json_t *raw = NULL, *arr = NULL;
    const char *key;
    json_t *val;
    *out = NULL;
    json_object_foreach(obj, key, val) {
        if (scim_streq_ci(key, "members")) {
            raw = json_incref(val);
            json_object_del(obj, key);
            break;
        }
    }
    if (!raw || json_is_null(raw)) {
        json_decref(raw);
        return 0;
    }
    if (!json_is_array(raw)) {
        snprintf(why, whylen, "members must be an array");
        json_decref(raw);
        return -1;
    }
    if (!(arr = json_array())) {
        snprintf(why, whylen, "out of memory");
        json_decref(raw);
        return -1;
    }
    size_t i;
    json_t *m;
    json_array_foreach(raw, i, m) {
        json_t *e = NULL;
        if (json_is_string(m)) {
            e = json_pack("{s:O}", "value", m);
        } else if (json_is_object(m)) {
            json_t *v = json_object_get(m, "value"), *u = json_object_get(m, "userName");
            json_t *d = json_object_get(m, "display");
            if (json_is_string(v))
                e = json_pack("{s:O}", "value", v);
            else if (json_is_string(u))
                e = json_pack("{s:O}", "userName", u);
            if (e && json_is_string(d))
                json_object_set(e, "display", d);
        }
        if (!e || json_array_append_new(arr, e) < 0) {
            snprintf(why, whylen, "member %zu needs a string \"value\" or \"userName\"", i);
            json_decref(raw);
            json_decref(arr);
            return -1;
        }
    }
    json_decref(raw);
    *out = arr;
    return 0;
}

static void pending_clear(struct pending *p)
{
    for (size_t i = 0; i < p->n; i++) {
        json_decref(p->items[i].doc);
        json_decref(p->items[i].members);
        free(p->ids[i]);
        if (p->pwhashes[i])
            scim_wipe(p->pwhashes[i], SCIM_PASSWORD_HASH_MAX);
        free(p->pwhashes[i]);
    }
    p->n = 0;
    p->members = 0;
}

static void pending_free(struct pending *p)
{
    pending_clear(p);
    free(p->items);
    free(p->lines);
    free(p->ids);
    free(p->pwhashes);
}

static int pending_grow(struct pending *p)
{
    if (p->n < p->cap)
        return 0;
    size_t cap = p->cap ? p->cap * 2 : 1024;
    void *a = realloc(p->items, cap * sizeof *p->items);
    if (a)
        p->items = a;
    void *b = a ? realloc(p->lines, cap * sizeof *p->lines) : NULL;
    if (b)
        p->lines = b;
    void *c = b ? realloc(p->ids, cap * sizeof *p->ids) : NULL;
    if (c)
        p->ids = c;
    void *d = c ? realloc(p->pwhashes, cap * sizeof *p->pwhashes) : NULL;
    if (!d)
        return -1;
    p->pwhashes = d;
    p->cap = cap;
    return 0;
}

/* Writes the pending batch; -1 when the store failed (the batch is lost, nothing half-written). */
static int flush(struct scimctl *c, struct pending *p, struct totals *t)
{
    struct scim_err err;
    scim_err_clear(&err);
    if (p->n == 0)
        return 0;
    if (scim_store_import_batch(c->st, c->tenant, p->items, p->n, &err) != 0) {
        scimctl_errorf("import of lines %ld-%ld failed: %s%s%s", p->lines[0], p->lines[p->n - 1],
                       err.detail, err.log[0] ? ": " : "", err.log);
        pending_clear(p);
        return -1;
    }
    for (size_t i = 0; i < p->n; i++) {
        const struct scim_store_import_item *it = &p->items[i];
        if (it->failed) {
            scimctl_errorf("line %ld: %s", p->lines[i], it->err.detail);
            t->failed++;
            continue;
        }
        if (it->kind == SCIM_RT_USER)
            t->users++;
        else
            t->groups++;
        t->skipped_members += it->skipped_members;
    }
    pending_clear(p);
    return 0;
}

/* Parses one line into the pending batch; on a bad line prints it and returns 1. */
static int add_line(struct scimctl *c, struct pending *p, const char *text, long lineno)
{
    json_error_t jerr;
    struct scim_err err;
    struct scim_input in = {0};
    json_t *obj = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    json_t *members = NULL;
    char why[256] = "";
    char *id = NULL, *pw = NULL;
    uint32_t compat = 0;
    int kind, rc = 1;

    scim_err_clear(&err);
    if (!obj || !json_is_object(obj)) {
        scimctl_errorf("line %ld: %s", lineno, obj ? "not a JSON object" : jerr.text);
        goto out;
    }
    if ((kind = line_kind(obj)) < 0) {
        scimctl_errorf("line %ld: neither a User nor a Group (no schemas, userName or displayName)",
                       lineno);
        goto out;
    }
    json_t *jid = json_object_get(obj, "id");
    if (jid) {
        if (!json_is_string(jid) || !valid_id(json_string_value(jid))) {
            scimctl_errorf("line %ld: \"id\" must be 1-%d characters of A-Z a-z 0-9 . _ - ~",
                           lineno, MAX_ID_LEN);
            goto out;
        }
        if (!(id = scim_strdup(json_string_value(jid))))
            goto nomem;
    }
    if (kind == SCIM_RT_GROUP && take_members(obj, &members, why, sizeof why) < 0) {
        scimctl_errorf("line %ld: %s", lineno, why);
        goto out;
    }
    const struct scim_resource_type *rt = scim_registry_rt(c->reg, (enum scim_rtype)kind);
    if (scim_resource_normalize(c->reg, rt, obj, SCIM_NORM_CREATE, &in, &compat, &err) != 0) {
        scimctl_errorf("line %ld: %s", lineno, err.detail);
        goto out;
    }
    if (in.password) {
        if (!(pw = malloc(SCIM_PASSWORD_HASH_MAX)))
            goto nomem;
        if (scim_password_hash(in.password, pw) != 0) {
            scimctl_errorf("line %ld: password hashing failed", lineno);
            free(pw);
            pw = NULL;
            goto out;
        }
    }
    if (pending_grow(p) < 0)
        goto nomem;
    p->items[p->n] = (struct scim_store_import_item){
        .kind = (enum scim_rtype)kind,
        .id = id,
        .doc = json_incref(in.doc),
        .members = members,
        .password_hash = pw,
    };
    p->lines[p->n] = lineno;
    p->ids[p->n] = id;
    p->pwhashes[p->n] = pw;
    p->members += members ? json_array_size(members) : 0;
    p->n++;
    id = pw = NULL;
    members = NULL;
    rc = 0;
    goto out;
nomem:
    scimctl_errorf("line %ld: out of memory", lineno);
    rc = -1;
out:
    free(id);
    free(pw);
    json_decref(members);
    scim_input_release(&in);
    json_decref(obj);
    return rc;
}

int scimctl_import(struct scimctl *c, int argc, char **argv)
{
    const char *file = NULL;
    long batch = DEFAULT_BATCH;
    for (int i = 1; i < argc; i++) {
        if (scimctl_is_help(argv[i])) {
            help();
            return SCIMCTL_OK;
        }
        if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            batch = strtol(argv[++i], &end, 10);
            if (errno || *end || batch < 1 || batch > 1000000) {
                scimctl_errorf("import: --batch must be 1-1000000");
                return SCIMCTL_USAGE;
            }
        } else if (!file && (strcmp(argv[i], "-") == 0 || argv[i][0] != '-')) {
            file = argv[i];
        } else {
            scimctl_errorf("import: unexpected argument: %s", argv[i]);
            return SCIMCTL_USAGE;
        }
    }
    if (!file) {
        scimctl_errorf("import: missing FILE (or - for standard input)");
        return SCIMCTL_USAGE;
    }
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f) {
        scimctl_errorf("import: cannot open %s: %s", file, strerror(errno));
        return SCIMCTL_ERROR;
    }
    if (scimctl_open(c) != 0) {
        if (f != stdin)
            fclose(f);
        return SCIMCTL_ERROR;
    }
    struct pending p = {0};
    struct totals t = {0};
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int fatal = 0;
    int64_t start = scim_mono_us();
    ssize_t len;
    while (!fatal && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        if (len == 0)
            continue;
        int r = add_line(c, &p, line, lineno);
        if (r < 0)
            fatal = 1;
        else if (r > 0)
            t.failed++;
        else if ((long)p.n >= batch || p.members >= BATCH_MEMBERS)
            fatal = flush(c, &p, &t) < 0;
    }
    if (!fatal && ferror(f)) {
        scimctl_errorf("import: read error on %s: %s", file, strerror(errno));
        fatal = 1;
    }
    if (!fatal)
        fatal = flush(c, &p, &t) < 0;
    double secs = (double)(scim_mono_us() - start) / 1e6;
    printf("imported %ld users and %ld groups in %.1f s; %ld lines failed; %ld members skipped\n",
           t.users, t.groups, secs, t.failed, t.skipped_members);
    free(line);
    pending_free(&p);
    if (f != stdin)
        fclose(f);
    scimctl_close(c);
    return fatal || t.failed ? SCIMCTL_ERROR : SCIMCTL_OK;
}
