/* RFC 9865 cursors. A cursor is a keyset position (the primary key of the row a page ends or
 * starts at), so a page costs O(page) wherever it is and rows created or deleted meanwhile
 * never make a reader skip or repeat another row. The text is hex of
 *   direction(1) | kind(1) | pk(8) | issued seconds(8) | key epoch(4) | HMAC-SHA256[0..16)
 * The HMAC stops clients from forging positions. Its key is a secret kept in the database, so
 * every scimd node on one database (behind a load balancer) accepts the cursors of the others,
 * and cursors stay valid across restarts until they time out. The epoch (derived from the key)
 * tells a cursor made with another key (another database) apart from a forged one. */
#include "api/internal.h"

#include <string.h>

#include "auth/token.h"
#include "common/util.h"

#define CUR_BODY 22
#define CUR_MAC 16
#define CUR_RAW (CUR_BODY + CUR_MAC)

int api_cursor_init(struct scim_api *api, struct scim_err *err)
{
    unsigned char digest[32];

    if (scim_store_secret(api->st, "cursor-hmac", api->cursor_key, err))
        return -1;
    scim_sha256(api->cursor_key, sizeof api->cursor_key, digest);
    memcpy(&api->cursor_epoch, digest, sizeof api->cursor_epoch);
    return 0;
}

/* HMAC-SHA256 (RFC 2104) over the cursor body, built on the SHA-256 the common layer has. */
static void mac(const struct scim_api *api, const unsigned char *msg, size_t len,
                unsigned char out[32])
{
    unsigned char block[64 + CUR_BODY], inner[32], outer[64 + 32];

    for (size_t i = 0; i < 64; i++) {
        unsigned char k = i < sizeof api->cursor_key ? api->cursor_key[i] : 0;
        block[i] = (unsigned char)(k ^ 0x36);
        outer[i] = (unsigned char)(k ^ 0x5c);
    }
    memcpy(block + 64, msg, len);
    scim_sha256(block, 64 + len, inner);
    memcpy(outer + 64, inner, 32);
    scim_sha256(outer, sizeof outer, out);
}

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

void api_cursor_encode(const struct scim_api *api, int kind, const struct api_cursor *c,
                       char out[API_CURSOR_MAX])
{
    unsigned char raw[CUR_RAW], m[32];

    raw[0] = c->backward ? 'b' : 'f';
    raw[1] = (unsigned char)kind;
    put_be(raw + 2, (uint64_t)c->pk, 8);
    put_be(raw + 10, (uint64_t)(scim_now_us() / 1000000), 8);
    put_be(raw + 18, api->cursor_epoch, 4);
    mac(api, raw, CUR_BODY, m);
    memcpy(raw + CUR_BODY, m, CUR_MAC);
    scim_hex(raw, CUR_RAW, out);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int api_cursor_decode(const struct scim_api *api, int kind, const char *text,
                      struct api_cursor *out, struct scim_err *err)
{
    unsigned char raw[CUR_RAW], m[32], diff = 0;
    int64_t issued, now = scim_now_us() / 1000000;

    memset(out, 0, sizeof *out);
    if (!text[0])
        return 0;
    if (strlen(text) != 2 * CUR_RAW)
        goto invalid;
    for (size_t i = 0; i < CUR_RAW; i++) {
        int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            goto invalid;
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    if ((uint32_t)get_be(raw + 18, 4) != api->cursor_epoch)
        return scim_err_set(err, 400, SCIM_TYPE_EXPIRED_CURSOR,
                            "The cursor was issued before the server restarted; start again "
                            "with an empty cursor.");
    mac(api, raw, CUR_BODY, m);
    for (size_t i = 0; i < CUR_MAC; i++)
        diff |= (unsigned char)(m[i] ^ raw[CUR_BODY + i]);
    if (diff || (raw[0] != 'f' && raw[0] != 'b'))
        goto invalid;
    if (raw[1] != (unsigned char)kind)
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_CURSOR,
                            "The cursor belongs to another resource type.");
    issued = (int64_t)get_be(raw + 10, 8);
    if (api->cfg.cursor_timeout > 0 && now - issued > api->cfg.cursor_timeout)
        return scim_err_set(err, 400, SCIM_TYPE_EXPIRED_CURSOR,
                            "The cursor has expired (cursorTimeout %lld s); start again with an "
                            "empty cursor.",
                            (long long)api->cfg.cursor_timeout);
    out->backward = raw[0] == 'b';
    out->pk = (int64_t)get_be(raw + 2, 8);
    if (out->pk < 0 || (out->backward && out->pk == 0))
        goto invalid;
    return 0;
invalid:
    return scim_err_set(err, 400, SCIM_TYPE_INVALID_CURSOR,
                        "The cursor is not valid: use a nextCursor or previousCursor value "
                        "returned by this server, or an empty value for the first page.");
}

int api_cursor_apply(struct api_req *r, int kind, struct scim_store_query *q, struct scim_err *err)
{
    struct api_cursor c;

    if (!r->q.cursor)
        return 0;
    if (r->q.has_start_index)
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                            "cursor and startIndex cannot be used in the same request.");
    if (q->sort_by)
        return scim_err_set(err, 400, SCIM_TYPE_INVALID_VALUE,
                            "sortBy cannot be combined with cursor: cursor pages follow creation "
                            "order.");
    if (api_cursor_decode(r->api, kind, r->q.cursor, &c, err))
        return -1;
    q->cursor_mode = true;
    q->start_index = 1;
    q->descending = false;
    q->after_pk = c.backward ? 0 : c.pk;
    q->before_pk = c.backward ? c.pk : 0;
    return 0;
}

static int set_cursor(struct api_req *r, int kind, json_t *list, const char *name, bool backward,
                      int64_t pk)
{
    struct api_cursor c = {backward, pk};
    char text[API_CURSOR_MAX];
    api_cursor_encode(r->api, kind, &c, text);
    return json_object_set_new(list, name, json_string(text));
}

int api_cursor_finish(struct api_req *r, int kind, const struct scim_store_query *q,
                      const struct scim_store_page *page, json_t *list)
{
    bool back = q->before_pk > 0, empty = page->first_pk == 0;

    if (!q->cursor_mode)
        return 0;
    /* Index paging fields make no sense for a cursor page (RFC 9865). */
    json_object_del(list, "startIndex");
    if (q->count == 0)
        return 0;
    if (!back) {
        if (page->more && set_cursor(r, kind, list, "nextCursor", false, page->last_pk))
            return -1;
        if (q->after_pk > 0 &&
            set_cursor(r, kind, list, "previousCursor", true,
                       empty ? q->after_pk + 1 : page->first_pk))
            return -1;
    } else {
        if (page->more && set_cursor(r, kind, list, "previousCursor", true, page->first_pk))
            return -1;
        if (set_cursor(r, kind, list, "nextCursor", false,
                       empty ? q->before_pk - 1 : page->last_pk))
            return -1;
    }
    return 0;
}
