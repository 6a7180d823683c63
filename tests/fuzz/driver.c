/* Standalone driver for the fuzz harnesses: links with one fuzz_<name>.c in place of libFuzzer and
 * feeds it every regular file named on the command line, or found (non-recursively) in a directory
 * named there. This lets the normal gcc and ASan builds replay each seed corpus and regression case
 * as an ordinary ctest test, without clang.
 *
 * Exit status: 0 when at least one input was run (a crash aborts the process, which ctest reports);
 * 1 when no input was found, so that an empty or misspelt corpus directory fails the test. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole file into a fresh buffer of exactly its size (no terminating NUL: harnesses must
 * not rely on one, as under libFuzzer). Returns -1 when the file cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t cap = 0, len = 0;

    if (!f) {
        perror(path);
        return -1;
    }
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            uint8_t *n = realloc(data, ncap);
            if (!n) {
                free(data);
                fclose(f);
                return -1;
            }
            data = n;
            cap = ncap;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        perror(path);
        free(data);
        fclose(f);
        return -1;
    }
    fclose(f);
    /* Copy to an exact-size allocation so that ASan flags any read past the input. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(data);
        return -1;
    }
    if (len)
        memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of `dir` in name order (reproducible output). Returns the count run,
 * or -1 on error. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    long count = 0;

    if (!d) {
        perror(dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof *names);
            if (!nn)
                goto fail;
            names = nn;
            cap = ncap;
        }
        names[n] = strdup(e->d_name);
        if (!names[n])
            goto fail;
        n++;
    }
    closedir(d);
    d = NULL;
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(plen);
        struct stat st;
        if (!path)
            goto fail;
        snprintf(path, plen, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path)) {
                free(path);
                goto fail;
            }
            count++;
        }
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return count;
fail:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return -1;
}

int main(int argc, char **argv)
{
    long total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s <corpus dir or file>...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            long c = run_dir(argv[i]);
            if (c < 0)
                return 1;
            total += c;
        } else {
            if (run_file(argv[i]))
                return 1;
            total++;
        }
    }
    printf("%s: %ld input(s) run without a crash\n", argv[0], total);
    return total > 0 ? 0 : 1;
}
