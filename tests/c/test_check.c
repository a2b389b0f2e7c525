/*
 * C tests of npk_store_check and the npk_check_report accessors: a clean store has no
 * finding, damage is reported with its id, file and array, a store left by a killed
 * writer is reported (not recovered), and every error path.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

/* Index of the first finding with this id, or -1. */
static long find_id(const npk_check_report *r, const char *id, npk_check_finding *out) {
    size_t i, n = npk_check_report_len(r);
    for (i = 0; i < n; i++) {
        npk_check_finding f;
        CHECK_OK(npk_check_report_get(r, i, &f));
        if (strcmp(f.id, id) == 0) {
            if (out != NULL) {
                *out = f;
            }
            return (long)i;
        }
    }
    return -1;
}

static void write_file(const char *path, const void *bytes, size_t len) {
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static void test_clean_and_damaged(void) {
    char dir[1024], store_path[2048], path[4096];
    npk_check_report *r = NULL;
    npk_check_finding f;
    npk_store *s;
    int64_t gone[1] = {2};
    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s.npk");
    save_grid(s, "g", 10, 3);
    save_grid(s, "h", 4, 2);
    CHECK_OK(npk_store_delete_rows(s, "g", gone, 1));
    CHECK_OK(npk_store_close(s));
    snprintf(store_path, sizeof store_path, "%s/s.npk", dir);

    CHECK_OK(npk_store_check(store_path, &r));
    CHECK(r != NULL);
    CHECK(npk_check_report_len(r) == 0);
    CHECK_STATUS(npk_check_report_get(r, 0, &f), NPK_STATUS_INDEX_OUT_OF_RANGE);
    npk_check_report_free(r);

    /* A truncated data file (error) and an orphan data file (warning). */
    snprintf(path, sizeof path, "%s/data_h.npkd", store_path);
    CHECK(truncate(path, 4) == 0);
    snprintf(path, sizeof path, "%s/data_ghost.npkd", store_path);
    write_file(path, "12345678", 8);
    r = NULL;
    CHECK_OK(npk_store_check(store_path, &r));
    CHECK(npk_check_report_len(r) == 2);
    CHECK(find_id(r, "data-size-mismatch", &f) >= 0);
    CHECK(f.severity == NPK_SEVERITY_ERROR);
    CHECK_STR(f.file, "data_h.npkd");
    CHECK_STR(f.array, "h");
    CHECK(strstr(f.message, "data_h.npkd") != NULL);
    CHECK(find_id(r, "orphan-data-file", &f) >= 0);
    CHECK(f.severity == NPK_SEVERITY_WARNING);
    CHECK_STR(f.array, "ghost");
    npk_check_report_free(r);

    /* A catalogue with a bad magic: reported; no array is known, so no file is an orphan. */
    snprintf(path, sizeof path, "%s/metadata.npkm", store_path);
    write_file(path, "XXXXYYYYZZZZ", 12);
    r = NULL;
    CHECK_OK(npk_store_check(store_path, &r));
    CHECK(find_id(r, "catalogue-bad-magic", &f) == 0);
    CHECK(f.severity == NPK_SEVERITY_ERROR);
    CHECK(f.array == NULL);
    CHECK_STR(f.file, "metadata.npkm");
    CHECK(npk_check_report_len(r) == 1);
    npk_check_report_free(r);
}

static void test_unfolded_log_is_info(void) {
    char dir[1024], store_path[2048];
    npk_check_report *r = NULL;
    npk_check_finding f;
    npk_store *s;
    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s.npk");
    save_grid(s, "g", 3, 3);
    snprintf(store_path, sizeof store_path, "%s/s.npk", dir);
    /* The handle is open: the save is in the log, not yet in metadata.npkm. */
    CHECK_OK(npk_store_check(store_path, &r));
    CHECK(npk_check_report_len(r) == 1);
    CHECK(find_id(r, "log-not-checkpointed", &f) == 0);
    CHECK(f.severity == NPK_SEVERITY_INFO);
    CHECK(f.array == NULL);
    npk_check_report_free(r);
    CHECK_OK(npk_store_close(s));
}

static void test_check_errors(void) {
    char dir[1024], path[4096];
    npk_check_report *r = NULL;
    npk_check_finding f;
    fresh_dir(dir, sizeof dir);
    CHECK_STATUS(npk_store_check(NULL, &r), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_check(dir, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_check("", &r), NPK_STATUS_INVALID_ARGUMENT);
    /* An empty directory and a missing path hold no store. */
    CHECK_STATUS(npk_store_check(dir, &r), NPK_STATUS_STORE_NOT_FOUND);
    snprintf(path, sizeof path, "%s/missing", dir);
    CHECK_STATUS(npk_store_check(path, &r), NPK_STATUS_STORE_NOT_FOUND);
    CHECK(r == NULL); /* outputs are untouched on failure */

    /* Accessors on NULL and on a freed report. */
    CHECK(npk_check_report_len(NULL) == 0);
    CHECK_STATUS(npk_check_report_get(NULL, 0, &f), NPK_STATUS_NULL_ARGUMENT);
    npk_check_report_free(NULL);
    {
        npk_store *s = new_store(dir, "s.npk");
        CHECK_OK(npk_store_close(s));
        snprintf(path, sizeof path, "%s/s.npk", dir);
        CHECK_OK(npk_store_check(path, &r));
        CHECK_STATUS(npk_check_report_get(r, 0, NULL), NPK_STATUS_NULL_ARGUMENT);
        npk_check_report_free(r);
        CHECK(npk_check_report_len(r) == 0);
        CHECK_STATUS(npk_check_report_get(r, 0, &f), NPK_STATUS_INVALID_ARGUMENT);
        npk_check_report_free(r); /* a second free is ignored */
    }
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        exit(2);
    }
    buf = (unsigned char *)malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Turns array "g" (int32 [10, 3], saved by save_grid) of a closed store into NumPack 0.7's
 * segmented layout: 4-row segments under data_g_segments/, the manifest data_g.npkseg and
 * the catalogue naming it (its data-file string grows from "data_g.npkd" to
 * "data_g.npkseg"). */
static void segment_grid(const char *store_path) {
    char path[4096], seg[4096], manifest[2048];
    size_t len, i, at = 0, mlen = 0;
    unsigned char *data, *meta, *out;
    const char *old_name = "data_g.npkd";
    uint32_t new_len = 13;
    snprintf(path, sizeof path, "%s/data_g.npkd", store_path);
    data = read_all(path, &len);
    CHECK(len == 120);
    CHECK(unlink(path) == 0);
    snprintf(path, sizeof path, "%s/data_g_segments", store_path);
    CHECK(mkdir(path, 0777) == 0);
    mlen += (size_t)snprintf(manifest, sizeof manifest, "{\n  \"version\": 1,\n  \"segments\": [");
    for (i = 0; i < 3; i++) {
        size_t rows = i < 2 ? 4 : 2;
        snprintf(seg, sizeof seg, "%s/data_g_segments/seg_%06u.npkd", store_path, (unsigned)i);
        write_file(seg, data + i * 48, rows * 12);
        mlen += (size_t)snprintf(manifest + mlen, sizeof manifest - mlen,
                                 "%s\n    {\"file\": \"data_g_segments/seg_%06u.npkd\", \"rows\": %u, \"bytes\": %u}",
                                 i ? "," : "", (unsigned)i, (unsigned)rows, (unsigned)(rows * 12));
    }
    mlen += (size_t)snprintf(manifest + mlen, sizeof manifest - mlen, "\n  ]\n}");
    snprintf(path, sizeof path, "%s/data_g.npkseg", store_path);
    write_file(path, manifest, mlen);
    free(data);

    snprintf(path, sizeof path, "%s/metadata.npkm", store_path);
    meta = read_all(path, &len);
    out = (unsigned char *)malloc(len + 2);
    for (i = 0; i + 4 + 11 <= len; i++) {
        if (memcmp(meta + i + 4, old_name, 11) == 0 && meta[i] == 11 && meta[i + 1] == 0) {
            break;
        }
    }
    CHECK(i + 4 + 11 <= len);
    memcpy(out, meta, i);
    at = i;
    memcpy(out + at, &new_len, 4); /* little-endian hosts only, as the format */
    memcpy(out + at + 4, "data_g.npkseg", 13);
    memcpy(out + at + 17, meta + i + 15, len - i - 15);
    write_file(path, out, len + 2);
    free(meta);
    free(out);
}

/* A store with a NumPack 0.7 segmented array, through the C API: reads (load, rows,
 * view), an append, check clean, then a manifest pointing outside the store reported as
 * segment-manifest-corrupt and reads failing with CORRUPT. */
static void test_segmented(void) {
    char dir[1024], store_path[2048], path[4096];
    npk_store *s = NULL;
    npk_check_report *r = NULL;
    npk_check_finding f;
    npk_view *v = NULL;
    npk_view_layout lay;
    int32_t all[13 * 3], rows[2 * 3], more[3 * 3];
    int64_t idx[2] = {9, 3};
    uint64_t shape[2] = {3, 3};
    int i;
    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s.npk");
    save_grid(s, "g", 10, 3);
    CHECK_OK(npk_store_close(s));
    snprintf(store_path, sizeof store_path, "%s/s.npk", dir);
    segment_grid(store_path);

    CHECK_OK(npk_store_check(store_path, &r));
    CHECK(npk_check_report_len(r) == 0);
    npk_check_report_free(r);

    s = NULL;
    CHECK_OK(npk_store_open(store_path, NPK_OPEN_READ_ONLY, &s));
    CHECK_OK(npk_store_load(s, "g", all, 10 * 3 * sizeof(int32_t)));
    CHECK(all[0] == 0 && all[3 * 4] == 400 && all[3 * 9 + 2] == 902);
    CHECK_OK(npk_store_read_rows(s, "g", idx, 2, rows, sizeof rows));
    CHECK(rows[0] == 900 && rows[3] == 300);
    CHECK_OK(npk_store_view(s, "g", 0, &v));
    CHECK_OK(npk_view_info(v, &lay));
    CHECK(lay.nbytes == 120 && ((const int32_t *)lay.data)[3 * 8 + 1] == 801);
    npk_view_free(v);
    CHECK_STATUS(npk_store_view(s, "g", NPK_VIEW_WRITABLE, &v), NPK_STATUS_READ_ONLY);
    CHECK_OK(npk_store_close(s));

    s = NULL;
    CHECK_OK(npk_store_open(store_path, 0, &s));
    for (i = 0; i < 9; i++) {
        more[i] = 1000 + i;
    }
    CHECK_OK(npk_store_append(s, "g", NPK_DTYPE_INT32, 2, shape, more, sizeof more));
    CHECK_OK(npk_store_load(s, "g", all, sizeof all));
    CHECK(all[3 * 10] == 1000 && all[3 * 12 + 2] == 1008 && all[3 * 9] == 900);
    CHECK_STATUS(npk_store_view(s, "g", NPK_VIEW_WRITABLE, &v), NPK_STATUS_UNSUPPORTED);
    CHECK_OK(npk_store_close(s));
    r = NULL;
    CHECK_OK(npk_store_check(store_path, &r));
    CHECK(npk_check_report_len(r) == 0);
    npk_check_report_free(r);

    snprintf(path, sizeof path, "%s/data_g.npkseg", store_path);
    {
        const char *bad = "{\"version\":1,\"segments\":[{\"file\":\"../x.npkd\",\"rows\":13,\"bytes\":156}]}";
        write_file(path, bad, strlen(bad));
    }
    r = NULL;
    CHECK_OK(npk_store_check(store_path, &r));
    CHECK(find_id(r, "segment-manifest-corrupt", &f) >= 0);
    CHECK(f.file != NULL && strcmp(f.file, "data_g.npkseg") == 0);
    npk_check_report_free(r);
    s = NULL;
    CHECK_OK(npk_store_open(store_path, NPK_OPEN_READ_ONLY, &s));
    CHECK_STATUS(npk_store_load(s, "g", all, sizeof all), NPK_STATUS_CORRUPT);
    CHECK_OK(npk_store_close(s));
}

void check_tests(void) {
    test_segmented();
    test_clean_and_damaged();
    test_unfolded_log_is_info();
    test_check_errors();
}
