/* scimctl settings: show and change a tenant's provisioning policies (admin API). */
#include "scimctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    fputs("NAME\n"
          "    scimctl settings - show and change the provisioning policies of a tenant\n"
          "\n"
          "SYNOPSIS\n"
          "    scimctl --url URL settings show [--tenant T] [--json]\n"
          "    scimctl --url URL settings set [--tenant T] KEY=VALUE... [--json]\n"
          "\n"
          "DESCRIPTION\n"
          "    Settings decide how scimd treats what the identity provider sends\n"
          "    (docs/policies.md). show prints every setting with its value, defaults\n"
          "    included. set changes the given ones in one request and prints them all;\n"
          "    an unknown key or a bad value changes nothing and is reported.\n"
          "\n"
          "    KEY and VALUE:\n"
          "        scim_enabled          true | false           (default true)\n"
          "        allow_manual_updates  true | false           (default false)\n"
          "        default_groups        ID,ID,... or a JSON array; empty: none (default)\n"
          "        username_changes      allow | reject         (default allow)\n"
          "        link_existing_users   true | false           (default false)\n"
          "        link_existing_groups  true | false           (default false)\n"
          "        email_changes         allow | ignore | reject (default allow)\n"
          "        unique_emails         true | false           (default false)\n"
          "        delete_mode           delete | deactivate    (default delete)\n"
          "    \"true\" and \"false\" are sent as JSON booleans, other values as strings.\n"
          "\n"
          "OPTIONS\n"
          "    --tenant T\n"
          "        The tenant. Default: the admin token's own tenant; the API tells it only\n"
          "        for operator tokens (\"default\"), so a tenant's own admin token must\n"
          "        name its tenant.\n"
          "    --json\n"
          "        Print the raw JSON answer of the admin API, for scripts.\n"
          "\n"
          "EXIT STATUS\n"
          "    0 success, 1 error (for example an unknown key or a bad value: the API's\n"
          "    message is on standard error), 2 usage.\n"
          "\n"
          "EXAMPLES\n"
          "    scimctl settings show --tenant acme\n"
          "    scimctl settings set --tenant acme delete_mode=deactivate unique_emails=true\n"
          "    scimctl settings set default_groups=2819c223-7f76-453a-919d-413861904646\n"
          "    scimctl settings set default_groups=\n",
          stdout);
}

static void show(const json_t *settings)
{
    static const char *const head[] = {"SETTING", "VALUE"};
    struct scimctl_table t;
    const char *key;
    const json_t *v;
    if (scimctl_table_init(&t, 2, head) != 0)
        return;
    json_object_foreach((json_t *)settings, key, v) {
        char b[2048];
        const char *row[2] = {key, scimctl_text(v, b, sizeof b)};
        if (json_is_array(v) && json_array_size(v) == 0)
            row[1] = "(none)";
        if (scimctl_table_add(&t, row) != 0)
            break;
    }
    scimctl_table_print(&t, stdout);
    scimctl_table_free(&t);
}

/* The JSON value of one KEY=VALUE argument: booleans for true/false, a list of ids for
 * default_groups, else the string as typed (the server judges it). */
static json_t *value_of(const char *key, const char *val)
{
    if (strcmp(key, "default_groups") == 0) {
        json_t *arr;
        if (val[0] == '[')
            return json_loads(val, JSON_REJECT_DUPLICATES, NULL);
        arr = json_array();
        while (arr && *val) {
            size_t n = strcspn(val, ",");
            if (n > 0 && json_array_append_new(arr, json_stringn(val, n)) != 0) {
                json_decref(arr);
                return NULL;
            }
            val += n;
            if (*val == ',')
                val++;
        }
        return arr;
    }
    if (strcmp(val, "true") == 0)
        return json_true();
    if (strcmp(val, "false") == 0)
        return json_false();
    return json_string(val);
}

int scimctl_settings(struct scimctl *c, int argc, char **argv)
{
    static const struct scimctl_opt opts[] = {{"--tenant", 1}, {"--json", 0}, {NULL, 0}};
    const char *v[2] = {0}, **pos = NULL, *sub;
    char t[128];
    int npos, rc;
    json_t *patch = NULL;

    if (argc < 2) {
        scimctl_errorf("settings: missing subcommand (show, set)");
        return SCIMCTL_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (scimctl_is_help(argv[i])) {
            help();
            return SCIMCTL_OK;
        }
    }
    sub = argv[1];
    if (strcmp(sub, "show") != 0 && strcmp(sub, "set") != 0) {
        scimctl_errorf("settings: unknown subcommand: %s", sub);
        return SCIMCTL_USAGE;
    }
    if (!c->url) {
        scimctl_errorf("settings: needs --url (the admin API)");
        return SCIMCTL_USAGE;
    }
    pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        scimctl_errorf("out of memory");
        return SCIMCTL_ERROR;
    }
    if ((rc = scimctl_parse("settings", argc, argv, 2, opts, v, pos, argc, &npos)) != 0)
        goto out;
    rc = SCIMCTL_USAGE;
    if (strcmp(sub, "show") == 0) {
        if (npos != 0) {
            scimctl_errorf("settings show: unexpected argument: %s", pos[0]);
            goto out;
        }
    } else {
        if (npos == 0) {
            scimctl_errorf("settings set: expected KEY=VALUE...");
            goto out;
        }
        if (!(patch = json_object())) {
            scimctl_errorf("out of memory");
            rc = SCIMCTL_ERROR;
            goto out;
        }
        for (int i = 0; i < npos; i++) {
            const char *eq = strchr(pos[i], '=');
            char key[128];
            json_t *val;
            if (!eq || eq == pos[i] || (size_t)(eq - pos[i]) >= sizeof key) {
                scimctl_errorf("settings set: expected KEY=VALUE, got \"%s\"", pos[i]);
                goto out;
            }
            memcpy(key, pos[i], (size_t)(eq - pos[i]));
            key[eq - pos[i]] = '\0';
            if (!(val = value_of(key, eq + 1))) {
                scimctl_errorf("settings set: invalid value for %s: \"%s\"", key, eq + 1);
                goto out;
            }
            if (json_object_set_new(patch, key, val) != 0) {
                scimctl_errorf("out of memory");
                rc = SCIMCTL_ERROR;
                goto out;
            }
        }
    }
    rc = SCIMCTL_ERROR;
    if (scimctl_resolve_tenant(c, v[0], t, sizeof t) != 0)
        goto out;
    rc = scimctl_tenant_call(c, t, patch ? "PATCH" : "GET", "/settings", patch, v[1] != NULL,
                             show);
out:
    json_decref(patch);
    free(pos);
    return rc;
}
