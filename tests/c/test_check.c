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

void check_tests(void) {
    test_clean_and_damaged();
    test_unfolded_log_is_info();
    test_check_errors();
}
