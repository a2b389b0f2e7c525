/*
 * A store whose data file is a symbolic link to a file outside it (as a store someone
 * else made may be): every read and write through the C ABI is refused with CORRUPT
 * naming the file, and the file outside is left byte for byte as it was.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

/* Reads the whole file at `path` into `buf` (at most `cap` bytes); its length or -1. */
static long slurp(const char *path, unsigned char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n;
    if (f == NULL) {
        return -1;
    }
    n = fread(buf, 1, cap, f);
    fclose(f);
    return (long)n;
}

void hostile_link_tests(void) {
    char dir[4096], store[4200], data[4300], bait[4200];
    unsigned char before[256], after[256], buf[256];
    long n_before, n_after;
    npk_store *s;
    int32_t row[2] = {7, 7};
    int64_t idx[1] = {0};
    uint64_t shape[2] = {1, 2};

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "a", 3, 2);
    CHECK_OK(npk_store_close(s));
    snprintf(store, sizeof store, "%s/s", dir);
    snprintf(data, sizeof data, "%s/data_a.npkd", store);
    snprintf(bait, sizeof bait, "%s/bait", dir);
    /* The bait holds the array's own bytes, so that following the link would "work". */
    CHECK(rename(data, bait) == 0);
    CHECK(symlink(bait, data) == 0);
    n_before = slurp(bait, before, sizeof before);
    CHECK(n_before == 24);

    s = NULL;
    CHECK_OK(npk_store_open(store, 0, &s));
    CHECK_STATUS(npk_store_load(s, "a", buf, 24), NPK_STATUS_CORRUPT);
    CHECK(strstr(npk_last_error_message(), "data_a.npkd") != NULL);
    CHECK_STATUS(npk_store_replace_rows(s, "a", NPK_DTYPE_INT32, idx, 1, row, sizeof row), NPK_STATUS_CORRUPT);
    CHECK(strstr(npk_last_error_message(), "symbolic link") != NULL);
    CHECK_STATUS(npk_store_append(s, "a", NPK_DTYPE_INT32, 2, shape, row, sizeof row), NPK_STATUS_CORRUPT);
    CHECK_OK(npk_store_close(s));

    s = NULL;
    CHECK_OK(npk_store_open(store, NPK_OPEN_READ_ONLY, &s));
    CHECK_STATUS(npk_store_read_range(s, "a", 0, 1, buf, 8), NPK_STATUS_CORRUPT);
    CHECK_OK(npk_store_close(s));

    n_after = slurp(bait, after, sizeof after);
    CHECK(n_after == n_before && memcmp(before, after, (size_t)n_before) == 0);
}
