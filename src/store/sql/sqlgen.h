/* Filter AST and sortBy → parameterised SQL for the SQL backends.
 *
 * The generator knows the relational layout shared by all SQL backends (resources, emails,
 * members; see the SQLite migration) and asks a `struct scim_sql_dialect` for everything
 * spelled differently per database: placeholders, JSON extraction and iteration, case
 * folding, pattern matching. A new database is a new table of hooks, not a new generator.
 *
 * The generated text never contains a client value: every value becomes a bound parameter
 * (struct scim_sql_param, in placeholder order). Attribute names in JSON paths are the
 * canonical names from the schema registry (never the client's spelling), checked to contain
 * no quote or backslash. The fragments refer to the resources table under the alias `r`. */
#ifndef SCIM_STORE_SQL_SQLGEN_H
#define SCIM_STORE_SQL_SQLGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "scim/filter.h"
#include "scim/schema.h"

/* Most values one filter may bind (400 invalidFilter beyond). */
#define SCIM_SQL_MAX_PARAMS 200

enum scim_sql_ptype { SCIM_SQL_P_INT, SCIM_SQL_P_REAL, SCIM_SQL_P_TEXT };

struct scim_sql_param {
    enum scim_sql_ptype type;
    int64_t i;
    double d;
    char *s; /* SCIM_SQL_P_TEXT, owned */
};

/* Dialect hooks. Every hook appends to `b` and returns 0, or -1 when the buffer is full. */
struct scim_sql_dialect {
    const char *name;
    /* Boolean literals (SQLite has no boolean type: 1 and 0). */
    const char *true_sql, *false_sql;
    /* Placeholder of parameter number `n` (1-based, counted over the whole statement). */
    int (*placeholder)(struct scim_buf *b, int n);
    /* The scalar at the JSON path keys[0..n) inside JSON expression `src` (n == 0: src itself),
     * as a value comparable with a parameter of attribute type `t`. */
    int (*json_get)(struct scim_buf *b, const char *src, const char *const *keys, size_t n,
                    enum scim_atype t);
    /* A FROM item iterating the elements of the JSON array at keys in `src`, named `alias`. */
    int (*json_each)(struct scim_buf *b, const char *src, const char *const *keys, size_t n,
                     const char *alias);
    /* The JSON value of the current element of iterator `alias`, and its position. */
    int (*json_elem)(struct scim_buf *b, const char *alias);
    int (*json_elem_pos)(struct scim_buf *b, const char *alias);
    /* A boolean expression: the JSON array at keys in `src` has at least one element. */
    int (*json_nonempty)(struct scim_buf *b, const char *src, const char *const *keys, size_t n);
    /* Case folding of a text expression (ASCII at least). */
    int (*fold)(struct scim_buf *b, const char *expr);
    /* Microseconds since the epoch of an xsd:dateTime text expression. */
    int (*datetime_us)(struct scim_buf *b, const char *expr);
    /* Pattern match for co/sw/ew: the operator text placed between the expression and the
     * placeholder, the text after the placeholder, and the pattern to bind for `value`. */
    const char *(*match_op)(bool case_insensitive);
    const char *(*match_suffix)(bool case_insensitive);
    char *(*match_pattern)(const char *value, enum scim_fop op, bool case_insensitive);
    /* Case-insensitive columns (userName, displayName, emails.value). NULL: the column's
     * collation ignores case (SQLite NOCASE), so it is compared as is. Otherwise the column
     * expression to compare instead (PostgreSQL: lower(col), served by an expression index),
     * and values compared with it are folded (ASCII) before binding. */
    int (*fold_column)(struct scim_buf *b, const char *col);
};

extern const struct scim_sql_dialect scim_sql_dialect_sqlite;
/* PostgreSQL: $n placeholders, jsonb operators, lower() expression indexes on C-collated
 * columns, LIKE/ILIKE with ESCAPE. Needs the function scim_datetime_us(text) from its migration. */
extern const struct scim_sql_dialect scim_sql_dialect_pg;

/* A compiled WHERE fragment and its parameters. */
struct scim_sql_frag {
    struct scim_buf sql;
    struct scim_sql_param *params;
    size_t n_params;
    size_t cap_params;
};

void scim_sql_frag_init(struct scim_sql_frag *f);
void scim_sql_frag_release(struct scim_sql_frag *f);

/* Compiles `f` for resource type `rt` of tenant `tenant_id` into a boolean SQL expression
 * appended to out->sql, its parameters appended to out->params; the first placeholder is
 * number `first_param`. Unknown attributes, operators that do not fit the attribute type and
 * values that do not fit it are 400 invalidFilter (with err->pos at the node). */
int scim_sqlgen_where(const struct scim_sql_dialect *d, const struct scim_resource_type *rt,
                      const struct scim_filter *f, int64_t tenant_id, int first_param,
                      struct scim_sql_frag *out, struct scim_err *err);

/* Appends the ORDER BY list (without the keywords) for sorting by `sort_by` (NULL: creation
 * order): the sort key with NULLs last, then r.pk, so pages are stable. A multi-valued
 * attribute sorts by its primary (else first) value. An attribute the type does not have is
 * ignored (creation order). */
int scim_sqlgen_order(const struct scim_sql_dialect *d, const struct scim_resource_type *rt,
                      const struct scim_attrpath *sort_by, bool descending, struct scim_buf *out,
                      struct scim_err *err);

#endif
