/*
 * C tests of a store whose catalogue claims far more bytes than its data file holds:
 * every call through the C ABI returns CORRUPT instead of sizing an allocation by the
 * claim (under AddressSanitizer, a 128 GiB bitmap or a 1 TiB buffer aborts the process),
 * and npk_store_check reports the array.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

static void put_u64(unsigned char *at, uint64_t v) {
    int i;
    for (i = 0; i < 8; i++) {
        at[i] = (unsigned char)(v >> (8 * i));
    }
}

/* Rewrites the shape of the only array (named "a", 2 dimensions) of `dir`'s catalogue to
 * [rows, cols] with the matching sizes, and removes the log: a store as another program
 * could leave it. */
static void claim_shape(const char *dir, uint64_t rows, uint64_t cols) {
    char path[1024];
    unsigned char buf[256];
    size_t len;
    FILE *f;
    snprintf(path, sizeof path, "%s/metadata.npkm", dir);
    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* magic, version, total size (8..16), count (16..20); "a": name length and byte
     * (20..25), ndim (25..29), dims (29..45), data file name (45..60), modify time
     * (60..68), size (68..76). */
    CHECK(len > 76 && buf[24] == 'a' && buf[25] == 2);
    put_u64(buf + 29, rows);
    put_u64(buf + 37, cols);
    put_u64(buf + 68, rows * cols);
    put_u64(buf + 8, rows * cols);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
    snprintf(path, sizeof path, "%s/numpack.wal", dir);
    unlink(path);
}

void hostile_tests(void) {
    char dir[1024];
    npk_store *s = NULL;
    npk_view *v = NULL;
    npk_check_report *r = NULL;
    unsigned char data[40] = {0};
    unsigned char row[1];
    uint64_t shape[2] = {10, 4};
    int64_t idx[1] = {0};
    int64_t last[1] = {-1};
    size_t i, errors = 0;

    fresh_dir(dir, sizeof dir);
    strcat(dir, "/s.npk");
    CHECK_OK(npk_store_open(dir, NPK_OPEN_CREATE, &s));
    CHECK_OK(npk_store_save(s, "a", NPK_DTYPE_UINT8, 2, shape, data, sizeof data));
    CHECK_OK(npk_store_close(s));
    /* 2^40 rows of one byte in a 40-byte file. */
    claim_shape(dir, (uint64_t)1 << 40, 1);

    CHECK_OK(npk_store_open(dir, 0, &s));
    CHECK_STATUS(npk_store_view(s, "a", 0, &v), NPK_STATUS_CORRUPT);
    CHECK(v == NULL);
    CHECK_STATUS(npk_store_read_rows(s, "a", last, 1, row, sizeof row), NPK_STATUS_CORRUPT);
    /* A bitmap for 2^40 rows would take 128 GiB. */
    CHECK_STATUS(npk_store_delete_rows(s, "a", idx, 1), NPK_STATUS_CORRUPT);
    CHECK_OK(npk_store_close(s));

    CHECK_OK(npk_store_check(dir, &r));
    for (i = 0; i < npk_check_report_len(r); i++) {
        npk_check_finding f;
        CHECK_OK(npk_check_report_get(r, i, &f));
        if (f.severity == NPK_SEVERITY_ERROR && f.array != NULL && strcmp(f.array, "a") == 0) {
            errors++;
        }
    }
    CHECK(errors > 0);
    npk_check_report_free(r);
}
