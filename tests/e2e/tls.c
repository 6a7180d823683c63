/* e2e/tls: scimd over HTTPS with a self-signed certificate made at test time by the openssl
 * CLI. Checks: requests work over HTTPS (curl trusts the certificate); clients limited to
 * TLS 1.0/1.1 are refused while TLS 1.2 and 1.3 clients pass; plain HTTP to the TLS port
 * gets no HTTP answer and leaves the server serving; and scimd warns on stderr when it
 * listens on a non-loopback address without TLS (but not with TLS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "e2e.h"

#define WARNING "listening on a non-loopback address without TLS"

static int fails;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                  \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
            fails++;                                                                              \
        }                                                                                         \
    } while (0)

static int run(char *const argv[])
{
    pid_t pid = fork();
    int st;
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* One GET with a chosen TLS version range; returns the HTTP status, or 0 with `msg` filled. */
static long get_tls(const struct e2e_server *srv, const char *url, long sslversion, char *msg,
                    size_t msglen)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    char auth[700];
    long status = 0;
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", srv->token);
    hl = curl_slist_append(hl, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_CAINFO, srv->cainfo);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, sslversion);
    /* OpenSSL 3 allows TLS 1.0/1.1 only at security level 0: lower it so that it is the
     * server, not this client, that refuses the old versions. */
    curl_easy_setopt(c, CURLOPT_SSL_CIPHER_LIST, "DEFAULT:@SECLEVEL=0");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, NULL);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    snprintf(msg, msglen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    if (devnull)
        fclose(devnull);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return status;
}

static int log_has(const struct e2e_server *srv, const char *needle)
{
    char line[4096];
    int found = 0;
    FILE *f = fopen(srv->log, "r");
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int main(void)
{
    char dir[256], cert[300], key[300], msg[CURL_ERROR_SIZE + 64], url[512];
    struct e2e_server srv;
    struct e2e_response r;
    long st;

    e2e_global_init();
    snprintf(dir, sizeof dir, "%s/scimd-tls-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    char *gen[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                   "-subj", "/CN=localhost", "-addext",
                   "subjectAltName=IP:127.0.0.1,DNS:localhost", NULL};
    if (run(gen) != 0) {
        fprintf(stderr, "FAIL: openssl could not make a certificate (is the openssl CLI installed?"
                        " scripts/install-deps.sh --test)\n");
        return 1;
    }

    const char *args[] = {"--tls-cert", cert, "--tls-key", key};
    struct e2e_opts o = {.args = args, .n_args = 4};
    if (e2e_server_start(&srv, &o) != 0) {
        e2e_server_cleanup(&srv, 0);
        return 1;
    }
    e2e_server_trust(&srv, cert);
    CHECK(!strncmp(srv.base_url, "https://", 8), "base URL %s is not https", srv.base_url);

    /* HTTPS works, with the certificate verified. */
    CHECK(e2e_request(&srv, "POST", "/Users", NULL,
                      "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
                      "\"userName\":\"tls.user@example.com\"}",
                      &r) == 0 && r.status == 201,
          "POST over HTTPS: %ld %s %s", r.status, r.error, r.body);
    e2e_response_free(&r);
    CHECK(e2e_request(&srv, "GET", "/Users?filter=userName%20eq%20%22tls.user%40example.com%22",
                      NULL, NULL, &r) == 0 &&
              r.status == 200 && json_integer_value(json_object_get(r.json, "totalResults")) == 1,
          "GET over HTTPS: %ld %s %s", r.status, r.error, r.body);
    if (r.json) {
        const char *loc = json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(r.json, "Resources"), 0), "meta"),
            "location"));
        CHECK(loc && !strncmp(loc, "https://", 8), "meta.location %s is not https",
              loc ? loc : "(none)");
    }
    e2e_response_free(&r);

    /* TLS versions: 1.0/1.1 refused by the server, 1.2 and 1.3 accepted. */
    snprintf(url, sizeof url, "%s/Users?count=1", srv.base_url);
    st = get_tls(&srv, url, CURL_SSLVERSION_TLSv1_0 | CURL_SSLVERSION_MAX_TLSv1_1, msg, sizeof msg);
    CHECK(st == 0, "a TLS 1.0-1.1 client got HTTP %ld", st);
    printf("TLS 1.0-1.1 client: %s\n", msg);
    st = get_tls(&srv, url, CURL_SSLVERSION_TLSv1_1 | CURL_SSLVERSION_MAX_TLSv1_1, msg, sizeof msg);
    CHECK(st == 0, "a TLS 1.1 client got HTTP %ld", st);
    st = get_tls(&srv, url, CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2, msg, sizeof msg);
    CHECK(st == 200, "a TLS 1.2 client: %ld %s", st, msg);
    st = get_tls(&srv, url, CURL_SSLVERSION_TLSv1_3, msg, sizeof msg);
    CHECK(st == 200, "a TLS 1.3 client: %ld %s", st, msg);
    /* Without the CA the certificate is not trusted (the client really verifies). */
    {
        struct e2e_server nocafile = srv;
        nocafile.cainfo[0] = '\0';
        CHECK(e2e_request(&nocafile, "GET", "/Users", NULL, NULL, &r) != 0,
              "an untrusted self-signed certificate was accepted: %ld", r.status);
        e2e_response_free(&r);
    }

    /* Plain HTTP to the TLS port: no HTTP answer, a clean close, and the server still serves. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/scim/v2/Users", srv.port);
    CHECK(e2e_request(&srv, "GET", url, NULL, NULL, &r) != 0 || r.status != 200,
          "plain HTTP to the TLS port answered %ld", r.status);
    printf("plain HTTP to the TLS port: status %ld, %s\n", r.status, r.error);
    e2e_response_free(&r);
    CHECK(e2e_request(&srv, "GET", "/ServiceProviderConfig", NULL, NULL, &r) == 0 &&
              r.status == 200,
          "HTTPS after a plain HTTP attempt: %ld %s", r.status, r.error);
    e2e_response_free(&r);
    CHECK(!log_has(&srv, WARNING), "warned about plain HTTP while serving TLS on loopback");
    e2e_server_cleanup(&srv, fails == 0);

    /* Non-loopback without TLS: the warning on stderr (the later --listen wins). */
    const char *args2[] = {"--listen", "0.0.0.0:0"};
    struct e2e_opts o2 = {.args = args2, .n_args = 2};
    if (e2e_server_start(&srv, &o2) != 0) {
        fails++;
    } else {
        CHECK(log_has(&srv, WARNING), "no warning when listening on 0.0.0.0 without TLS");
    }
    e2e_server_cleanup(&srv, fails == 0);
    /* ... and none with TLS. */
    const char *args3[] = {"--listen", "0.0.0.0:0", "--tls-cert", cert, "--tls-key", key};
    struct e2e_opts o3 = {.args = args3, .n_args = 6};
    if (e2e_server_start(&srv, &o3) != 0) {
        fails++;
    } else {
        CHECK(!log_has(&srv, WARNING), "warning on 0.0.0.0 although TLS is on");
    }
    e2e_server_cleanup(&srv, fails == 0);

    unlink(cert);
    unlink(key);
    rmdir(dir);
    printf("%s\n", fails ? "FAIL" : "PASS");
    return fails ? 1 : 0;
}
