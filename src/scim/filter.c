/* SCIM filter and attribute-path parser (RFC 7644 §3.4.2.2, §3.5.2), S-expression printer and
 * in-memory evaluator. See filter.h for the grammar and the contract. */
#include "scim/filter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/util.h"

/* Ceiling on nesting whatever the caller configures: the AST is walked recursively (free,
 * printing, evaluation, SQL compilation), so its height must stay far below what the stack can
 * take even when limits->max_depth is 0 ("unlimited") or set very high. */
#define HARD_MAX_DEPTH 1000

/* Longest piece of the input quoted back in an error detail. */
#define SNIPPET_MAX 32

struct parser {
    const char *s;
    size_t len;
    size_t i;
    int max_depth;
    const struct scim_registry *reg;
    struct scim_err *err;
    const char *what;      /* "filter" or "path", for details */
    const char *scim_type; /* invalidFilter or invalidPath */
    bool in_brackets;      /* inside a value filter: paths are relative, no nested '[' */
};

/* ---------------------------------------------------------------- helpers */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_namechar(char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '_';
}

static bool is_ws(char c)
{
    /* Spaces and tabs per the brief; CR/LF too, because clients wrap long filters. */
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char at(const struct parser *p, size_t i)
{
    return i < p->len ? p->s[i] : '\0';
}

static void skip_ws(struct parser *p)
{
    while (p->i < p->len && is_ws(p->s[p->i]))
        p->i++;
}

__attribute__((format(printf, 3, 4))) static int fail(struct parser *p, size_t pos,
                                                     const char *fmt, ...)
{
    char msg[SCIM_ERR_DETAIL_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return scim_err_set_pos(p->err, 400, p->scim_type, (int)pos, "invalid %s: %s at position %zu",
                            p->what, msg, pos);
}

/* Copies the token at `pos` (up to whitespace or a delimiter, at most SNIPPET_MAX bytes, cut on a
 * UTF-8 boundary, control characters replaced) into `out` for an error detail. */
static void snippet(const struct parser *p, size_t pos, char *out, size_t outlen)
{
    size_t n = 0;

    if (pos >= p->len) {
        snprintf(out, outlen, "end of input");
        return;
    }
    out[n++] = '"';
    size_t j = pos;
    if (strchr("()[]", p->s[j])) {
        out[n++] = p->s[j];
    } else {
        while (j < p->len && !is_ws(p->s[j]) && !strchr("()[]", p->s[j]) && j - pos < SNIPPET_MAX &&
               n + 3 < outlen) {
            unsigned char c = (unsigned char)p->s[j];
            out[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
            j++;
        }
        /* Do not end inside a multi-byte character. */
        if (j < p->len && ((unsigned char)p->s[j] & 0xC0) == 0x80) {
            while (n > 1 && ((unsigned char)out[n - 1] & 0xC0) == 0x80)
                n--;
            if (n > 1 && ((unsigned char)out[n - 1] & 0xC0) == 0xC0)
                n--;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
}

static size_t word_len(const struct parser *p, size_t i)
{
    size_t j = i;
    while (j < p->len && is_namechar(p->s[j]))
        j++;
    return j - i;
}

/* true if the word at the cursor is the keyword `kw` (case-insensitive, whole word). */
static bool at_keyword(const struct parser *p, const char *kw)
{
    size_t n = strlen(kw);
    return word_len(p, p->i) == n && scim_strncasecmp(p->s + p->i, kw, n) == 0;
}

static int effective_depth(const struct scim_filter_limits *limits)
{
    if (!limits || limits->max_depth <= 0 || limits->max_depth > HARD_MAX_DEPTH)
        return HARD_MAX_DEPTH;
    return limits->max_depth;
}

static void attrpath_clear(struct scim_attrpath *a)
{
    free(a->urn);
    free(a->attr);
    free(a->sub);
    a->urn = a->attr = a->sub = NULL;
}

void scim_filter_free(struct scim_filter *f)
{
    if (!f)
        return;
    scim_filter_free(f->left);
    scim_filter_free(f->right);
    attrpath_clear(&f->path);
    free(f->val.str);
    free(f);
}

void scim_path_free(struct scim_path *p)
{
    if (!p)
        return;
    attrpath_clear(&p->a);
    scim_filter_free(p->filter);
    free(p);
}

static struct scim_filter *node_new(struct parser *p, enum scim_fop op, size_t pos)
{
    struct scim_filter *f = calloc(1, sizeof *f);
    if (!f) {
        scim_err_nomem(p->err);
        return NULL;
    }
    f->op = op;
    f->pos = (int)pos;
    f->path.pos = (int)pos;
    return f;
}

static struct scim_filter *node_bin(struct parser *p, enum scim_fop op, size_t pos,
                                    struct scim_filter *l, struct scim_filter *r)
{
    struct scim_filter *f = node_new(p, op, pos);
    if (!f) {
        scim_filter_free(l);
        scim_filter_free(r);
        return NULL;
    }
    f->left = l;
    f->right = r;
    return f;
}

static char *dup_range(struct parser *p, size_t from, size_t to)
{
    char *s = scim_strndup(p->s + from, to - from);
    if (!s)
        scim_err_nomem(p->err);
    return s;
}

/* ---------------------------------------------------------------- attribute paths */

/* Length of an attribute name at `i` (ALPHA *nameChar, or "$ref"), 0 if there is none. */
static size_t name_len(const struct parser *p, size_t i, size_t end)
{
    if (i >= end)
        return 0;
    if (p->s[i] == '$') {
        if (end - i >= 4 && scim_strncasecmp(p->s + i, "$ref", 4) == 0 &&
            (i + 4 >= end || !is_namechar(p->s[i + 4])))
            return 4;
        return 0;
    }
    if (!is_alpha(p->s[i]))
        return 0;
    size_t j = i + 1;
    while (j < end && is_namechar(p->s[j]))
        j++;
    return j - i;
}

/* Parses `name ["." sub]` occupying exactly [i, end) into a->attr / a->sub. */
static int parse_names(struct parser *p, size_t i, size_t end, struct scim_attrpath *a)
{
    size_t n = name_len(p, i, end);
    if (!n) {
        char sn[SNIPPET_MAX + 8];
        snippet(p, i < end ? i : p->len, sn, sizeof sn);
        return fail(p, i, "expected an attribute name but found %s", sn);
    }
    if (!(a->attr = dup_range(p, i, i + n)))
        return -1;
    i += n;
    if (i < end && p->s[i] == '.') {
        i++;
        size_t m = name_len(p, i, end);
        if (!m)
            return fail(p, i, "expected a sub-attribute name after \".\"");
        if (!(a->sub = dup_range(p, i, i + m)))
            return -1;
        i += m;
        if (i < end && p->s[i] == '.')
            return fail(p, i, "an attribute path has at most one sub-attribute");
    }
    if (i < end)
        return fail(p, i, "invalid character in attribute name");
    return 0;
}

/* true if [from, to) looks like a schema version such as "2.0" (digits, dot, digits). */
static bool is_version(const struct parser *p, size_t from, size_t to)
{
    size_t i = from;
    bool dot = false;
    if (i >= to || !is_digit(p->s[i]))
        return false;
    while (i < to) {
        if (p->s[i] == '.') {
            if (i + 1 >= to || !is_digit(p->s[i + 1]))
                return false;
            dot = true;
        } else if (!is_digit(p->s[i])) {
            return false;
        }
        i++;
    }
    return dot;
}

/* A URN-qualified reference: "urn:...:Schema:attr[.sub]". The whole token runs to whitespace or a
 * delimiter; the URN is split off with the registry when there is one. */
static int parse_urn_path(struct parser *p, struct scim_attrpath *a)
{
    size_t start = p->i, end = p->i;
    while (end < p->len && !is_ws(p->s[end]) && !strchr("[]()\"", p->s[end]))
        end++;
    p->i = end;

    if (p->reg) {
        char *tok = dup_range(p, start, end);
        if (!tok)
            return -1;
        const char *rest = NULL;
        size_t n = scim_registry_split_urn(p->reg, tok, &rest);
        if (n > 0 && rest) {
            size_t restpos = start + (size_t)(rest - tok);
            free(tok);
            if (!(a->urn = dup_range(p, start, start + n)))
                return -1;
            if (restpos >= end)
                return fail(p, restpos, "expected an attribute name after the schema URN");
            return parse_names(p, restpos, end, a);
        }
        free(tok);
        /* Unknown URN: split it syntactically; the consumer reports the unknown schema. */
    }

    size_t lc = end;
    while (lc > start && p->s[lc - 1] != ':')
        lc--;
    lc--; /* index of the last ':' ("urn:" guarantees one) */
    size_t urn_end = lc, names = lc + 1;

    /* Legacy dot separator (Entra: "...:enterprise:2.0:User.manager"): when the part after the
     * last ':' is "Word.rest", "Word" starts with an upper-case letter and the segment before the
     * last ':' is a version ("2.0"), the URN is "...:2.0:Word" and "rest" is the attribute.
     * Attribute names start in lower case in every published schema and schema names in upper
     * case, so "...:User:name.givenName" keeps its usual reading. */
    size_t dot = names;
    while (dot < end && p->s[dot] != '.')
        dot++;
    if (dot < end && names < end && p->s[names] >= 'A' && p->s[names] <= 'Z') {
        size_t pc = lc;
        while (pc > start && p->s[pc - 1] != ':')
            pc--;
        if (is_version(p, pc, lc)) {
            urn_end = dot;
            names = dot + 1;
        }
    }
    if (urn_end <= start + 4)
        return fail(p, start, "invalid schema URN in attribute path");
    if (!(a->urn = dup_range(p, start, urn_end)))
        return -1;
    if (names >= end)
        return fail(p, names, "expected an attribute name after the schema URN");
    return parse_names(p, names, end, a);
}

static int parse_attrpath(struct parser *p, struct scim_attrpath *a)
{
    a->pos = (int)p->i;
    if (p->len - p->i > 4 && scim_strncasecmp(p->s + p->i, "urn:", 4) == 0)
        return parse_urn_path(p, a);
    size_t start = p->i;
    size_t n = name_len(p, start, p->len);
    if (!n) {
        char sn[SNIPPET_MAX + 8];
        snippet(p, start, sn, sizeof sn);
        return fail(p, start, "expected an attribute name but found %s", sn);
    }
    size_t end = start + n;
    if (at(p, end) == '.') {
        end++;
        size_t m = name_len(p, end, p->len);
        if (!m)
            return fail(p, end, "expected a sub-attribute name after \".\"");
        end += m;
        if (at(p, end) == '.')
            return fail(p, end, "an attribute path has at most one sub-attribute");
    }
    p->i = end;
    return parse_names(p, start, end, a);
}

/* ---------------------------------------------------------------- values */

static int hex4(const struct parser *p, size_t i, unsigned *out)
{
    unsigned v = 0;
    for (size_t k = 0; k < 4; k++) {
        char c = at(p, i + k);
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static int add_utf8(struct scim_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return scim_buf_add(b, u, n);
}

/* A JSON string at the cursor (which is on the opening quote). */
static int parse_string(struct parser *p, struct scim_fval *v)
{
    size_t start = p->i;
    struct scim_buf b;
    int rc = -1;

    scim_buf_init(&b, 0);
    p->i++;
    for (;;) {
        if (p->i >= p->len) {
            fail(p, start, "unterminated string");
            goto out;
        }
        char c = p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c != '\\') {
            size_t j = p->i;
            while (j < p->len && p->s[j] != '"' && p->s[j] != '\\')
                j++;
            if (scim_buf_add(&b, p->s + p->i, j - p->i)) {
                scim_err_nomem(p->err);
                goto out;
            }
            p->i = j;
            continue;
        }
        size_t esc = p->i;
        char e = at(p, p->i + 1);
        char out = 0;
        switch (e) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(p, esc + 2, &cp)) {
                fail(p, esc, "invalid \\u escape in string");
                goto out;
            }
            p->i = esc + 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (at(p, p->i) != '\\' || at(p, p->i + 1) != 'u' || hex4(p, p->i + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF) {
                    fail(p, esc, "unpaired surrogate in \\u escape");
                    goto out;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p->i += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail(p, esc, "unpaired surrogate in \\u escape");
                goto out;
            } else if (cp == 0) {
                fail(p, esc, "\\u0000 is not allowed in a string");
                goto out;
            }
            if (add_utf8(&b, cp)) {
                scim_err_nomem(p->err);
                goto out;
            }
            continue;
        }
        default:
            fail(p, esc, "invalid escape sequence in string");
            goto out;
        }
        if (scim_buf_addc(&b, out)) {
            scim_err_nomem(p->err);
            goto out;
        }
        p->i = esc + 2;
    }
    if (!(v->str = scim_buf_take(&b))) {
        scim_err_nomem(p->err);
        goto out;
    }
    v->type = SCIM_V_STRING;
    rc = 0;
out:
    scim_buf_release(&b);
    return rc;
}

/* Length of a JSON number at the start of [i, end), 0 if there is none. */
static size_t number_len(const struct parser *p, size_t i, size_t end, bool *is_int)
{
    size_t j = i;
    *is_int = true;
    if (j < end && p->s[j] == '-')
        j++;
    if (j >= end || !is_digit(p->s[j]))
        return 0;
    if (p->s[j] == '0')
        j++;
    else
        while (j < end && is_digit(p->s[j]))
            j++;
    if (j < end && p->s[j] == '.') {
        if (j + 1 >= end || !is_digit(p->s[j + 1]))
            return j - i;
        j++;
        while (j < end && is_digit(p->s[j]))
            j++;
        *is_int = false;
    }
    if (j < end && (p->s[j] == 'e' || p->s[j] == 'E')) {
        size_t k = j + 1;
        if (k < end && (p->s[k] == '+' || p->s[k] == '-'))
            k++;
        if (k < end && is_digit(p->s[k])) {
            while (k < end && is_digit(p->s[k]))
                k++;
            j = k;
            *is_int = false;
        }
    }
    return j - i;
}

static int parse_value(struct parser *p, struct scim_fval *v, const char *opname)
{
    size_t start = p->i;
    char c = at(p, start);

    if (start >= p->len || strchr("()[]", c)) {
        char sn[SNIPPET_MAX + 8];
        snippet(p, start, sn, sizeof sn);
        return fail(p, start, "expected a value after \"%s\" but found %s", opname, sn);
    }
    if (c == '"')
        return parse_string(p, v);

    /* A run up to whitespace, ')' or ']' is a number, a literal or a bare (lenient) string. */
    size_t end = start;
    while (end < p->len && !is_ws(p->s[end]) && p->s[end] != ')' && p->s[end] != ']')
        end++;
    size_t n = end - start;
    p->i = end;

    bool is_int;
    if (number_len(p, start, end, &is_int) == n) {
        if (!(v->str = dup_range(p, start, end)))
            return -1;
        v->type = SCIM_V_NUMBER;
        v->num = strtod(v->str, NULL);
        v->is_integer = false;
        if (is_int) {
            errno = 0;
            long long ll = strtoll(v->str, NULL, 10);
            if (errno == 0) {
                v->is_integer = true;
                v->i = (int64_t)ll;
            }
        }
        return 0;
    }
    if (n == 4 && scim_strncasecmp(p->s + start, "true", 4) == 0) {
        v->type = SCIM_V_BOOL;
        v->b = true;
        return 0;
    }
    if (n == 5 && scim_strncasecmp(p->s + start, "false", 5) == 0) {
        v->type = SCIM_V_BOOL;
        v->b = false;
        return 0;
    }
    if (n == 4 && scim_strncasecmp(p->s + start, "null", 4) == 0) {
        v->type = SCIM_V_NULL;
        return 0;
    }
    if (!(v->str = dup_range(p, start, end)))
        return -1;
    v->type = SCIM_V_STRING;
    v->bare = true;
    return 0;
}

/* ---------------------------------------------------------------- filters */

static const struct {
    const char *name;
    enum scim_fop op;
} ops[] = {
    {"eq", SCIM_F_EQ}, {"ne", SCIM_F_NE}, {"co", SCIM_F_CO}, {"sw", SCIM_F_SW},
    {"ew", SCIM_F_EW}, {"gt", SCIM_F_GT}, {"ge", SCIM_F_GE}, {"lt", SCIM_F_LT},
    {"le", SCIM_F_LE}, {"pr", SCIM_F_PR},
};

static const char *op_name(enum scim_fop op)
{
    switch (op) {
    case SCIM_F_AND: return "and";
    case SCIM_F_OR: return "or";
    case SCIM_F_NOT: return "not";
    case SCIM_F_VALUEPATH: return "valuepath";
    default: break;
    }
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (ops[k].op == op)
            return ops[k].name;
    return "?";
}

/* Operator and value after an attribute path that occupies [pstart, pend) of the input; `f`
 * already holds the path. */
static int parse_cmp_tail(struct parser *p, struct scim_filter *f, size_t pstart, size_t pend)
{
    skip_ws(p);
    size_t opos = p->i;
    size_t n = word_len(p, opos);
    for (size_t k = 0; n == 2 && k < sizeof ops / sizeof ops[0]; k++) {
        if (scim_strncasecmp(p->s + opos, ops[k].name, 2) == 0) {
            f->op = ops[k].op;
            p->i += 2;
            if (f->op == SCIM_F_PR)
                return 0;
            skip_ws(p);
            return parse_value(p, &f->val, ops[k].name);
        }
    }
    size_t shown = pend - pstart > 64 ? 64 : pend - pstart;
    return fail(p, opos, "expected a comparison operator after \"%.*s\"", (int)shown, p->s + pstart);
}

static struct scim_filter *parse_or(struct parser *p, int depth, int *height);

static bool too_deep(const struct parser *p, int levels)
{
    return levels > p->max_depth;
}

/* Attribute expression or value path. */
static struct scim_filter *parse_attrexp(struct parser *p, int depth, int *height)
{
    size_t start = p->i;
    struct scim_filter *f = node_new(p, SCIM_F_EQ, start);
    struct scim_filter *inner = NULL, *cmp = NULL;
    if (!f)
        return NULL;
    if (parse_attrpath(p, &f->path))
        goto fail;
    size_t pend = p->i;
    skip_ws(p);
    if (at(p, p->i) != '[') {
        *height = 0;
        if (parse_cmp_tail(p, f, start, pend))
            goto fail;
        return f;
    }

    size_t bpos = p->i;
    if (p->in_brackets) {
        fail(p, bpos, "nested value filters are not allowed");
        goto fail;
    }
    if (f->path.sub) {
        fail(p, bpos, "a value filter must follow an attribute, not a sub-attribute");
        goto fail;
    }
    if (too_deep(p, depth + 1)) {
        fail(p, bpos, "nesting deeper than %d levels", p->max_depth);
        goto fail;
    }
    p->i++;
    p->in_brackets = true;
    int h = 0;
    inner = parse_or(p, depth + 1, &h);
    p->in_brackets = false;
    if (!inner)
        goto fail;
    skip_ws(p);
    if (at(p, p->i) != ']') {
        char sn[SNIPPET_MAX + 8];
        snippet(p, p->i, sn, sizeof sn);
        fail(p, p->i, "expected \"]\" but found %s", sn);
        goto fail;
    }
    p->i++;
    h++;
    if (at(p, p->i) == '.') {
        /* attr[f].sub op v  ->  attr[f and sub op v]: both conditions test the same element. */
        p->i++;
        size_t spos = p->i;
        size_t m = name_len(p, spos, p->len);
        if (!m) {
            fail(p, spos, "expected a sub-attribute name after \"].\"");
            goto fail;
        }
        if (!(cmp = node_new(p, SCIM_F_EQ, spos)))
            goto fail;
        if (!(cmp->path.attr = dup_range(p, spos, spos + m)))
            goto fail;
        p->i = spos + m;
        if (parse_cmp_tail(p, cmp, start, p->i))
            goto fail;
        if (too_deep(p, depth + h + 1)) {
            fail(p, bpos, "nesting deeper than %d levels", p->max_depth);
            goto fail;
        }
        inner = node_bin(p, SCIM_F_AND, (size_t)inner->pos, inner, cmp);
        cmp = NULL;
        if (!inner)
            goto fail;
        h++;
    }
    f->op = SCIM_F_VALUEPATH;
    f->left = inner;
    *height = h;
    return f;
fail:
    scim_filter_free(f);
    scim_filter_free(inner);
    scim_filter_free(cmp);
    return NULL;
}

static struct scim_filter *parse_unary(struct parser *p, int depth, int *height)
{
    skip_ws(p);
    size_t pos = p->i;
    char c = at(p, pos);

    if (pos >= p->len) {
        fail(p, pos, "expected an attribute name, \"(\" or \"not\" but found end of input");
        return NULL;
    }
    if (at_keyword(p, "and") || at_keyword(p, "or")) {
        /* Reserved here: no schema has such attributes, and the error reads better. */
        char sn[SNIPPET_MAX + 8];
        snippet(p, pos, sn, sizeof sn);
        fail(p, pos, "expected an attribute name, \"(\" or \"not\" but found %s", sn);
        return NULL;
    }
    if (c == '(' || at_keyword(p, "not")) {
        bool is_not = c != '(';
        if (too_deep(p, depth + 1)) {
            fail(p, pos, "nesting deeper than %d levels", p->max_depth);
            return NULL;
        }
        int h = 0;
        struct scim_filter *inner;
        if (is_not) {
            p->i += 3;
            skip_ws(p);
            if (at(p, p->i) != '(') {
                /* "not attr pr": negation of a single expression */
                inner = parse_unary(p, depth + 1, &h);
                if (!inner)
                    return NULL;
                *height = h + 1;
                return node_bin(p, SCIM_F_NOT, pos, inner, NULL);
            }
        }
        size_t lpar = p->i;
        p->i++;
        inner = parse_or(p, depth + 1, &h);
        if (!inner)
            return NULL;
        skip_ws(p);
        if (at(p, p->i) != ')') {
            char sn[SNIPPET_MAX + 8];
            snippet(p, p->i, sn, sizeof sn);
            fail(p, p->i, "expected \")\" to close \"(\" at %zu but found %s", lpar, sn);
            scim_filter_free(inner);
            return NULL;
        }
        p->i++;
        *height = h + 1;
        return is_not ? node_bin(p, SCIM_F_NOT, pos, inner, NULL) : inner;
    }
    return parse_attrexp(p, depth, height);
}

/* One level of a left-associative chain: kw = "and" (terms parsed by parse_unary) or "or"
 * (terms parsed by the "and" level). Every operator adds one level of AST height, and the height
 * is checked against the limit as the chain grows, so a long flat chain cannot build a tree
 * deeper than the recursive walkers can handle. */
static struct scim_filter *parse_chain(struct parser *p, int depth, int *height, bool is_or)
{
    int h = 0, h2 = 0;
    struct scim_filter *left = is_or ? parse_chain(p, depth, &h, false) : parse_unary(p, depth, &h);
    if (!left)
        return NULL;
    for (;;) {
        skip_ws(p);
        size_t opos = p->i;
        if (!at_keyword(p, is_or ? "or" : "and"))
            break;
        p->i += is_or ? 2 : 3;
        struct scim_filter *right =
            is_or ? parse_chain(p, depth, &h2, false) : parse_unary(p, depth, &h2);
        if (!right) {
            scim_filter_free(left);
            return NULL;
        }
        h = (h > h2 ? h : h2) + 1;
        left = node_bin(p, is_or ? SCIM_F_OR : SCIM_F_AND, (size_t)left->pos, left, right);
        if (!left)
            return NULL;
        if (too_deep(p, depth + h)) {
            scim_filter_free(left);
            fail(p, opos, "nesting deeper than %d levels", p->max_depth);
            return NULL;
        }
    }
    *height = h;
    return left;
}

static struct scim_filter *parse_or(struct parser *p, int depth, int *height)
{
    return parse_chain(p, depth, height, true);
}

static int check_input(struct parser *p, const char *text, const struct scim_filter_limits *limits)
{
    p->s = text ? text : "";
    p->len = strlen(p->s);
    if (limits && limits->max_length > 0 && p->len > limits->max_length)
        return fail(p, limits->max_length, "longer than %zu bytes", limits->max_length);
    skip_ws(p);
    if (p->i >= p->len)
        return fail(p, 0, "empty %s", p->what);
    return 0;
}

static int check_end(struct parser *p)
{
    skip_ws(p);
    if (p->i < p->len) {
        char sn[SNIPPET_MAX + 8];
        snippet(p, p->i, sn, sizeof sn);
        return fail(p, p->i, "unexpected %s", sn);
    }
    return 0;
}

int scim_filter_parse(const char *text, const struct scim_filter_limits *limits,
                      const struct scim_registry *reg, struct scim_filter **out,
                      struct scim_err *err)
{
    struct parser p = {
        .max_depth = effective_depth(limits),
        .reg = reg,
        .err = err,
        .what = "filter",
        .scim_type = SCIM_TYPE_INVALID_FILTER,
    };
    struct scim_filter *f = NULL;
    int h = 0;

    *out = NULL;
    if (check_input(&p, text, limits))
        return -1;
    if (!(f = parse_or(&p, 0, &h)))
        return -1;
    if (check_end(&p)) {
        scim_filter_free(f);
        return -1;
    }
    *out = f;
    return 0;
}

int scim_path_parse(const char *text, const struct scim_filter_limits *limits,
                    const struct scim_registry *reg, struct scim_path **out, struct scim_err *err)
{
    struct parser p = {
        .max_depth = effective_depth(limits),
        .reg = reg,
        .err = err,
        .what = "path",
        .scim_type = SCIM_TYPE_INVALID_PATH,
    };
    struct scim_path *path = NULL;
    int h = 0;

    *out = NULL;
    if (check_input(&p, text, limits))
        return -1;
    if (!(path = calloc(1, sizeof *path)))
        return scim_err_nomem(err);
    if (parse_attrpath(&p, &path->a))
        goto fail;
    if (at(&p, p.i) == '[') {
        size_t bpos = p.i;
        if (path->a.sub) {
            fail(&p, bpos, "a value filter must follow an attribute, not a sub-attribute");
            goto fail;
        }
        if (too_deep(&p, 1)) {
            fail(&p, bpos, "nesting deeper than %d levels", p.max_depth);
            goto fail;
        }
        p.i++;
        p.in_brackets = true;
        if (!(path->filter = parse_or(&p, 1, &h)))
            goto fail;
        p.in_brackets = false;
        skip_ws(&p);
        if (at(&p, p.i) != ']') {
            char sn[SNIPPET_MAX + 8];
            snippet(&p, p.i, sn, sizeof sn);
            fail(&p, p.i, "expected \"]\" but found %s", sn);
            goto fail;
        }
        p.i++;
        if (at(&p, p.i) == '.') {
            p.i++;
            size_t spos = p.i;
            size_t m = name_len(&p, spos, p.len);
            if (!m) {
                fail(&p, spos, "expected a sub-attribute name after \"].\"");
                goto fail;
            }
            if (!(path->a.sub = dup_range(&p, spos, spos + m)))
                goto fail;
            p.i = spos + m;
        }
    }
    if (check_end(&p))
        goto fail;
    *out = path;
    return 0;
fail:
    scim_path_free(path);
    return -1;
}

/* ---------------------------------------------------------------- S-expressions */

static int sexp_path(struct scim_buf *b, const struct scim_attrpath *a)
{
    if (a->urn && (scim_buf_adds(b, a->urn) || scim_buf_addc(b, ':')))
        return -1;
    if (scim_buf_adds(b, a->attr ? a->attr : "?"))
        return -1;
    if (a->sub && (scim_buf_addc(b, '.') || scim_buf_adds(b, a->sub)))
        return -1;
    return 0;
}

static int sexp_string(struct scim_buf *b, const char *s)
{
    if (scim_buf_addc(b, '"'))
        return -1;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        int rc;
        switch (*c) {
        case '"': rc = scim_buf_adds(b, "\\\""); break;
        case '\\': rc = scim_buf_adds(b, "\\\\"); break;
        case '\n': rc = scim_buf_adds(b, "\\n"); break;
        case '\r': rc = scim_buf_adds(b, "\\r"); break;
        case '\t': rc = scim_buf_adds(b, "\\t"); break;
        case '\b': rc = scim_buf_adds(b, "\\b"); break;
        case '\f': rc = scim_buf_adds(b, "\\f"); break;
        default:
            rc = *c < 0x20 || *c == 0x7f ? scim_buf_printf(b, "\\u%04x", *c)
                                         : scim_buf_addc(b, (char)*c);
        }
        if (rc)
            return -1;
    }
    return scim_buf_addc(b, '"');
}

static int sexp_value(struct scim_buf *b, const struct scim_fval *v)
{
    switch (v->type) {
    case SCIM_V_NULL: return scim_buf_adds(b, "null");
    case SCIM_V_BOOL: return scim_buf_adds(b, v->b ? "true" : "false");
    case SCIM_V_NUMBER: return scim_buf_adds(b, v->str ? v->str : "0");
    case SCIM_V_STRING:
        if (v->bare)
            return scim_buf_addc(b, '\'') || scim_buf_adds(b, v->str ? v->str : "") ? -1 : 0;
        return sexp_string(b, v->str ? v->str : "");
    }
    return -1;
}

static int sexp(struct scim_buf *b, const struct scim_filter *f)
{
    if (!f)
        return scim_buf_adds(b, "()");
    if (scim_buf_addc(b, '(') || scim_buf_adds(b, op_name(f->op)) || scim_buf_addc(b, ' '))
        return -1;
    switch (f->op) {
    case SCIM_F_AND:
    case SCIM_F_OR:
        if (sexp(b, f->left) || scim_buf_addc(b, ' ') || sexp(b, f->right))
            return -1;
        break;
    case SCIM_F_NOT:
        if (sexp(b, f->left))
            return -1;
        break;
    case SCIM_F_VALUEPATH:
        if (sexp_path(b, &f->path) || scim_buf_addc(b, ' ') || sexp(b, f->left))
            return -1;
        break;
    case SCIM_F_PR:
        if (sexp_path(b, &f->path))
            return -1;
        break;
    default:
        if (sexp_path(b, &f->path) || scim_buf_addc(b, ' ') || sexp_value(b, &f->val))
            return -1;
    }
    return scim_buf_addc(b, ')');
}

char *scim_filter_to_sexp(const struct scim_filter *f)
{
    struct scim_buf b;
    scim_buf_init(&b, 0);
    if (sexp(&b, f)) {
        scim_buf_release(&b);
        return NULL;
    }
    return scim_buf_take(&b);
}

/* ---------------------------------------------------------------- evaluation */

static json_t *get_ci(json_t *obj, const char *key)
{
    const char *k;
    json_t *v;

    if (!json_is_object(obj) || !key)
        return NULL;
    if ((v = json_object_get(obj, key)))
        return v;
    json_object_foreach(obj, k, v) {
        if (scim_streq_ci(k, key))
            return v;
    }
    return NULL;
}

static bool contains_ci(const char *hay, const char *needle, bool exact)
{
    size_t n = strlen(needle), h = strlen(hay);
    if (n > h)
        return false;
    for (size_t i = 0; i + n <= h; i++)
        if (exact ? memcmp(hay + i, needle, n) == 0 : scim_strncasecmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

static bool order_ok(enum scim_fop op, int c)
{
    switch (op) {
    case SCIM_F_EQ: return c == 0;
    case SCIM_F_NE: return c != 0;
    case SCIM_F_GT: return c > 0;
    case SCIM_F_GE: return c >= 0;
    case SCIM_F_LT: return c < 0;
    case SCIM_F_LE: return c <= 0;
    default: return false;
    }
}

static bool is_ordering(enum scim_fop op)
{
    return op == SCIM_F_EQ || op == SCIM_F_NE || op == SCIM_F_GT || op == SCIM_F_GE ||
           op == SCIM_F_LT || op == SCIM_F_LE;
}

/* "true"/"false" in any case: -1 when `s` is neither. */
static int bool_text(const char *s)
{
    if (scim_streq_ci(s, "true"))
        return 1;
    if (scim_streq_ci(s, "false"))
        return 0;
    return -1;
}

static bool cmp_string(const struct scim_filter *f, const char *s, const struct scim_attr *meta)
{
    const struct scim_fval *v = &f->val;
    const char *t;

    switch (v->type) {
    case SCIM_V_STRING:
    case SCIM_V_NUMBER: t = v->str ? v->str : ""; break;
    case SCIM_V_BOOL: {
        /* A boolean stored as text ("True"), as some clients send it. */
        int b = bool_text(s);
        if (f->op != SCIM_F_EQ && f->op != SCIM_F_NE)
            return false;
        if (b < 0)
            return f->op == SCIM_F_NE;
        return ((b != 0) == v->b) == (f->op == SCIM_F_EQ);
    }
    default: return false;
    }

    /* Instants: for dateTime attributes, and for attributes we know nothing about when both
     * sides parse (a lenient bare date such as 2015-10-10T14:38:21.8617979-07:00). */
    if (is_ordering(f->op) && (!meta || meta->type == SCIM_T_DATETIME)) {
        int64_t a, b;
        if (scim_datetime_parse(s, &a) == 0 && scim_datetime_parse(t, &b) == 0)
            return order_ok(f->op, a < b ? -1 : a > b);
    }
    bool exact = meta && meta->case_exact;
    switch (f->op) {
    case SCIM_F_CO: return contains_ci(s, t, exact);
    case SCIM_F_SW: {
        size_t n = strlen(t);
        return exact ? strncmp(s, t, n) == 0 : scim_strncasecmp(s, t, n) == 0;
    }
    case SCIM_F_EW: {
        size_t n = strlen(t), m = strlen(s);
        if (n > m)
            return false;
        return exact ? strcmp(s + m - n, t) == 0 : scim_strcasecmp(s + m - n, t) == 0;
    }
    default: {
        int c = exact ? strcmp(s, t) : scim_strcasecmp(s, t);
        return order_ok(f->op, c);
    }
    }
}

static bool cmp_bool(const struct scim_filter *f, bool b)
{
    int x;
    if (f->op != SCIM_F_EQ && f->op != SCIM_F_NE)
        return false;
    if (f->val.type == SCIM_V_BOOL)
        x = f->val.b;
    else if (f->val.type == SCIM_V_STRING && f->val.str)
        x = bool_text(f->val.str);
    else
        x = -1;
    if (x < 0)
        return f->op == SCIM_F_NE;
    return ((x != 0) == b) == (f->op == SCIM_F_EQ);
}

static bool cmp_number(const struct scim_filter *f, json_t *n)
{
    const struct scim_fval *v = &f->val;
    double d;
    if (!is_ordering(f->op))
        return false;
    if (v->type == SCIM_V_NUMBER) {
        if (json_is_integer(n) && v->is_integer) {
            json_int_t a = json_integer_value(n);
            return order_ok(f->op, a < v->i ? -1 : a > v->i);
        }
        d = v->num;
    } else if (v->type == SCIM_V_STRING && v->str && *v->str) {
        char *end;
        d = strtod(v->str, &end);
        if (*end)
            return f->op == SCIM_F_NE;
    } else {
        return f->op == SCIM_F_NE;
    }
    double a = json_number_value(n);
    return order_ok(f->op, a < d ? -1 : a > d);
}

/* One scalar (or a complex value, compared through its "value" sub-attribute). */
static bool cmp_leaf(const struct scim_filter *f, json_t *v, const struct scim_attr *meta)
{
    if (json_is_object(v)) {
        v = get_ci(v, "value");
        if (meta && meta->type == SCIM_T_COMPLEX)
            meta = scim_attr_sub(meta, "value");
    }
    if (json_is_string(v))
        return cmp_string(f, json_string_value(v), meta);
    if (json_is_boolean(v))
        return cmp_bool(f, json_is_true(v));
    if (json_is_number(v))
        return cmp_number(f, v);
    return false;
}

static bool present(json_t *v)
{
    const char *k;
    json_t *m;
    size_t i;

    if (!v || json_is_null(v))
        return false;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_array(v)) {
        json_array_foreach(v, i, m) {
            if (present(m))
                return true;
        }
        return false;
    }
    if (json_is_object(v)) {
        json_object_foreach(v, k, m) {
            if (present(m))
                return true;
        }
        return false;
    }
    return true;
}

/* Calls the predicate on each value the path reaches from `v` (the attribute's value): the
 * elements of a multi-valued attribute, the sub-attribute of each element. */
static bool any_value(const struct scim_filter *f, json_t *v, const char *sub,
                      const struct scim_attr *meta, bool pr)
{
    size_t i;
    json_t *e;

    if (!v)
        return false;
    if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            if (any_value(f, e, sub, meta, pr))
                return true;
        }
        return false;
    }
    if (sub) {
        if (!json_is_object(v))
            return false;
        return any_value(f, get_ci(v, sub), NULL, meta, pr);
    }
    return pr ? present(v) : cmp_leaf(f, v, meta);
}

static json_t *attr_value(json_t *obj, const struct scim_attrpath *a,
                          const struct scim_resource_type *rt)
{
    json_t *container = obj;
    if (a->urn) {
        json_t *ext = get_ci(obj, a->urn);
        if (json_is_object(ext))
            container = ext;
        /* A core-schema URN names attributes at the top level; an extension whose object is
         * missing has no values. */
        else if (!(rt && rt->schema && scim_streq_ci(a->urn, rt->schema->id)) &&
                 !(!rt && contains_ci(a->urn, ":core:", false)))
            return NULL;
    }
    return get_ci(container, a->attr);
}

/* Metadata of the leaf the comparison looks at, NULL when unknown. */
static const struct scim_attr *leaf_meta(const struct scim_attrpath *a,
                                         const struct scim_resource_type *rt,
                                         const struct scim_attr *parent, const struct scim_attr **attr)
{
    const struct scim_attr *at_ = NULL, *sub = NULL;
    if (parent) {
        at_ = scim_attr_sub(parent, a->attr);
        if (at_ && a->sub)
            sub = scim_attr_sub(at_, a->sub);
    } else if (rt) {
        const struct scim_schema *s = NULL;
        if (scim_resolve_attr(rt, a->urn, a->attr, NULL, &s, &at_, &sub) != 0)
            at_ = NULL;
        sub = at_ && a->sub ? scim_attr_sub(at_, a->sub) : NULL;
    }
    if (attr)
        *attr = at_;
    return a->sub ? sub : at_;
}

bool scim_filter_match(const struct scim_filter *f, json_t *obj, const struct scim_resource_type *rt,
                       const struct scim_attr *parent)
{
    if (!f || !json_is_object(obj))
        return false;
    switch (f->op) {
    case SCIM_F_AND:
        return scim_filter_match(f->left, obj, rt, parent) &&
               scim_filter_match(f->right, obj, rt, parent);
    case SCIM_F_OR:
        return scim_filter_match(f->left, obj, rt, parent) ||
               scim_filter_match(f->right, obj, rt, parent);
    case SCIM_F_NOT:
        return !scim_filter_match(f->left, obj, rt, parent);
    case SCIM_F_VALUEPATH: {
        const struct scim_attr *a = NULL;
        leaf_meta(&f->path, rt, parent, &a);
        json_t *v = attr_value(obj, &f->path, parent ? NULL : rt);
        size_t i;
        json_t *e;
        /* Inside the brackets paths are relative to the element: metadata comes from the complex
         * attribute only (never from the resource type, which would resolve "type" wrongly). */
        if (json_is_object(v))
            return scim_filter_match(f->left, v, NULL, a);
        json_array_foreach(v, i, e) {
            if (scim_filter_match(f->left, e, NULL, a))
                return true;
        }
        return false;
    }
    default: break;
    }

    json_t *v = attr_value(obj, &f->path, parent ? NULL : rt);
    const struct scim_attr *meta = leaf_meta(&f->path, rt, parent, NULL);
    bool has = any_value(f, v, f->path.sub, meta, true);
    if (f->op == SCIM_F_PR)
        return has;
    if (f->val.type == SCIM_V_NULL) {
        /* "eq null" asks for absence (RFC 7644 §3.4.2.2 treats null like an absent value). */
        if (f->op == SCIM_F_EQ)
            return !has;
        if (f->op == SCIM_F_NE)
            return has;
        return false;
    }
    /* An absent attribute is "not equal" to any value. */
    if (f->op == SCIM_F_NE && !has)
        return true;
    return any_value(f, v, f->path.sub, meta, false);
}
