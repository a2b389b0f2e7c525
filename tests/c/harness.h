/*
 * The C tests' harness: counters, CHECK macros and helpers shared by every tests/c/test_*.c.
 * test_numpack.c owns main() and calls each suite declared at the end of this file.
 */
#ifndef NUMPACK_TEST_HARNESS_H
#define NUMPACK_TEST_HARNESS_H

#include "numpack.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Defined in test_numpack.c, which owns main(). */
extern int passed;
extern int failed;
extern const char *base_dir;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (cond) {                                                                       \
            passed++;                                                                     \
        } else {                                                                          \
            failed++;                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
        }                                                                                 \
    } while (0)

#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)

/* Checks the status of a call, and that the last-error message matches it: empty after
 * a success, non-empty after a failure. */
#define CHECK_STATUS(expr, want)                                                          \
    do {                                                                                  \
        npk_status st_ = (expr);                                                          \
        uint32_t want_ = (uint32_t)(want);                                                \
        const char *msg_ = npk_last_error_message();                                      \
        if ((uint32_t)st_ == want_ && ((want_ == NPK_STATUS_OK) == (msg_[0] == '\0'))) {  \
            passed++;                                                                     \
        } else {                                                                          \
            failed++;                                                                     \
            fprintf(stderr, "%s:%d: %s returned %s, want %s (message: \"%s\")\n",        \
                    __FILE__, __LINE__, #expr, npk_status_name((uint32_t)st_),           \
                    npk_status_name(want_), msg_);                                        \
        }                                                                                 \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, NPK_STATUS_OK)

/* A fresh directory for one test's stores; `buf` receives its path. */
static inline void fresh_dir(char *buf, size_t len) {
    snprintf(buf, len, "%s/t-XXXXXX", base_dir);
    if (mkdtemp(buf) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

/* A new store at DIR/name, created. */
static inline npk_store *new_store(const char *dir, const char *name) {
    char path[4096];
    npk_store *s = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_OK(npk_store_open(path, NPK_OPEN_CREATE, &s));
    if (s == NULL) {
        fprintf(stderr, "cannot create a store at %s: %s\n", path, npk_last_error_message());
        exit(2);
    }
    return s;
}

static inline int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Size of the file at `path` in bytes; -1 when there is none. */
static inline long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Number of entries in a directory, "." and ".." excluded; -1 when it cannot be read. */
static inline int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Saves an int32 array of shape [rows, cols] whose element (r, c) is r * 100 + c. */
static inline void save_grid(const npk_store *s, const char *name, uint64_t rows, uint64_t cols) {
    uint64_t shape[2];
    size_t n = (size_t)(rows * cols);
    int32_t *data = (int32_t *)malloc(n * sizeof(int32_t) + 1);
    size_t i;
    shape[0] = rows;
    shape[1] = cols;
    for (i = 0; i < n; i++) {
        data[i] = (int32_t)((i / cols) * 100 + i % cols);
    }
    CHECK_OK(npk_store_save(s, name, NPK_DTYPE_INT32, 2, shape, data, n * sizeof(int32_t)));
    free(data);
}

/* Suites in other files (one per area of the API). */
void vector_tests(void);
/* --- packages (.npkg): tests/c/test_package.c --- */
void package_tests(void);
/* --- end packages --- */
/* --- .npy interop --- */
void npy_tests(void);
/* --- end --- */
/* check (cli branch) */
void check_tests(void);
/* Compressed arrays: test_compression.c. */
void compression_tests(void);
/* safetensors interop: test_safetensors.c. */
void safetensors_tests(void);
/* Symbolic links inside a store: test_hostile_links.c. */
void hostile_link_tests(void);
/* Crafted sizes: test_hostile.c. */
void hostile_tests(void);
/* Forged log records: test_hostile_log.c. */
void hostile_log_tests(void);

#endif
