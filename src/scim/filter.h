/* SCIM filters (RFC 7644 §3.4.2.2) and attribute paths (RFC 7644 §3.5.2 PATH, §3.10).
 *
 * Parsing produces an AST owned by the caller (scim_filter_free / scim_path_free). Every node
 * records the byte offset of its first character in the input, so errors and later checks can
 * name a position. Parsing is purely syntactic; attribute names are resolved against a resource
 * type by the consumer (SQL compiler, PATCH engine), using scim_resolve_attr.
 *
 * Grammar accepted (case-insensitive operators and keywords):
 *   FILTER    = OR
 *   OR        = AND *("or" AND)
 *   AND       = UNARY *("and" UNARY)
 *   UNARY     = "not" "(" FILTER ")" / "(" FILTER ")" / ATTREXP / VALUEPATH
 *   ATTREXP   = ATTRPATH "pr" / ATTRPATH COMPAREOP COMPVALUE
 *   VALUEPATH = ATTRPATH "[" VALFILTER "]" [ "." SUBATTR ( "pr" / COMPAREOP COMPVALUE ) ]
 *   ATTRPATH  = [URN ":"] ATTRNAME ["." SUBATTR]
 *   COMPVALUE = false / null / true / number / string / bare-token (lenient, see below)
 * Also "not" without parentheses before a single expression ("not emails pr").
 * `attr[f].sub op v` is folded into `attr[f and sub op v]` (both test one element).
 * A bare (unquoted) token as comparison value is accepted as a string with `bare` set
 * (compatibility: unquoted filter values, sent by Entra's legacy docs and the MS collections).
 *
 * Limits: the caller passes the maximum input length and nesting depth; beyond them the parse
 * fails with 400 invalidFilter (too long / too deeply nested).
 */
#ifndef SCIM_SCIM_FILTER_H
#define SCIM_SCIM_FILTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "scim/schema.h"

enum scim_fop {
    SCIM_F_EQ,
    SCIM_F_NE,
    SCIM_F_CO,
    SCIM_F_SW,
    SCIM_F_EW,
    SCIM_F_GT,
    SCIM_F_GE,
    SCIM_F_LT,
    SCIM_F_LE,
    SCIM_F_PR,
    SCIM_F_AND,
    SCIM_F_OR,
    SCIM_F_NOT,
    SCIM_F_VALUEPATH, /* path[left] */
};

enum scim_fval_type { SCIM_V_NULL, SCIM_V_BOOL, SCIM_V_NUMBER, SCIM_V_STRING };

struct scim_fval {
    enum scim_fval_type type;
    bool b;
    double num;      /* SCIM_V_NUMBER */
    bool is_integer; /* the literal had no fraction or exponent */
    int64_t i;       /* SCIM_V_NUMBER when is_integer */
    char *str;       /* SCIM_V_STRING (unescaped), or the raw literal text for numbers */
    bool bare;       /* the value was an unquoted token (compatibility) */
};

/* An attribute reference: [urn:]attr[.sub]. `urn` and `sub` may be NULL. */
struct scim_attrpath {
    char *urn;
    char *attr;
    char *sub;
    int pos;
};

struct scim_filter {
    enum scim_fop op;
    int pos;
    struct scim_attrpath path;        /* comparisons, PR, VALUEPATH */
    struct scim_fval val;             /* comparisons other than PR */
    struct scim_filter *left, *right; /* AND/OR: both; NOT: left; VALUEPATH: left = inner filter
                                         whose paths are relative to the element (attr = sub-attribute
                                         name, e.g. "type") */
};

struct scim_filter_limits {
    size_t max_length; /* bytes; 0 = unlimited */
    int max_depth;     /* nesting of and/or/not/parentheses/brackets; 0 = unlimited */
};

/* Parses a filter. On success *out is a new AST. On failure returns -1 with err set to
 * 400 invalidFilter, err->pos at the offending offset and a detail naming that position
 * ("... at position 17"). The registry, if given, is used to split URN prefixes
 * (scim_registry_split_urn); without it a URN ends at the last ':' before the attribute name. */
int scim_filter_parse(const char *text, const struct scim_filter_limits *limits,
                      const struct scim_registry *reg, struct scim_filter **out,
                      struct scim_err *err);
void scim_filter_free(struct scim_filter *f);

/* Renders an AST as a canonical S-expression, used by the data tests, e.g.
 *   (and (eq userName "bjensen") (valuepath emails (eq type "work")))
 * Caller frees the string. NULL on out of memory. */
char *scim_filter_to_sexp(const struct scim_filter *f);

/* A PATCH path (RFC 7644 §3.5.2): attrPath, or valuePath with an optional sub-attribute:
 *   name.givenName                        -> attr=name, sub=givenName
 *   emails[type eq "work"].value          -> attr=emails, filter=(eq type "work"), sub=value
 *   members[value eq "2819c223"]          -> attr=members, filter=...
 *   urn:...:enterprise:2.0:User:manager   -> urn=..., attr=manager
 *   urn:...:enterprise:2.0:User.manager   -> the same (dot separator, legacy Entra)
 */
struct scim_path {
    struct scim_attrpath a;     /* urn, attr, sub (sub: after '.' or after "]." ) */
    struct scim_filter *filter; /* value filter in brackets, or NULL */
};

/* Parses a PATCH path. Failure: 400 invalidPath with position. */
int scim_path_parse(const char *text, const struct scim_filter_limits *limits,
                    const struct scim_registry *reg, struct scim_path **out, struct scim_err *err);
void scim_path_free(struct scim_path *p);

/* Evaluates `f` against one JSON object (a resource, or an element of a multi-valued complex
 * attribute when evaluating the inside of a value filter). Attribute names are looked up
 * case-insensitively in the object; `attr_ctx` gives the schema of the object's attributes
 * (used for caseExact and types): for a resource, pass the core attrs of the resource type via
 * `rt` and NULL for `parent`; for an element, pass the complex attribute as `parent`.
 * Strings compare case-insensitively unless the attribute is caseExact; dateTime attributes
 * compare as instants; a multi-valued attribute matches if any value matches.
 * Returns true when the object matches. */
bool scim_filter_match(const struct scim_filter *f, json_t *obj, const struct scim_resource_type *rt,
                       const struct scim_attr *parent);

#endif
