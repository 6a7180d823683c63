/* Filter AST → SQL. See sqlgen.h for the contract; the layout it targets is the one created by
 * the SQLite migration (resources r, emails, members). */
#include "store/sql/sqlgen.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* ---- SQLite dialect ------------------------------------------------------------------ */

static int sqlite_placeholder(struct scim_buf *b, int n)
{
    (void)n; /* positional: parameters are bound in text order */
    return scim_buf_addc(b, '?');
}

/* '$."a"."b"' — keys were checked by the generator (no quotes or backslashes). */
static int sqlite_path(struct scim_buf *b, const char *const *keys, size_t n)
{
    if (scim_buf_adds(b, "'$") < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (scim_buf_printf(b, ".\"%s\"", keys[i]) < 0)
            return -1;
    return scim_buf_addc(b, '\'');
}

static int sqlite_json_get(struct scim_buf *b, const char *src, const char *const *keys, size_t n,
                           enum scim_atype t)
{
    (void)t; /* json_extract returns SQL values of the JSON type (true/false as 1/0) */
    if (n == 0)
        return scim_buf_adds(b, src);
    if (scim_buf_printf(b, "json_extract(%s, ", src) < 0 || sqlite_path(b, keys, n) < 0)
        return -1;
    return scim_buf_addc(b, ')');
}

static int sqlite_json_each(struct scim_buf *b, const char *src, const char *const *keys, size_t n,
                            const char *alias)
{
    if (scim_buf_printf(b, "json_each(%s, ", src) < 0 || sqlite_path(b, keys, n) < 0)
        return -1;
    return scim_buf_printf(b, ") %s", alias);
}

static int sqlite_json_elem(struct scim_buf *b, const char *alias)
{
    return scim_buf_printf(b, "%s.value", alias);
}

static int sqlite_json_elem_pos(struct scim_buf *b, const char *alias)
{
    return scim_buf_printf(b, "%s.key", alias);
}

static int sqlite_json_nonempty(struct scim_buf *b, const char *src, const char *const *keys, size_t n)
{
    if (scim_buf_printf(b, "coalesce(json_array_length(%s, ", src) < 0 || sqlite_path(b, keys, n) < 0)
        return -1;
    return scim_buf_adds(b, "), 0) > 0");
}

static int sqlite_fold(struct scim_buf *b, const char *expr)
{
    return scim_buf_printf(b, "lower(%s)", expr);
}

static int sqlite_datetime_us(struct scim_buf *b, const char *expr)
{
    /* an application function registered on every connection (sqlite backend) */
    return scim_buf_printf(b, "scim_datetime_us(%s)", expr);
}

/* SQLite's LIKE folds ASCII case, GLOB does not: GLOB serves the caseExact attributes. */
static const char *sqlite_match_op(bool ci)
{
    return ci ? " LIKE " : " GLOB ";
}

static const char *sqlite_match_suffix(bool ci)
{
    return ci ? " ESCAPE '\\'" : "";
}

static char *sqlite_match_pattern(const char *value, enum scim_fop op, bool ci)
{
    struct scim_buf b;
    scim_buf_init(&b, 0);
    const char *any = ci ? "%" : "*";
    int rc = 0;
    if (op == SCIM_F_CO || op == SCIM_F_EW)
        rc |= scim_buf_adds(&b, any);
    for (const char *p = value; *p && rc == 0; p++) {
        if (ci && (*p == '%' || *p == '_' || *p == '\\'))
            rc |= scim_buf_addc(&b, '\\') | scim_buf_addc(&b, *p);
        else if (!ci && (*p == '*' || *p == '?' || *p == '['))
            rc |= scim_buf_printf(&b, "[%c]", *p);
        else
            rc |= scim_buf_addc(&b, *p);
    }
    if (op == SCIM_F_CO || op == SCIM_F_SW)
        rc |= scim_buf_adds(&b, any);
    if (rc) {
        scim_buf_release(&b);
        return NULL;
    }
    return scim_buf_take(&b);
}

const struct scim_sql_dialect scim_sql_dialect_sqlite = {
    .name = "sqlite",
    .true_sql = "1",
    .false_sql = "0",
    .placeholder = sqlite_placeholder,
    .json_get = sqlite_json_get,
    .json_each = sqlite_json_each,
    .json_elem = sqlite_json_elem,
    .json_elem_pos = sqlite_json_elem_pos,
    .json_nonempty = sqlite_json_nonempty,
    .fold = sqlite_fold,
    .datetime_us = sqlite_datetime_us,
    .match_op = sqlite_match_op,
    .match_suffix = sqlite_match_suffix,
    .match_pattern = sqlite_match_pattern,
};

/* ---- PostgreSQL dialect -------------------------------------------------------------- */

static int pg_placeholder(struct scim_buf *b, int n)
{
    return scim_buf_printf(b, "$%d", n);
}

/* src -> 'a' -> 'b' (jsonb); keys were checked by the generator (no quotes or backslashes). */
static int pg_path(struct scim_buf *b, const char *src, const char *const *keys, size_t n)
{
    if (scim_buf_printf(b, "(%s)", src) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (scim_buf_printf(b, " -> '%s'", keys[i]) < 0)
            return -1;
    return 0;
}

/* Typed extraction: only a JSON value of the matching type yields a value (else NULL), so a
 * comparison never fails on a cast. Strings come out as text (->> of the last key). */
static int pg_json_get(struct scim_buf *b, const char *src, const char *const *keys, size_t n,
                       enum scim_atype t)
{
    struct scim_buf v;
    scim_buf_init(&v, 0);
    int rc = pg_path(&v, src, keys, n);
    const char *j = scim_buf_str(&v);
    if (rc == 0) {
        switch (t) {
        case SCIM_T_BOOLEAN:
            rc = scim_buf_printf(b, "(CASE jsonb_typeof(%s) WHEN 'boolean' THEN (%s #>> '{}')::boolean END)",
                                 j, j);
            break;
        case SCIM_T_INTEGER:
        case SCIM_T_DECIMAL:
            rc = scim_buf_printf(b, "(CASE jsonb_typeof(%s) WHEN 'number' THEN (%s #>> '{}')::numeric END)",
                                 j, j);
            break;
        default:
            rc = scim_buf_printf(b, "(%s #>> '{}')", j);
            break;
        }
    }
    scim_buf_release(&v);
    return rc < 0 ? -1 : 0;
}

/* Elements of the array at the path; anything that is not an array iterates nothing. */
static int pg_json_each(struct scim_buf *b, const char *src, const char *const *keys, size_t n,
                        const char *alias)
{
    struct scim_buf v;
    scim_buf_init(&v, 0);
    int rc = pg_path(&v, src, keys, n);
    const char *j = scim_buf_str(&v);
    if (rc == 0)
        rc = scim_buf_printf(b, "jsonb_array_elements(CASE jsonb_typeof(%s) WHEN 'array' THEN %s "
                                "ELSE '[]'::jsonb END) WITH ORDINALITY AS %s(value, pos)",
                             j, j, alias);
    scim_buf_release(&v);
    return rc < 0 ? -1 : 0;
}

static int pg_json_elem(struct scim_buf *b, const char *alias)
{
    return scim_buf_printf(b, "%s.value", alias);
}

static int pg_json_elem_pos(struct scim_buf *b, const char *alias)
{
    return scim_buf_printf(b, "%s.pos", alias);
}

static int pg_json_nonempty(struct scim_buf *b, const char *src, const char *const *keys, size_t n)
{
    struct scim_buf v;
    scim_buf_init(&v, 0);
    int rc = pg_path(&v, src, keys, n);
    const char *j = scim_buf_str(&v);
    if (rc == 0)
        rc = scim_buf_printf(b, "coalesce(jsonb_array_length(CASE jsonb_typeof(%s) WHEN 'array' "
                                "THEN %s END), 0) > 0", j, j);
    scim_buf_release(&v);
    return rc < 0 ? -1 : 0;
}

/* COLLATE "C": lower() then folds ASCII only, like the value folding in the generator and
 * SQLite's NOCASE, whatever the database's default collation. */
static int pg_fold(struct scim_buf *b, const char *expr)
{
    return scim_buf_printf(b, "lower((%s) COLLATE \"C\")", expr);
}

/* The columns are C-collated, so this is exactly the indexed expression lower(col). */
static int pg_fold_column(struct scim_buf *b, const char *col)
{
    return scim_buf_printf(b, "lower(%s)", col);
}

static int pg_datetime_us(struct scim_buf *b, const char *expr)
{
    /* created by the PostgreSQL migration */
    return scim_buf_printf(b, "scim_datetime_us(%s)", expr);
}

static const char *pg_match_op(bool ci)
{
    return ci ? " ILIKE " : " LIKE ";
}

static const char *pg_match_suffix(bool ci)
{
    (void)ci;
    return " ESCAPE '\\'";
}

static char *pg_match_pattern(const char *value, enum scim_fop op, bool ci)
{
    (void)ci;
    struct scim_buf b;
    scim_buf_init(&b, 0);
    int rc = 0;
    if (op == SCIM_F_CO || op == SCIM_F_EW)
        rc |= scim_buf_addc(&b, '%');
    for (const char *p = value; *p && rc == 0; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            rc |= scim_buf_addc(&b, '\\');
        rc |= scim_buf_addc(&b, *p);
    }
    if (op == SCIM_F_CO || op == SCIM_F_SW)
        rc |= scim_buf_addc(&b, '%');
    if (rc) {
        scim_buf_release(&b);
        return NULL;
    }
    return scim_buf_take(&b);
}

const struct scim_sql_dialect scim_sql_dialect_pg = {
    .name = "postgresql",
    .true_sql = "true",
    .false_sql = "false",
    .placeholder = pg_placeholder,
    .json_get = pg_json_get,
    .json_each = pg_json_each,
    .json_elem = pg_json_elem,
    .json_elem_pos = pg_json_elem_pos,
    .json_nonempty = pg_json_nonempty,
    .fold = pg_fold,
    .datetime_us = pg_datetime_us,
    .match_op = pg_match_op,
    .match_suffix = pg_match_suffix,
    .match_pattern = pg_match_pattern,
    .fold_column = pg_fold_column,
};

/* ---- fragments ----------------------------------------------------------------------- */

void scim_sql_frag_init(struct scim_sql_frag *f)
{
    memset(f, 0, sizeof(*f));
    scim_buf_init(&f->sql, 64 * 1024);
}

void scim_sql_frag_release(struct scim_sql_frag *f)
{
    for (size_t i = 0; i < f->n_params; i++)
        free(f->params[i].s);
    free(f->params);
    scim_buf_release(&f->sql);
    f->params = NULL;
    f->n_params = f->cap_params = 0;
}

/* ---- generator ----------------------------------------------------------------------- */

struct gen {
    const struct scim_sql_dialect *d;
    const struct scim_resource_type *rt;
    int64_t tenant;
    int next_param;
    struct scim_sql_frag *out;
    struct scim_buf *b;
    struct scim_err *err;
};

/* Where the operands of a comparison live: the resource row, or one element of a
 * multi-valued attribute iterated by a sub-query. */
enum ctx_kind { CTX_ROOT, CTX_JSON, CTX_EMAILS, CTX_MEMBERS, CTX_GROUPS };

struct ctx {
    enum ctx_kind kind;
    const struct scim_attr *attr; /* the multi-valued attribute (not CTX_ROOT) */
    const char *keys[3];          /* CTX_JSON: path of the array in r.doc */
    size_t n_keys;
};

enum special { SP_NONE, SP_RTYPE, SP_VERSION, SP_TRUE };

struct operand {
    char expr[768];
    enum scim_atype type;
    bool case_exact;
    bool nocase;   /* the expression carries a NOCASE collation */
    bool indexed;  /* sw compiles to an index range */
    bool json;     /* extracted from JSON: pr also rejects "", [], {} */
    bool dt_us;    /* dateTime stored as microseconds */
    enum special sp;
};

/* A buffer append fails at the buffer's cap (the filter is too complex: 400) or when out of
 * memory (errno ENOMEM: 500). */
#define SQL_ERR_FULL(g)                                                                            \
    (errno == ENOMEM ? scim_err_nomem((g)->err)                                                    \
                     : scim_err_set((g)->err, 400, SCIM_TYPE_INVALID_FILTER, "filter is too complex"))

#define bad_filter(g, pos, fmt, arg) \
    scim_err_set_pos((g)->err, 400, SCIM_TYPE_INVALID_FILTER, (pos), fmt, (arg))

static int emit(struct gen *g, const char *s)
{
    return scim_buf_adds(g->b, s) < 0 ? SQL_ERR_FULL(g) : 0;
}

static struct scim_sql_param *new_param(struct gen *g)
{
    if (g->out->n_params >= SCIM_SQL_MAX_PARAMS) {
        scim_err_set(g->err, 400, SCIM_TYPE_INVALID_FILTER, "filter has too many values (at most %d)",
                     SCIM_SQL_MAX_PARAMS);
        return NULL;
    }
    if (g->out->n_params == g->out->cap_params) {
        size_t cap = g->out->cap_params ? g->out->cap_params * 2 : 8;
        struct scim_sql_param *p = realloc(g->out->params, cap * sizeof(*p));
        if (!p) {
            scim_err_nomem(g->err);
            return NULL;
        }
        g->out->params = p;
        g->out->cap_params = cap;
    }
    struct scim_sql_param *p = &g->out->params[g->out->n_params++];
    memset(p, 0, sizeof(*p));
    return p;
}

/* Appends a placeholder and records its value. `s` is copied. */
static int bind_text(struct gen *g, const char *s)
{
    struct scim_sql_param *p = new_param(g);
    if (!p)
        return -1;
    p->type = SCIM_SQL_P_TEXT;
    if (!(p->s = scim_strdup(s))) {
        g->out->n_params--;
        return scim_err_nomem(g->err);
    }
    return g->d->placeholder(g->b, g->next_param++) < 0 ? SQL_ERR_FULL(g) : 0;
}

static int bind_take(struct gen *g, char *s)
{
    if (!s)
        return scim_err_nomem(g->err);
    int rc = bind_text(g, s);
    free(s);
    return rc;
}

static int bind_int(struct gen *g, int64_t v)
{
    struct scim_sql_param *p = new_param(g);
    if (!p)
        return -1;
    p->type = SCIM_SQL_P_INT;
    p->i = v;
    return g->d->placeholder(g->b, g->next_param++) < 0 ? SQL_ERR_FULL(g) : 0;
}

static int bind_real(struct gen *g, double v)
{
    struct scim_sql_param *p = new_param(g);
    if (!p)
        return -1;
    p->type = SCIM_SQL_P_REAL;
    p->d = v;
    return g->d->placeholder(g->b, g->next_param++) < 0 ? SQL_ERR_FULL(g) : 0;
}

/* Names spliced into JSON paths come from the registry; refuse anything that could break
 * out of the quoted path (an operator-declared extension with an odd name). */
static bool safe_key(const char *k)
{
    if (!k || !*k)
        return false;
    for (const unsigned char *p = (const unsigned char *)k; *p; p++)
        if (*p < 0x20 || *p == '"' || *p == '\'' || *p == '\\' || *p >= 0x7f)
            return false;
    return true;
}

/* Renders a dialect hook into an operand's fixed-size expression. */
static int set_expr_buf(struct gen *g, struct operand *o, struct scim_buf *tmp)
{
    if (tmp->len >= sizeof(o->expr)) {
        scim_buf_release(tmp);
        return SQL_ERR_FULL(g);
    }
    memcpy(o->expr, scim_buf_str(tmp), tmp->len + 1);
    scim_buf_release(tmp);
    return 0;
}

static int set_expr(struct gen *g, struct operand *o, const char *s)
{
    if (strlen(s) >= sizeof(o->expr))
        return SQL_ERR_FULL(g);
    memcpy(o->expr, s, strlen(s) + 1);
    return 0;
}

/* A case-insensitive column (nocase): as is where its collation ignores case, else the
 * dialect's folded column expression. */
static int set_nocase_col(struct gen *g, struct operand *o, const char *col)
{
    o->nocase = o->indexed = true;
    if (!g->d->fold_column)
        return set_expr(g, o, col);
    struct scim_buf tmp;
    scim_buf_init(&tmp, sizeof(o->expr));
    if (g->d->fold_column(&tmp, col) < 0) {
        scim_buf_release(&tmp);
        return SQL_ERR_FULL(g);
    }
    return set_expr_buf(g, o, &tmp);
}

static void operand_init(struct operand *o, enum scim_atype t, bool case_exact)
{
    memset(o, 0, sizeof(*o));
    o->type = t;
    o->case_exact = case_exact;
}

static int json_operand(struct gen *g, struct operand *o, const char *src, const char *const *keys,
                        size_t n, const struct scim_attr *a, int pos)
{
    for (size_t i = 0; i < n; i++)
        if (!safe_key(keys[i]))
            return bad_filter(g, pos, "attribute \"%s\" cannot be filtered", keys[i] ? keys[i] : "");
    operand_init(o, a->type, a->case_exact);
    o->json = true;
    struct scim_buf tmp;
    scim_buf_init(&tmp, sizeof(o->expr));
    if (g->d->json_get(&tmp, src, keys, n, a->type) < 0) {
        scim_buf_release(&tmp);
        return SQL_ERR_FULL(g);
    }
    return set_expr_buf(g, o, &tmp);
}

/* A complex attribute named without a sub-attribute stands for its "value" (emails eq "x"). */
static const struct scim_attr *default_sub(const struct scim_attr *a)
{
    return a->type == SCIM_T_COMPLEX ? scim_attr_sub(a, "value") : NULL;
}

/* Resolves `name` inside a multi-valued context. */
static int elem_operand(struct gen *g, const struct ctx *c, const char *name, int pos,
                        struct operand *o)
{
    const struct scim_attr *a = c->attr;
    const struct scim_attr *s = NULL;
    if (a->type == SCIM_T_COMPLEX) {
        s = name ? scim_attr_sub(a, name) : default_sub(a);
        if (!s)
            return bad_filter(g, pos, "unknown attribute \"%s\" in filter",
                              name ? name : a->name);
    } else if (name && !scim_streq_ci(name, "value")) {
        return bad_filter(g, pos, "unknown attribute \"%s\" in filter", name);
    }
    switch (c->kind) {
    case CTX_EMAILS:
        operand_init(o, s->type, s->case_exact);
        if (scim_streq_ci(s->name, "value")) {
            return set_nocase_col(g, o, "em.value");
        }
        if (scim_streq_ci(s->name, "type"))
            return set_expr(g, o, "em.type");
        return set_expr(g, o, "em.primary_");
    case CTX_MEMBERS:
    case CTX_GROUPS: {
        bool mem = c->kind == CTX_MEMBERS;
        operand_init(o, s->type, s->case_exact);
        if (scim_streq_ci(s->name, "value")) {
            o->case_exact = true;
            o->indexed = true;
            return set_expr(g, o, mem ? "x.id" : "x.id");
        }
        if (scim_streq_ci(s->name, "display")) {
            o->case_exact = false;
            return set_expr(g, o, mem ? "coalesce(mb.display, x.display_name, x.user_name)"
                                      : "x.display_name");
        }
        if (scim_streq_ci(s->name, "type")) {
            o->case_exact = false;
            return set_expr(g, o, mem ? "CASE x.kind WHEN 0 THEN 'User' ELSE 'Group' END"
                                      : "'direct'");
        }
        return bad_filter(g, pos, "attribute \"%s\" cannot be filtered", s->name);
    }
    case CTX_JSON: {
        struct scim_buf tmp;
        scim_buf_init(&tmp, 64);
        if (g->d->json_elem(&tmp, "e") < 0) {
            scim_buf_release(&tmp);
            return scim_err_nomem(g->err);
        }
        const char *key = s ? s->name : NULL;
        int rc = json_operand(g, o, scim_buf_str(&tmp), &key, s ? 1 : 0, s ? s : a, pos);
        scim_buf_release(&tmp);
        return rc;
    }
    case CTX_ROOT:
        break;
    }
    return scim_err_internal(g->err, "sqlgen: bad context");
}

/* Opens the sub-query iterating the elements of a multi-valued attribute. */
static int open_ctx(struct gen *g, const struct ctx *c)
{
    switch (c->kind) {
    case CTX_EMAILS:
        if (emit(g, "r.pk IN (SELECT em.resource_pk FROM emails em WHERE em.tenant_id = ") < 0 ||
            bind_int(g, g->tenant) < 0)
            return -1;
        return emit(g, " AND (");
    case CTX_MEMBERS:
        if (emit(g, "r.pk IN (SELECT mb.group_pk FROM members mb JOIN resources x ON x.pk = "
                    "mb.member_pk WHERE x.tenant_id = ") < 0 ||
            bind_int(g, g->tenant) < 0)
            return -1;
        return emit(g, " AND x.kind IN (0, 1) AND (");
    case CTX_GROUPS:
        if (emit(g, "r.pk IN (SELECT mb.member_pk FROM members mb JOIN resources x ON x.pk = "
                    "mb.group_pk WHERE x.tenant_id = ") < 0 ||
            bind_int(g, g->tenant) < 0)
            return -1;
        return emit(g, " AND x.kind = 1 AND (");
    case CTX_JSON:
        if (emit(g, "EXISTS (SELECT 1 FROM ") < 0)
            return -1;
        if (g->d->json_each(g->b, "r.doc", c->keys, c->n_keys, "e") < 0)
            return SQL_ERR_FULL(g);
        return emit(g, " WHERE (");
    case CTX_ROOT:
        break;
    }
    return 0;
}

static int close_ctx(struct gen *g)
{
    return emit(g, "))");
}

/* Does the value filter only use sub-attributes the emails table has? */
static bool emails_table_covers(const struct scim_filter *f)
{
    if (!f)
        return true;
    switch (f->op) {
    case SCIM_F_AND:
    case SCIM_F_OR:
        return emails_table_covers(f->left) && emails_table_covers(f->right);
    case SCIM_F_NOT:
        return emails_table_covers(f->left);
    case SCIM_F_VALUEPATH:
        return false;
    default:
        return !f->path.sub && !f->path.urn &&
               (scim_streq_ci(f->path.attr, "value") || scim_streq_ci(f->path.attr, "type") ||
                scim_streq_ci(f->path.attr, "primary"));
    }
}

/* The context for iterating multi-valued attribute `a` of schema `schema`. */
static void multi_ctx(struct gen *g, const struct scim_schema *schema, const struct scim_attr *a,
                      struct ctx *c)
{
    memset(c, 0, sizeof(*c));
    c->attr = a;
    bool core = schema == g->rt->schema;
    if (core && g->rt->kind == SCIM_RT_USER && scim_streq_ci(a->name, "emails"))
        c->kind = CTX_EMAILS;
    else if (core && g->rt->kind == SCIM_RT_GROUP && scim_streq_ci(a->name, "members"))
        c->kind = CTX_MEMBERS;
    else if (core && g->rt->kind == SCIM_RT_USER && scim_streq_ci(a->name, "groups"))
        c->kind = CTX_GROUPS;
    else
        c->kind = CTX_JSON;
    if (!core && schema)
        c->keys[c->n_keys++] = schema->id;
    c->keys[c->n_keys++] = a->name;
}

/* Resolves a single-valued attribute of the resource. */
static int root_operand(struct gen *g, const struct scim_schema *schema, const struct scim_attr *a,
                        const struct scim_attr *s, int pos, struct operand *o)
{
    if (!schema) { /* common attributes: id, externalId, meta */
        if (scim_streq_ci(a->name, "id")) {
            operand_init(o, SCIM_T_STRING, true);
            o->indexed = true;
            return set_expr(g, o, "r.id");
        }
        if (scim_streq_ci(a->name, "externalId")) {
            operand_init(o, SCIM_T_STRING, a->case_exact);
            o->indexed = true;
            return set_expr(g, o, "r.external_id");
        }
        if (scim_streq_ci(a->name, "meta")) {
            if (!s) {
                operand_init(o, SCIM_T_COMPLEX, false);
                o->sp = SP_TRUE;
                return set_expr(g, o, "1");
            }
            operand_init(o, s->type, s->case_exact);
            if (scim_streq_ci(s->name, "created") || scim_streq_ci(s->name, "lastModified")) {
                o->dt_us = true;
                return set_expr(g, o, scim_streq_ci(s->name, "created") ? "r.created" : "r.last_modified");
            }
            if (scim_streq_ci(s->name, "resourceType")) {
                o->sp = SP_RTYPE;
                return set_expr(g, o, g->rt->kind == SCIM_RT_USER ? "'user'" : "'group'");
            }
            if (scim_streq_ci(s->name, "version")) {
                o->sp = SP_VERSION;
                o->case_exact = true;
                return set_expr(g, o, "('W/\"' || r.version || '\"')");
            }
            return bad_filter(g, pos, "attribute \"meta.%s\" cannot be filtered", s->name);
        }
        return bad_filter(g, pos, "attribute \"%s\" cannot be filtered", a->name);
    }
    bool core = schema == g->rt->schema;
    if (core && !s) {
        if (g->rt->kind == SCIM_RT_USER && scim_streq_ci(a->name, "userName")) {
            operand_init(o, SCIM_T_STRING, false);
            return set_nocase_col(g, o, "r.user_name");
        }
        if (scim_streq_ci(a->name, "displayName")) {
            operand_init(o, SCIM_T_STRING, false);
            return set_nocase_col(g, o, "r.display_name");
        }
        if (g->rt->kind == SCIM_RT_USER && scim_streq_ci(a->name, "active")) {
            operand_init(o, SCIM_T_BOOLEAN, false);
            return set_expr(g, o, "r.active");
        }
    }
    const char *keys[3];
    size_t n = 0;
    if (!core)
        keys[n++] = schema->id;
    keys[n++] = a->name;
    if (s)
        keys[n++] = s->name;
    return json_operand(g, o, "r.doc", keys, n, s ? s : a, pos);
}

static const char *cmp_sql(enum scim_fop op)
{
    switch (op) {
    case SCIM_F_EQ: return " = ";
    case SCIM_F_NE: return " <> ";
    case SCIM_F_GT: return " > ";
    case SCIM_F_GE: return " >= ";
    case SCIM_F_LT: return " < ";
    default: return " <= ";
    }
}

static const char *op_name(enum scim_fop op)
{
    static const char *const names[] = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"};
    return op <= SCIM_F_PR ? names[op] : "?";
}

/* The value as text, for string attributes (numbers keep their literal spelling). */
static const char *value_text(const struct scim_fval *v)
{
    if (v->type == SCIM_V_BOOL)
        return v->b ? "true" : "false";
    return v->str ? v->str : "";
}

/* Upper bound of the prefix range [p, next(p)): the smallest string greater than every string
 * starting with p, in the byte order of BINARY or (for nocase, p already folded) NOCASE. */
static char *prefix_upper(const char *p, bool nocase)
{
    size_t len = strlen(p);
    char *u = scim_strndup(p, len);
    if (!u)
        return NULL;
    while (len > 0) {
        unsigned char c = (unsigned char)u[len - 1];
        if (c < 0xff) {
            c++;
            /* NOCASE folds A-Z to a-z, so no folded string sorts between '@' and '[' */
            if (nocase && c >= 'A' && c <= 'Z')
                c = '[';
            u[len - 1] = (char)c;
            return u;
        }
        u[--len] = '\0';
    }
    free(u);
    return scim_strdup(""); /* unreachable for valid UTF-8 */
}

static int compile_pattern(struct gen *g, const struct scim_filter *f, const struct operand *o)
{
    const char *v = value_text(&f->val);
    if (!*v) /* every string contains, starts and ends with "" */
        return emit(g, o->expr) < 0 ? -1 : emit(g, " IS NOT NULL");
    bool ci = !o->case_exact || o->nocase;
    if (f->op == SCIM_F_SW && o->indexed) {
        char *lo = scim_strdup(v);
        if (!lo)
            return scim_err_nomem(g->err);
        if (o->nocase)
            scim_ascii_lower(lo);
        char *hi = prefix_upper(lo, o->nocase);
        int rc = emit(g, "(") | emit(g, o->expr) | emit(g, " >= ");
        if (rc)
            free(lo); /* bind_take frees it only when it gets it */
        else
            rc = bind_take(g, lo);
        if (rc == 0)
            rc = emit(g, " AND ") | emit(g, o->expr) | emit(g, " < ");
        if (rc == 0 && hi && *hi) {
            rc = bind_take(g, hi);
            hi = NULL;
        } else if (rc == 0) {
            rc = bind_text(g, "\xf4\x90"); /* above every valid UTF-8 text */
        }
        free(hi);
        return rc ? -1 : emit(g, ")");
    }
    if (emit(g, o->expr) < 0 || emit(g, g->d->match_op(ci)) < 0 ||
        bind_take(g, g->d->match_pattern(v, f->op, ci)) < 0)
        return -1;
    return emit(g, g->d->match_suffix(ci));
}

static int compile_pr(struct gen *g, const struct operand *o)
{
    if (o->sp == SP_TRUE || o->sp == SP_RTYPE || o->sp == SP_VERSION || o->dt_us)
        return emit(g, g->d->true_sql);
    if (emit(g, "(") < 0 || emit(g, o->expr) < 0 || emit(g, " IS NOT NULL") < 0)
        return -1;
    bool typed = o->type == SCIM_T_BOOLEAN || o->type == SCIM_T_INTEGER || o->type == SCIM_T_DECIMAL;
    if (o->json && !typed) { /* typed extractions are never text */
        if (emit(g, " AND ") < 0 || emit(g, o->expr) < 0 || emit(g, " NOT IN ('', '[]', '{}')") < 0)
            return -1;
    } else if (o->type == SCIM_T_STRING || o->type == SCIM_T_REFERENCE) {
        if (emit(g, " AND ") < 0 || emit(g, o->expr) < 0 || emit(g, " <> ''") < 0)
            return -1;
    }
    return emit(g, ")");
}

/* Binds the comparison value converted to the attribute type. */
static int bind_value(struct gen *g, const struct scim_filter *f, const struct operand *o)
{
    const struct scim_fval *v = &f->val;
    switch (o->type) {
    case SCIM_T_BOOLEAN:
        if (v->type == SCIM_V_BOOL)
            return bind_int(g, v->b ? 1 : 0);
        if (v->type == SCIM_V_STRING && (scim_streq_ci(v->str, "true") || scim_streq_ci(v->str, "false")))
            return bind_int(g, scim_streq_ci(v->str, "true") ? 1 : 0);
        break;
    case SCIM_T_INTEGER:
    case SCIM_T_DECIMAL: {
        if (v->type == SCIM_V_NUMBER)
            return v->is_integer ? bind_int(g, v->i) : bind_real(g, v->num);
        if (v->type == SCIM_V_STRING && v->str) {
            int64_t i;
            if (scim_parse_i64(v->str, &i) == 0)
                return bind_int(g, i);
            char *end = NULL;
            errno = 0;
            double d = strtod(v->str, &end);
            if (*v->str && end && !*end && errno == 0 && isfinite(d))
                return bind_real(g, d);
        }
        break;
    }
    case SCIM_T_DATETIME: {
        int64_t us;
        if (v->type == SCIM_V_STRING && v->str && scim_datetime_parse(v->str, &us) == 0)
            return bind_int(g, us);
        break;
    }
    default:
        if (v->type == SCIM_V_STRING || v->type == SCIM_V_NUMBER || v->type == SCIM_V_BOOL)
            return bind_text(g, value_text(v));
        break;
    }
    return bad_filter(g, f->pos, "the value compared with \"%s\" does not fit its type", f->path.attr);
}

/* A comparison of one operand (resolved) with the node's value. */
static int compile_cmp(struct gen *g, const struct scim_filter *f, const struct operand *o)
{
    if (f->op == SCIM_F_PR)
        return compile_pr(g, o);
    if (o->type == SCIM_T_COMPLEX)
        return bad_filter(g, f->pos, "complex attribute \"%s\" needs a sub-attribute", f->path.attr);
    if (f->val.type == SCIM_V_NULL) {
        if (f->op == SCIM_F_EQ || f->op == SCIM_F_NE)
            return emit(g, "(") | emit(g, o->expr) |
                   emit(g, f->op == SCIM_F_EQ ? " IS NULL)" : " IS NOT NULL)");
        return bad_filter(g, f->pos, "operator \"%s\" cannot compare with null", op_name(f->op));
    }
    bool is_string = o->type == SCIM_T_STRING || o->type == SCIM_T_REFERENCE || o->type == SCIM_T_BINARY;
    if (f->op == SCIM_F_CO || f->op == SCIM_F_SW || f->op == SCIM_F_EW) {
        if (!is_string || o->sp != SP_NONE)
            return scim_err_set_pos(g->err, 400, SCIM_TYPE_INVALID_FILTER, f->pos,
                                    "operator \"%s\" does not apply to attribute \"%s\"",
                                    op_name(f->op), f->path.attr);
        return compile_pattern(g, f, o);
    }
    if ((o->type == SCIM_T_BOOLEAN || o->type == SCIM_T_BINARY || o->sp == SP_RTYPE) &&
        f->op != SCIM_F_EQ && f->op != SCIM_F_NE)
        return scim_err_set_pos(g->err, 400, SCIM_TYPE_INVALID_FILTER, f->pos,
                                "operator \"%s\" does not apply to attribute \"%s\"", op_name(f->op),
                                f->path.attr);
    /* ne also matches resources without the attribute: coalesce(NULL, 1) */
    bool ne = f->op == SCIM_F_NE;
    if (ne && emit(g, "coalesce(") < 0)
        return -1;
    int rc;
    if (o->sp == SP_RTYPE) {
        rc = emit(g, o->expr) | emit(g, cmp_sql(f->op));
        if (rc == 0) {
            struct scim_buf ph;
            scim_buf_init(&ph, 64);
            rc = g->d->placeholder(&ph, g->next_param) < 0 ? SQL_ERR_FULL(g) : 0;
            if (rc == 0) {
                struct scim_buf fold;
                scim_buf_init(&fold, 128);
                rc = g->d->fold(&fold, scim_buf_str(&ph)) < 0 ? SQL_ERR_FULL(g) : emit(g, scim_buf_str(&fold));
                scim_buf_release(&fold);
            }
            scim_buf_release(&ph);
            if (rc == 0) {
                /* the placeholder was written by the fold hook; record its value */
                struct scim_sql_param *p = new_param(g);
                if (!p)
                    return -1;
                p->type = SCIM_SQL_P_TEXT;
                if (!(p->s = scim_strdup(value_text(&f->val)))) {
                    g->out->n_params--;
                    return scim_err_nomem(g->err);
                }
                g->next_param++;
            }
        }
    } else if (is_string && o->nocase && g->d->fold_column) {
        /* the column expression is folded (lower(col)): fold the value the same way */
        rc = emit(g, o->expr) | emit(g, cmp_sql(f->op));
        if (rc == 0) {
            char *lo = scim_strdup(value_text(&f->val));
            if (lo)
                scim_ascii_lower(lo);
            rc = bind_take(g, lo);
        }
    } else if (is_string && !o->case_exact && !o->nocase) {
        struct scim_buf tmp;
        scim_buf_init(&tmp, 4096);
        rc = g->d->fold(&tmp, o->expr) < 0 ? SQL_ERR_FULL(g) : emit(g, scim_buf_str(&tmp));
        scim_buf_release(&tmp);
        rc = rc ? rc : emit(g, cmp_sql(f->op));
        if (rc == 0) {
            char *lo = scim_strdup(value_text(&f->val));
            if (lo)
                scim_ascii_lower(lo); /* fold the value here: same ASCII folding as lower() */
            rc = bind_take(g, lo);
        }
    } else if (o->type == SCIM_T_DATETIME && !o->dt_us) {
        struct scim_buf tmp;
        scim_buf_init(&tmp, 4096);
        rc = g->d->datetime_us(&tmp, o->expr) < 0 ? SQL_ERR_FULL(g) : emit(g, scim_buf_str(&tmp));
        scim_buf_release(&tmp);
        rc = rc ? rc : emit(g, cmp_sql(f->op));
        rc = rc ? rc : bind_value(g, f, o);
    } else {
        rc = emit(g, o->expr) | emit(g, cmp_sql(f->op));
        rc = rc ? rc : bind_value(g, f, o);
    }
    if (rc)
        return -1;
    return ne ? emit(g, ", ") | emit(g, g->d->true_sql) | emit(g, ")") : 0;
}

static int compile(struct gen *g, const struct scim_filter *f, const struct ctx *c);

static int compile_leaf_root(struct gen *g, const struct scim_filter *f)
{
    const struct scim_schema *schema = NULL;
    const struct scim_attr *a = NULL, *s = NULL;
    if (scim_resolve_attr(g->rt, f->path.urn, f->path.attr, f->path.sub, &schema, &a, &s) != 0)
        return bad_filter(g, f->path.pos, "unknown attribute \"%s\" in filter", f->path.attr);
    if (a->multi_valued) {
        struct ctx c;
        multi_ctx(g, schema, a, &c);
        if (f->op == SCIM_F_PR && !s) {
            if (c.kind == CTX_MEMBERS)
                return emit(g, "r.pk IN (SELECT group_pk FROM members)");
            if (c.kind == CTX_GROUPS)
                return emit(g, "r.pk IN (SELECT member_pk FROM members)");
            return g->d->json_nonempty(g->b, "r.doc", c.keys, c.n_keys) < 0 ? SQL_ERR_FULL(g) : 0;
        }
        struct operand o;
        if (c.kind == CTX_EMAILS && s && !scim_streq_ci(s->name, "value") &&
            !scim_streq_ci(s->name, "type") && !scim_streq_ci(s->name, "primary"))
            c.kind = CTX_JSON;
        if (elem_operand(g, &c, s ? s->name : NULL, f->path.pos, &o) < 0)
            return -1;
        if (open_ctx(g, &c) < 0 || compile_cmp(g, f, &o) < 0)
            return -1;
        return close_ctx(g);
    }
    if (a->type == SCIM_T_COMPLEX && !s && f->op != SCIM_F_PR && schema)
        s = default_sub(a);
    struct operand o;
    if (root_operand(g, schema, a, s, f->path.pos, &o) < 0)
        return -1;
    return compile_cmp(g, f, &o);
}

static int compile_valuepath(struct gen *g, const struct scim_filter *f)
{
    const struct scim_schema *schema = NULL;
    const struct scim_attr *a = NULL, *s = NULL;
    if (scim_resolve_attr(g->rt, f->path.urn, f->path.attr, NULL, &schema, &a, &s) != 0)
        return bad_filter(g, f->path.pos, "unknown attribute \"%s\" in filter", f->path.attr);
    if (!a->multi_valued || a->type != SCIM_T_COMPLEX)
        return bad_filter(g, f->path.pos, "attribute \"%s\" is not multi-valued complex", a->name);
    struct ctx c;
    multi_ctx(g, schema, a, &c);
    if (c.kind == CTX_EMAILS && !emails_table_covers(f->left))
        c.kind = CTX_JSON;
    if (open_ctx(g, &c) < 0 || compile(g, f->left, &c) < 0)
        return -1;
    return close_ctx(g);
}

static int compile(struct gen *g, const struct scim_filter *f, const struct ctx *c)
{
    if (!f)
        return scim_err_internal(g->err, "sqlgen: empty filter node");
    switch (f->op) {
    case SCIM_F_AND:
    case SCIM_F_OR:
        if (emit(g, "(") < 0 || compile(g, f->left, c) < 0 ||
            emit(g, f->op == SCIM_F_AND ? " AND " : " OR ") < 0 || compile(g, f->right, c) < 0)
            return -1;
        return emit(g, ")");
    case SCIM_F_NOT:
        /* NULL (unknown) counts as false before negation: not (title eq "x") matches users
         * without a title */
        if (emit(g, "NOT coalesce(") < 0 || compile(g, f->left, c) < 0)
            return -1;
        return emit(g, ", ") | emit(g, g->d->false_sql) | emit(g, ")");
    case SCIM_F_VALUEPATH:
        if (c->kind != CTX_ROOT)
            return bad_filter(g, f->pos, "nested value filter on \"%s\"", f->path.attr);
        return compile_valuepath(g, f);
    default:
        if (c->kind == CTX_ROOT)
            return compile_leaf_root(g, f);
        if (f->path.urn || f->path.sub)
            return bad_filter(g, f->path.pos, "unknown attribute \"%s\" in value filter", f->path.attr);
        struct operand o;
        if (elem_operand(g, c, f->path.attr, f->path.pos, &o) < 0)
            return -1;
        return compile_cmp(g, f, &o);
    }
}

int scim_sqlgen_where(const struct scim_sql_dialect *d, const struct scim_resource_type *rt,
                      const struct scim_filter *f, int64_t tenant_id, int first_param,
                      struct scim_sql_frag *out, struct scim_err *err)
{
    struct gen g = {.d = d, .rt = rt, .tenant = tenant_id, .next_param = first_param,
                    .out = out, .b = &out->sql, .err = err};
    struct ctx root = {.kind = CTX_ROOT};
    return compile(&g, f, &root);
}

int scim_sqlgen_order(const struct scim_sql_dialect *d, const struct scim_resource_type *rt,
                      const struct scim_attrpath *sort_by, bool descending, struct scim_buf *out,
                      struct scim_err *err)
{
    struct scim_sql_frag dummy;
    scim_sql_frag_init(&dummy);
    struct gen g = {.d = d, .rt = rt, .out = &dummy, .b = out, .err = err};
    struct scim_buf key;
    scim_buf_init(&key, 8192);
    int rc = 0;
    const struct scim_schema *schema = NULL;
    const struct scim_attr *a = NULL, *s = NULL;
    if (!sort_by ||
        scim_resolve_attr(rt, sort_by->urn, sort_by->attr, sort_by->sub, &schema, &a, &s) != 0)
        goto pk;
    struct operand o;
    struct scim_err ignored;
    scim_err_clear(&ignored);
    g.err = &ignored;
    if (a->multi_valued) {
        struct ctx c;
        multi_ctx(&g, schema, a, &c);
        if (c.kind == CTX_MEMBERS || c.kind == CTX_GROUPS)
            goto pk;
        if (c.kind == CTX_EMAILS && s && !scim_streq_ci(s->name, "value") &&
            !scim_streq_ci(s->name, "type"))
            c.kind = CTX_JSON;
        if (elem_operand(&g, &c, s ? s->name : NULL, sort_by->pos, &o) < 0)
            goto pk;
        /* a scalar sub-query does not carry the column's NOCASE collation: fold explicitly */
        o.nocase = false;
        /* the primary value, else the first */
        if (c.kind == CTX_EMAILS) {
            rc |= scim_buf_printf(&key, "(SELECT %s FROM emails em WHERE em.resource_pk = r.pk "
                                        "ORDER BY coalesce(em.primary_, 0) DESC, em.rowid LIMIT 1)",
                                  o.expr);
        } else {
            const struct scim_attr *prim = a->type == SCIM_T_COMPLEX ? scim_attr_sub(a, "primary") : NULL;
            rc |= scim_buf_printf(&key, "(SELECT %s FROM ", o.expr);
            rc |= d->json_each(&key, "r.doc", c.keys, c.n_keys, "e");
            rc |= scim_buf_adds(&key, " ORDER BY ");
            if (prim) {
                struct scim_buf elem;
                scim_buf_init(&elem, 64);
                const char *pk = "primary";
                rc |= d->json_elem(&elem, "e");
                rc |= scim_buf_adds(&key, "coalesce(");
                rc |= d->json_get(&key, scim_buf_str(&elem), &pk, 1, SCIM_T_BOOLEAN);
                rc |= scim_buf_printf(&key, ", %s) DESC, ", d->false_sql);
                scim_buf_release(&elem);
            }
            rc |= d->json_elem_pos(&key, "e");
            rc |= scim_buf_adds(&key, " LIMIT 1)");
        }
    } else {
        if (a->type == SCIM_T_COMPLEX && !s && schema)
            s = default_sub(a);
        if (root_operand(&g, schema, a, s, sort_by->pos, &o) < 0 || o.sp == SP_TRUE)
            goto pk;
        if (o.sp == SP_RTYPE)
            goto pk;
        /* versions sort as numbers, not as their W/"n" text */
        rc |= scim_buf_adds(&key, o.sp == SP_VERSION ? "r.version" : o.expr);
    }
    bool is_string = o.type == SCIM_T_STRING || o.type == SCIM_T_REFERENCE;
    if (rc == 0 && is_string && !o.case_exact && !o.nocase) {
        char *k = scim_buf_take(&key);
        if (!k) {
            rc = -1;
        } else {
            rc |= d->fold(&key, k);
            free(k);
        }
    }
    if (rc == 0) {
        const char *k = scim_buf_str(&key);
        rc |= scim_buf_printf(out, "(%s) IS NULL, %s%s, ", k, k, descending ? " DESC" : "");
    }
pk:
    rc |= scim_buf_adds(out, "r.pk");
    scim_buf_release(&key);
    scim_sql_frag_release(&dummy);
    return rc ? scim_err_internal(err, "sqlgen: sort key too long") : 0;
}
