#include "common/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void scim_buf_init(struct scim_buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->size = 0;
    b->cap = cap ? cap : SIZE_MAX / 2;
}

void scim_buf_release(struct scim_buf *b)
{
    free(b->data);
    scim_buf_init(b, b->cap);
}

void scim_buf_reset(struct scim_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int grow(struct scim_buf *b, size_t need)
{
    size_t nsize;
    char *p;

    if (need <= b->size)
        return 0;
    nsize = b->size ? b->size : 64;
    while (nsize < need) {
        if (nsize > SIZE_MAX / 2)
            return -1;
        nsize *= 2;
    }
    p = realloc(b->data, nsize);
    if (!p)
        return -1;
    b->data = p;
    b->size = nsize;
    return 0;
}

int scim_buf_add(struct scim_buf *b, const void *data, size_t len)
{
    if (len > b->cap || b->len > b->cap - len) {
        errno = ERANGE; /* over the cap, as opposed to ENOMEM from realloc */
        return -1;
    }
    if (grow(b, b->len + len + 1))
        return -1;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int scim_buf_adds(struct scim_buf *b, const char *s)
{
    return scim_buf_add(b, s, strlen(s));
}

int scim_buf_addc(struct scim_buf *b, char c)
{
    /* the common case, a character into room already there, without the general checks */
    if (b->len + 1 < b->size && b->len < b->cap) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return scim_buf_add(b, &c, 1);
}

int scim_buf_vprintf(struct scim_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    size_t len;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -1;
    len = (size_t)n;
    if (len > b->cap || b->len > b->cap - len) {
        errno = ERANGE; /* over the cap, as opposed to ENOMEM from realloc */
        return -1;
    }
    if (grow(b, b->len + len + 1))
        return -1;
    vsnprintf(b->data + b->len, len + 1, fmt, ap);
    b->len += len;
    return 0;
}

int scim_buf_printf(struct scim_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = scim_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *scim_buf_str(const struct scim_buf *b)
{
    return b->data ? b->data : "";
}

char *scim_buf_take(struct scim_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    scim_buf_init(b, b->cap);
    return p;
}

void scim_buf_truncate(struct scim_buf *b, size_t len)
{
    if (b->data && len < b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}
