/* End-to-end harness: process management of scimd and a small libcurl client. */
#include "e2e.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define START_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS 10000

extern char **environ;

void e2e_global_init(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    /* A server killed mid-request must not kill the test with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int e2e_backend_pg(void)
{
    const char *b = getenv("SCIMD_TEST_BACKEND");
    return b && strcmp(b, "postgresql") == 0;
}

/* psql -c SQL on the admin URL, output to /dev/null. */
static int psql_admin(const char *sql)
{
    const char *admin = getenv("SCIMD_TEST_PG_URL");
    if (!admin || !*admin) {
        fprintf(stderr, "e2e: SCIMD_TEST_PG_URL is not set\n");
        return -1;
    }
    pid_t pid = fork();
    if (pid == -1)
        return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        execlp("psql", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin, "-c", sql, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) == -1)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int e2e_pg_create_db(char *uri, size_t urilen, char *name, size_t namelen)
{
    const char *admin = getenv("SCIMD_TEST_PG_URL");
    unsigned char rnd[6];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!admin || !f || fread(rnd, 1, sizeof rnd, f) != sizeof rnd) {
        if (f)
            fclose(f);
        fprintf(stderr, "e2e: cannot name a test database (SCIMD_TEST_PG_URL set?)\n");
        return -1;
    }
    fclose(f);
    snprintf(name, namelen, "scimd_test_%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
             rnd[5]);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    if (psql_admin(sql) != 0) {
        fprintf(stderr, "e2e: '%s' failed on %s\n", sql, admin);
        return -1;
    }
    /* the admin URL with its database path replaced */
    const char *host = strstr(admin, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    const char *query = strchr(admin, '?');
    size_t prefix = path ? (size_t)(path - admin) : query ? (size_t)(query - admin) : strlen(admin);
    snprintf(uri, urilen, "%.*s/%s%s", (int)prefix, admin, name, query ? query : "");
    return 0;
}

void e2e_pg_drop_db(const char *name)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    if (psql_admin(sql) != 0)
        fprintf(stderr, "e2e: could not drop test database %s\n", name);
}

int e2e_pg_cluster(const char *cmd, const char *arg)
{
    const char *src = getenv("SCIMD_SOURCE_DIR");
    char script[1024];
    snprintf(script, sizeof script, "%s/scripts/pg-test-cluster.sh", src ? src : ".");
    pid_t pid = fork();
    if (pid == -1)
        return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        execl("/bin/bash", "bash", script, cmd, arg, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) == -1)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs argv, captures its stdout (up to outlen-1 bytes), stderr goes to `errpath`.
 * Returns the exit code, or -1 when it could not run or died of a signal. */
static int run_capture(char *const argv[], const char *errpath, char *out, size_t outlen)
{
    int fds[2];
    if (pipe(fds) == -1)
        return -1;
    pid_t pid = fork();
    if (pid == -1) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int efd = open(errpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (efd >= 0) {
            dup2(efd, 2);
            close(efd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    for (;;) {
        char tmp[512];
        ssize_t n = read(fds[0], tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t k = (size_t)n;
        if (len + k >= outlen)
            k = outlen - 1 - len;
        memcpy(out + len, tmp, k);
        len += k;
    }
    out[len] = '\0';
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) == -1) {
        if (errno != EINTR)
            return -1;
    }
    if (!WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static void rtrim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

/* Copies the stdout of scimd that follows the "listening on" line into DIR/scimd.stdout, so
 * the server never blocks on a full pipe. */
struct drain {
    pthread_t thread;
    int fd;
    char path[700];
};

static void *drain_main(void *arg)
{
    struct drain *d = arg;
    int out = open(d->path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    char buf[4096];
    for (;;) {
        ssize_t n = read(d->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (out >= 0 && write(out, buf, (size_t)n) < 0) {
            /* the copy is only for debugging */
        }
    }
    if (out >= 0)
        close(out);
    return NULL;
}

static int spawn(struct e2e_server *srv)
{
    const char *bin = getenv("SCIMD_BIN");
    if (!bin || !*bin) {
        fprintf(stderr, "e2e: SCIMD_BIN is not set\n");
        return -1;
    }
    char *argv[E2E_MAX_ARGS + 8];
    size_t n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = (char *)"--listen";
    argv[n++] = (char *)"127.0.0.1:0";
    argv[n++] = (char *)"--db";
    argv[n++] = srv->db;
    for (size_t i = 0; i < srv->n_args; i++)
        argv[n++] = srv->args[i];
    argv[n] = NULL;

    int fds[2];
    if (pipe(fds) == -1) {
        perror("e2e: pipe");
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == -1) {
        perror("e2e: fork");
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        /* The server must not outlive a crashed test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int efd = open(srv->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (efd >= 0) {
            dup2(efd, 2);
            close(efd);
        }
        for (size_t i = 0; i < srv->n_env; i++)
            putenv(srv->env[i]);
        signal(SIGPIPE, SIG_DFL);
        execv(bin, argv);
        _exit(127);
    }
    close(fds[1]);
    srv->pid = pid;
    srv->out_fd = fds[0];

    /* Read stdout line by line until "listening on URL". */
    char line[2048];
    size_t len = 0;
    long deadline = now_ms() + START_TIMEOUT_MS;
    int found = 0;
    while (!found) {
        long left = deadline - now_ms();
        if (left <= 0) {
            fprintf(stderr, "e2e: scimd printed no 'listening on' line within %d s\n",
                    START_TIMEOUT_MS / 1000);
            goto fail;
        }
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t r = read(fds[0], line + len, sizeof line - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "e2e: scimd closed stdout before listening (exited?)\n");
            goto fail;
        }
        len += (size_t)r;
        line[len] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            rtrim(line);
            const char *p;
            if ((p = strstr(line, "admin token (shown once): ")) != NULL) {
                snprintf(srv->admin_token, sizeof srv->admin_token, "%s",
                         p + strlen("admin token (shown once): "));
            } else if ((p = strstr(line, "listening on ")) != NULL) {
                snprintf(srv->base_url, sizeof srv->base_url, "%s", p + strlen("listening on "));
                rtrim(srv->base_url);
                found = 1;
            }
            size_t consumed = (size_t)(nl - line) + 1;
            memmove(line, nl + 1, len - consumed + 1);
            len -= consumed;
        }
        if (len == sizeof line - 1)
            len = 0; /* an absurdly long line: drop it */
    }
    const char *colon = strrchr(srv->base_url, ':');
    srv->port = colon ? (int)strtol(colon + 1, NULL, 10) : 0;
    if (srv->port <= 0) {
        fprintf(stderr, "e2e: cannot parse the port of '%s'\n", srv->base_url);
        goto fail;
    }

    struct drain *d = calloc(1, sizeof *d);
    if (!d)
        goto fail;
    d->fd = fds[0];
    snprintf(d->path, sizeof d->path, "%s/scimd.stdout", srv->dir);
    if (pthread_create(&d->thread, NULL, drain_main, d) != 0) {
        free(d);
        goto fail;
    }
    srv->drain = d;
    return 0;

fail:
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    srv->pid = 0;
    srv->out_fd = -1;
    e2e_server_dump_log(srv, 40);
    return -1;
}

static void join_drain(struct e2e_server *srv)
{
    struct drain *d = srv->drain;
    if (d) {
        pthread_join(d->thread, NULL);
        close(d->fd);
        free(d);
        srv->drain = NULL;
    }
    srv->out_fd = -1;
}

static int server_start(struct e2e_server *srv, const struct e2e_opts *opts, const char *db);

int e2e_server_start(struct e2e_server *srv, const struct e2e_opts *opts)
{
    return server_start(srv, opts, NULL);
}

int e2e_server_start_on(struct e2e_server *srv, const struct e2e_opts *opts, const char *db)
{
    return server_start(srv, opts, db);
}

static int server_start(struct e2e_server *srv, const struct e2e_opts *opts, const char *db)
{
    memset(srv, 0, sizeof *srv);
    srv->out_fd = -1;
    if (opts) {
        if (opts->n_args > E2E_MAX_ARGS || opts->n_env > E2E_MAX_ARGS) {
            fprintf(stderr, "e2e: too many extra arguments\n");
            return -1;
        }
        for (size_t i = 0; i < opts->n_args; i++)
            if (!(srv->args[srv->n_args++] = strdup(opts->args[i])))
                return -1;
        for (size_t i = 0; i < opts->n_env; i++)
            if (!(srv->env[srv->n_env++] = strdup(opts->env[i])))
                return -1;
    }
    snprintf(srv->dir, sizeof srv->dir, "%s/scimd-e2e-XXXXXX", env_or("TMPDIR", "/tmp"));
    if (!mkdtemp(srv->dir)) {
        perror("e2e: mkdtemp");
        return -1;
    }
    snprintf(srv->db, sizeof srv->db, "%s/scimd.db", srv->dir);
    snprintf(srv->log, sizeof srv->log, "%s/scimd.log", srv->dir);
    if (db)
        snprintf(srv->db, sizeof srv->db, "%s", db);
    else if (e2e_backend_pg() && e2e_pg_create_db(srv->db, sizeof srv->db, srv->pg_db, sizeof srv->pg_db) != 0)
        return -1;

    const char *ctl = getenv("SCIMCTL_BIN");
    if (!ctl || !*ctl) {
        fprintf(stderr, "e2e: SCIMCTL_BIN is not set\n");
        return -1;
    }
    /* on a shared database each node mints its own token, under a name of its own */
    char tname[64] = "e2e";
    if (db)
        snprintf(tname, sizeof tname, "e2e-%s", strrchr(srv->dir, '-') + 1);
    char *argv[] = {(char *)ctl, (char *)"--db", srv->db, (char *)"token", (char *)"create",
                    (char *)"--name", tname, NULL, NULL, NULL};
    const char *scopes = getenv("E2E_TOKEN_SCOPES");
    if (scopes && *scopes) {
        argv[7] = (char *)"--scopes";
        argv[8] = (char *)scopes;
    }
    char out[1024];
    int rc = run_capture(argv, srv->log, out, sizeof out);
    rtrim(out);
    if (rc != 0 || !*out || strchr(out, '\n')) {
        fprintf(stderr, "e2e: '%s --db %s token create --name e2e' failed (exit %d), stdout: '%s'\n",
                ctl, srv->db, rc, out);
        e2e_server_dump_log(srv, 20);
        return -1;
    }
    const char *tok = out;
    while (isspace((unsigned char)*tok))
        tok++;
    snprintf(srv->token, sizeof srv->token, "%.*s", (int)(sizeof srv->token - 1), tok);
    return spawn(srv);
}

void e2e_server_trust(struct e2e_server *srv, const char *cafile)
{
    snprintf(srv->cainfo, sizeof srv->cainfo, "%s", cafile ? cafile : "");
}

static int wait_exit(pid_t pid, long timeout_ms, int *status)
{
    long deadline = now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r == -1 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline)
            return 1;
        sleep_ms(20);
    }
}

int e2e_server_stop(struct e2e_server *srv)
{
    if (srv->pid <= 0)
        return -1;
    int st = 0;
    kill(srv->pid, SIGTERM);
    int r = wait_exit(srv->pid, STOP_TIMEOUT_MS, &st);
    if (r == 1) {
        fprintf(stderr, "e2e: scimd did not stop within %d s of SIGTERM; SIGKILL\n",
                STOP_TIMEOUT_MS / 1000);
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, &st, 0);
    }
    srv->pid = 0;
    join_drain(srv);
    return st;
}

int e2e_server_kill9(struct e2e_server *srv)
{
    if (srv->pid <= 0)
        return -1;
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, NULL, 0);
    srv->pid = 0;
    join_drain(srv);
    return 0;
}

int e2e_server_restart(struct e2e_server *srv)
{
    if (srv->pid > 0)
        e2e_server_stop(srv);
    srv->base_url[0] = '\0';
    srv->port = 0;
    return spawn(srv);
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(sub);
            else
                unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

void e2e_server_dump_log(const struct e2e_server *srv, int lines)
{
    FILE *f = fopen(srv->log, "r");
    if (!f)
        return;
    /* Keep the last `lines` lines in a ring. */
    char ring[64][512];
    int n = lines > 64 ? 64 : lines, count = 0;
    char buf[512];
    while (fgets(buf, sizeof buf, f))
        snprintf(ring[count++ % n], sizeof ring[0], "%s", buf);
    fclose(f);
    fprintf(stderr, "---- last lines of %s ----\n", srv->log);
    int start = count > n ? count - n : 0;
    for (int i = start; i < count; i++)
        fputs(ring[i % n], stderr);
    fprintf(stderr, "----\n");
}

void e2e_secret(struct e2e_server *srv, const char *secret)
{
    if (!secret || strlen(secret) < 6 || srv->n_secrets == E2E_MAX_SECRETS)
        return;
    for (size_t i = 0; i < srv->n_secrets; i++)
        if (!strcmp(srv->secrets[i], secret))
            return;
    srv->secrets[srv->n_secrets] = strdup(secret);
    if (srv->secrets[srv->n_secrets])
        srv->n_secrets++;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t cap = 0;
    *len = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (*len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(data, cap);
            if (!p)
                break;
            data = p;
        }
        size_t n = fread(data + *len, 1, cap - *len - 1, f);
        if (n == 0)
            break;
        *len += n;
    }
    fclose(f);
    if (data)
        data[*len] = '\0';
    return data;
}

static int contains(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n && i + n <= len; i++)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, n))
            return 1;
    return 0;
}

static int leaked(const char *log, size_t len, const char *what, const char *secret)
{
    if (!secret[0] || !contains(log, len, secret))
        return 0;
    fprintf(stderr, "e2e: FAIL: scimd's log contains %s \"%s\"\n", what, secret);
    return 1;
}

int e2e_server_check_secrets(const struct e2e_server *srv)
{
    size_t len;
    int n = 0;
    char *log = srv->log[0] ? read_file(srv->log, &len) : NULL;
    if (!log)
        return 0;
    n += leaked(log, len, "the bearer token", srv->token);
    n += leaked(log, len, "the admin token", srv->admin_token);
    for (size_t i = 0; i < srv->n_secrets; i++)
        n += leaked(log, len, "a registered secret", srv->secrets[i]);
    free(log);
    return n;
}

void e2e_server_cleanup(struct e2e_server *srv, int success)
{
    int leaks;
    if (srv->pid > 0)
        e2e_server_stop(srv);
    leaks = e2e_server_check_secrets(srv);
    if (leaks)
        success = 0;
    if (srv->dir[0]) {
        if (success) {
            remove_tree(srv->dir);
            if (srv->pg_db[0])
                e2e_pg_drop_db(srv->pg_db);
        } else {
            if (srv->pg_db[0])
                fprintf(stderr, "e2e: kept database %s\n", srv->db);
            e2e_server_dump_log(srv, 30);
            fprintf(stderr, "e2e: kept %s for inspection\n", srv->dir);
        }
    }
    for (size_t i = 0; i < srv->n_args; i++)
        free(srv->args[i]);
    for (size_t i = 0; i < srv->n_env; i++)
        free(srv->env[i]);
    for (size_t i = 0; i < srv->n_secrets; i++)
        free(srv->secrets[i]);
    srv->n_args = srv->n_env = srv->n_secrets = 0;
    if (leaks) {
        fprintf(stderr, "e2e: FAIL: %d secret(s) leaked into scimd's log\n", leaks);
        exit(1);
    }
}

/* ---- HTTP client ---- */

struct sink {
    char *data;
    size_t len, cap;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *p = realloc(s->data, cap);
        if (!p)
            return 0;
        s->data = p;
        s->cap = cap;
    }
    memcpy(s->data + s->len, ptr, n);
    s->len += n;
    s->data[s->len] = '\0';
    return n;
}

static void clear_headers(struct e2e_response *resp)
{
    for (size_t i = 0; i < resp->n_headers; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    resp->n_headers = 0;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct e2e_response *resp = userdata;
    size_t n = size * nmemb;
    if (n >= 5 && !strncmp(ptr, "HTTP/", 5)) {
        clear_headers(resp); /* a new response (after 100 Continue) */
        return n;
    }
    const char *colon = memchr(ptr, ':', n);
    if (!colon || resp->n_headers == E2E_MAX_RESP_HEADERS)
        return n;
    size_t nlen = (size_t)(colon - ptr);
    const char *v = colon + 1, *end = ptr + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    char *name = strndup(ptr, nlen);
    char *value = strndup(v, (size_t)(end - v));
    if (!name || !value) {
        free(name);
        free(value);
        return 0;
    }
    resp->headers[resp->n_headers].name = name;
    resp->headers[resp->n_headers].value = value;
    resp->n_headers++;
    return n;
}

const char *e2e_response_header(const struct e2e_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->n_headers; i++)
        if (!strcasecmp(resp->headers[i].name, name))
            return resp->headers[i].value;
    return NULL;
}

static int header_named(const char *line, const char *name)
{
    size_t n = strlen(name);
    return !strncasecmp(line, name, n) && line[n] == ':';
}

int e2e_request(const struct e2e_server *srv, const char *method, const char *path,
                const char *const *headers, const char *body, struct e2e_response *resp)
{
    memset(resp, 0, sizeof *resp);
    struct sink sink = {0};
    struct curl_slist *hl = NULL;
    char *url = NULL;
    int rc = -1;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(resp->error, sizeof resp->error, "curl_easy_init failed");
        goto out;
    }
    if (!strncmp(path, "http", 4)) {
        url = strdup(path);
    } else {
        size_t n = strlen(srv->base_url) + strlen(path) + 1;
        url = malloc(n);
        if (url)
            snprintf(url, n, "%s%s", srv->base_url, path);
    }
    if (!url)
        goto out;

    int have_auth = 0, have_ct = 0;
    for (size_t i = 0; headers && headers[i]; i++) {
        if (header_named(headers[i], "Authorization"))
            have_auth = 1;
        if (header_named(headers[i], "Content-Type"))
            have_ct = 1;
        /* curl sends "Name;" as an empty header; "Name:" removes it. */
        struct curl_slist *t = curl_slist_append(hl, headers[i]);
        if (!t)
            goto out;
        hl = t;
    }
    char line[700];
    if (!have_auth) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", srv->token);
        struct curl_slist *t = curl_slist_append(hl, line);
        if (!t)
            goto out;
        hl = t;
    }
    if (body && !have_ct) {
        struct curl_slist *t = curl_slist_append(hl, "Content-Type: application/scim+json");
        if (!t)
            goto out;
        hl = t;
    }
    struct curl_slist *t = curl_slist_append(hl, "Expect:");
    if (!t)
        goto out;
    hl = t;

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (srv->cainfo[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, srv->cainfo);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    CURLcode cr = curl_easy_perform(c);
    if (cr != CURLE_OK) {
        snprintf(resp->error, sizeof resp->error, "%s %s: %s", method, url, curl_easy_strerror(cr));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    rc = 0;
out:
    resp->body = sink.data ? sink.data : strdup("");
    resp->body_len = sink.data ? sink.len : 0;
    if (resp->body && resp->body_len) {
        json_error_t je;
        resp->json = json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY, &je);
    }
    resp->content_type = e2e_response_header(resp, "Content-Type");
    resp->etag = e2e_response_header(resp, "ETag");
    resp->location = e2e_response_header(resp, "Location");
    resp->www_authenticate = e2e_response_header(resp, "WWW-Authenticate");
    resp->retry_after = e2e_response_header(resp, "Retry-After");
    curl_slist_free_all(hl);
    free(url);
    if (c)
        curl_easy_cleanup(c);
    return rc;
}

void e2e_response_free(struct e2e_response *resp)
{
    free(resp->body);
    json_decref(resp->json);
    clear_headers(resp);
    memset(resp, 0, sizeof *resp);
}

char *e2e_urlencode(const char *in)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(in);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}
