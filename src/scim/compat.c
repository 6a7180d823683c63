#include "scim/compat.h"

#include <stdio.h>
#include <string.h>

static const char *const names[] = {
    "string_boolean",          "op_case",
    "member_value_remove",     "create_on_filter_path",
    "nopath_dotted_keys",      "unquoted_filter_value",
    "service_configuration",   "endpoint_case",
    "empty_operations",        "add_replaces_single",
    "member_bare_string",      "unknown_member_skipped",
    "member_displayname",      "urn_dot_separator",
    "manager_string",          "invalid_attributes_param",
    "unknown_schema_urn",      "readonly_input_ignored",
    "start_index_zero",        "plus_as_space",
    "patch_id_in_value",
};

const char *scim_compat_name(uint32_t bit)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (bit == (1u << i))
            return names[i];
    return NULL;
}

void scim_compat_names(uint32_t mask, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(mask & (1u << i)))
            continue;
        int w = snprintf(out + n, outlen - n, "%s%s", n ? "," : "", names[i]);
        if (w < 0 || (size_t)w >= outlen - n)
            break;
        n += (size_t)w;
    }
}

int scim_compat_parse(const char *list, uint32_t *mask, char *bad, size_t badlen)
{
    const size_t n_names = sizeof names / sizeof names[0];
    uint32_t m = 0;
    const char *p = list;

    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        size_t i;
        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len == 3 && strncmp(p, "all", 3) == 0) {
            m |= (uint32_t)((1ull << n_names) - 1);
        } else if (len) {
            for (i = 0; i < n_names; i++)
                if (strlen(names[i]) == len && strncmp(names[i], p, len) == 0)
                    break;
            if (i == n_names) {
                snprintf(bad, badlen, "%.*s", (int)len, p);
                return -1;
            }
            m |= 1u << i;
        }
        p = comma ? comma + 1 : p + strlen(p);
    }
    *mask = m;
    return 0;
}
