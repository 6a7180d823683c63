/* Compact JSON serialisation identical to jansson's (jsondump.h). */
#include "common/jsondump.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

#define MAX_DEPTH 512

/* 1 written, 0 not supported here (the caller falls back to json_dumps), -1 out of memory */
static int dump(struct scim_buf *b, const json_t *v, int depth);

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid: the checks of jansson's
 * utf8_check_first/utf8_check_full (no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c < 0xC2 || c > 0xF4)
        return 0;
    len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (len > n)
        return 0;
    cp = c & (len == 2 ? 0x1Fu : len == 3 ? 0x0Fu : 0x07u);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int dump_string(struct scim_buf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;
    if (scim_buf_addc(b, '"') < 0)
        return -1;
    while (i < n) {
        unsigned c = s[i];
        const char *esc = NULL;
        char u[8];
        if (c >= 0x80) {
            size_t l = utf8_len(s + i, n - i);
            if (!l)
                return 0;
            i += l;
            run += l;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            run++;
            continue;
        }
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            snprintf(u, sizeof u, "\\u%04X", c);
            esc = u;
        }
        if (scim_buf_add(b, s + i - run, run) < 0 || scim_buf_adds(b, esc) < 0)
            return -1;
        run = 0;
        i++;
    }
    if (scim_buf_add(b, s + i - run, run) < 0 || scim_buf_addc(b, '"') < 0)
        return -1;
    return 1;
}

static int dump(struct scim_buf *b, const json_t *v, int depth)
{
    char num[32];
    int rc;
    if (depth > MAX_DEPTH)
        return 0;
    switch (json_typeof(v)) {
    case JSON_NULL:
        return scim_buf_adds(b, "null") < 0 ? -1 : 1;
    case JSON_TRUE:
        return scim_buf_adds(b, "true") < 0 ? -1 : 1;
    case JSON_FALSE:
        return scim_buf_adds(b, "false") < 0 ? -1 : 1;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return scim_buf_adds(b, num) < 0 ? -1 : 1;
    case JSON_STRING:
        return dump_string(b, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (scim_buf_addc(b, '[') < 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (i && scim_buf_addc(b, ',') < 0)
                return -1;
            if ((rc = dump(b, json_array_get(v, i), depth + 1)) <= 0)
                return rc;
        }
        return scim_buf_addc(b, ']') < 0 ? -1 : 1;
    }
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        bool first = true;
        if (scim_buf_addc(b, '{') < 0)
            return -1;
        /* json_object_foreach needs a non-const object; iteration does not modify it */
        json_t *obj = (json_t *)(uintptr_t)v;
        json_object_foreach(obj, key, val) {
            if (!first && scim_buf_addc(b, ',') < 0)
                return -1;
            first = false;
            if ((rc = dump_string(b, key, strlen(key))) <= 0)
                return rc;
            if (scim_buf_addc(b, ':') < 0)
                return -1;
            if ((rc = dump(b, val, depth + 1)) <= 0)
                return rc;
        }
        return scim_buf_addc(b, '}') < 0 ? -1 : 1;
    }
    default: /* JSON_REAL: jansson's own formatting */
        return 0;
    }
}

char *scim_json_dumps_compact(const json_t *v)
{
    struct scim_buf b;
    if (!v)
        return NULL;
    scim_buf_init(&b, 0);
    int rc = dump(&b, v, 0);
    if (rc > 0)
        return scim_buf_take(&b);
    scim_buf_release(&b);
    if (rc < 0)
        return NULL;
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

int scim_json_dump_append(struct scim_buf *b, const json_t *v)
{
    size_t mark = b->len;
    int rc = dump(b, v, 0);
    if (rc > 0)
        return 0;
    scim_buf_truncate(b, mark);
    if (rc < 0)
        return -1;
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    rc = text ? scim_buf_adds(b, text) : -1;
    free(text);
    return rc;
}

int scim_json_dump_string(struct scim_buf *b, const char *s, size_t n)
{
    size_t mark = b->len;
    int rc = dump_string(b, s, n);
    if (rc > 0)
        return 0;
    scim_buf_truncate(b, mark);
    if (rc < 0)
        return -1;
    json_t *str = json_stringn_nocheck(s, n);
    rc = str ? scim_json_dump_append(b, str) : -1;
    json_decref(str);
    return rc;
}
