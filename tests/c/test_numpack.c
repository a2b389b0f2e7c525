/*
 * C tests of the numpack C API: every exported function, its success and error paths.
 *
 * Usage: test_numpack BASE_DIR   (each test makes its stores in a fresh mkdtemp
 * directory under BASE_DIR). Prints "N passed, M failed" and exits non-zero on failure.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

#include <errno.h>
#include <pthread.h>

int passed;
int failed;
const char *base_dir;

/* ------------------------------------------------------------------------------------ */

static void test_version(void) {
    char expect[64];
    snprintf(expect, sizeof expect, "%d.%d.%d", NPK_VERSION_MAJOR, NPK_VERSION_MINOR,
             NPK_VERSION_PATCH);
    CHECK_STR(npk_version(), NPK_VERSION_STRING);
    CHECK(strncmp(NPK_VERSION_STRING, expect, strlen(expect)) == 0);
}

static void test_status_names(void) {
    static const struct {
        uint32_t code;
        const char *name;
    } table[] = {
        {NPK_STATUS_OK, "OK"},
        {NPK_STATUS_NULL_ARGUMENT, "NULL_ARGUMENT"},
        {NPK_STATUS_INVALID_ARGUMENT, "INVALID_ARGUMENT"},
        {NPK_STATUS_INVALID_NAME, "INVALID_NAME"},
        {NPK_STATUS_INDEX_OUT_OF_RANGE, "INDEX_OUT_OF_RANGE"},
        {NPK_STATUS_DTYPE_MISMATCH, "DTYPE_MISMATCH"},
        {NPK_STATUS_SHAPE_MISMATCH, "SHAPE_MISMATCH"},
        {NPK_STATUS_BUFFER_SIZE, "BUFFER_SIZE"},
        {NPK_STATUS_NOT_FOUND, "NOT_FOUND"},
        {NPK_STATUS_ALREADY_EXISTS, "ALREADY_EXISTS"},
        {NPK_STATUS_STORE_NOT_FOUND, "STORE_NOT_FOUND"},
        {NPK_STATUS_READ_ONLY, "READ_ONLY"},
        {NPK_STATUS_IO, "IO"},
        {NPK_STATUS_CORRUPT, "CORRUPT"},
        {NPK_STATUS_UNSUPPORTED, "UNSUPPORTED"},
        {NPK_STATUS_NEEDS_RECOVERY, "NEEDS_RECOVERY"},
        {NPK_STATUS_CANCELLED, "CANCELLED"},
        {NPK_STATUS_PANIC, "PANIC"},
    };
    size_t i;
    CHECK(NPK_STATUS_OK == 0);
    for (i = 0; i < sizeof table / sizeof table[0]; i++) {
        CHECK_STR(npk_status_name(table[i].code), table[i].name);
    }
    CHECK_STR(npk_status_name(8), "UNKNOWN");
    CHECK_STR(npk_status_name(0xFFFFFFFFu), "UNKNOWN");
}

static void test_dtypes(void) {
    static const struct {
        uint32_t code;
        size_t size;
        const char *name;
    } table[] = {
        {NPK_DTYPE_BOOL, 1, "bool"},         {NPK_DTYPE_UINT8, 1, "uint8"},
        {NPK_DTYPE_UINT16, 2, "uint16"},     {NPK_DTYPE_UINT32, 4, "uint32"},
        {NPK_DTYPE_UINT64, 8, "uint64"},     {NPK_DTYPE_INT8, 1, "int8"},
        {NPK_DTYPE_INT16, 2, "int16"},       {NPK_DTYPE_INT32, 4, "int32"},
        {NPK_DTYPE_INT64, 8, "int64"},       {NPK_DTYPE_FLOAT16, 2, "float16"},
        {NPK_DTYPE_FLOAT32, 4, "float32"},   {NPK_DTYPE_FLOAT64, 8, "float64"},
        {NPK_DTYPE_COMPLEX64, 8, "complex64"}, {NPK_DTYPE_COMPLEX128, 16, "complex128"},
    };
    size_t i;
    for (i = 0; i < sizeof table / sizeof table[0]; i++) {
        CHECK(table[i].code == i);
        CHECK(npk_dtype_size(table[i].code) == table[i].size);
        CHECK(npk_dtype_name(table[i].code) != NULL);
        if (npk_dtype_name(table[i].code) != NULL) {
            CHECK_STR(npk_dtype_name(table[i].code), table[i].name);
        }
    }
    CHECK(npk_dtype_size(14) == 0);
    CHECK(npk_dtype_size(0xFFFFFFFFu) == 0);
    CHECK(npk_dtype_name(14) == NULL);
    CHECK(npk_dtype_name(0xFFFFFFFFu) == NULL);
}

static void test_open_and_close(void) {
    char dir[4096], path[4200], file[4200];
    npk_store *s = NULL;
    npk_store *sentinel = (npk_store *)&s; /* never a live handle */
    npk_store *out = sentinel;
    bool ro = true;
    FILE *f;

    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/store", dir);

    CHECK_STATUS(npk_store_open(NULL, NPK_OPEN_CREATE, &out), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_open(path, NPK_OPEN_CREATE, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK(!exists(path)); /* arguments are checked before anything is done */
    CHECK_STATUS(npk_store_open(path, 8, &out), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_open(path, NPK_OPEN_CREATE | 0x80000000u, &out),
                 NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_open("", NPK_OPEN_CREATE, &out), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_open(path, 0, &out), NPK_STATUS_STORE_NOT_FOUND);
    CHECK_STATUS(npk_store_open(path, NPK_OPEN_READ_ONLY, &out), NPK_STATUS_STORE_NOT_FOUND);
    CHECK_STATUS(npk_store_open(path, NPK_OPEN_READ_ONLY | NPK_OPEN_DROP_IF_EXISTS, &out),
                 NPK_STATUS_INVALID_ARGUMENT);
    CHECK(out == sentinel); /* outputs are written only on success */
    CHECK(!exists(path));

    /* A file where the store should be. */
    snprintf(file, sizeof file, "%s/file", dir);
    f = fopen(file, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("x", f);
        fclose(f);
    }
    CHECK_STATUS(npk_store_open(file, NPK_OPEN_CREATE, &out), NPK_STATUS_INVALID_ARGUMENT);
    /* DROP_IF_EXISTS refuses a non-empty directory that is not a store. */
    CHECK_STATUS(npk_store_open(dir, NPK_OPEN_DROP_IF_EXISTS, &out), NPK_STATUS_INVALID_ARGUMENT);
    CHECK(exists(file));

    CHECK_OK(npk_store_open(path, NPK_OPEN_CREATE, &s));
    CHECK(s != NULL);
    CHECK_OK(npk_store_is_read_only(s, &ro));
    CHECK(ro == false);
    CHECK_STATUS(npk_store_is_read_only(s, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_is_read_only(NULL, &ro), NPK_STATUS_NULL_ARGUMENT);
    save_grid(s, "a", 2, 2);
    CHECK_OK(npk_store_close(s));

    /* Double close and use after close are detected. */
    CHECK_STATUS(npk_store_close(s), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_sync(s), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_OK(npk_store_close(NULL));
    /* A pointer that never was a handle is rejected without being dereferenced. */
    CHECK_STATUS(npk_store_close(sentinel), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_refresh(sentinel), NPK_STATUS_INVALID_ARGUMENT);

    /* Reopen: the data is there. */
    s = NULL;
    CHECK_OK(npk_store_open(path, 0, &s));
    {
        bool has = false;
        CHECK_OK(npk_store_has(s, "a", &has));
        CHECK(has);
    }
    CHECK_OK(npk_store_close(s));

    /* DROP_IF_EXISTS wipes a store. */
    s = NULL;
    CHECK_OK(npk_store_open(path, NPK_OPEN_DROP_IF_EXISTS, &s));
    {
        npk_names *names = NULL;
        CHECK_OK(npk_store_list(s, &names));
        CHECK(npk_names_count(names) == 0);
        npk_names_free(names);
    }
    CHECK_OK(npk_store_close(s));
}

static void test_null_store(void) {
    bool b;
    npk_array_info info;
    npk_names *names;
    npk_view *view;
    npk_stream *stream;
    uint64_t shape[1] = {1};
    int32_t x = 0;
    int64_t idx = 0;

    CHECK_STATUS(npk_store_sync(NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_refresh(NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_list(NULL, &names), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_has(NULL, "a", &b), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_info(NULL, "a", &info), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_save(NULL, "a", NPK_DTYPE_INT32, 1, shape, &x, 4),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_load(NULL, "a", &x, 4), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_read_rows(NULL, "a", &idx, 1, &x, 4), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_read_range(NULL, "a", 0, 1, &x, 4), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_replace_rows(NULL, "a", NPK_DTYPE_INT32, &idx, 1, &x, 4),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_replace_range(NULL, "a", NPK_DTYPE_INT32, 0, 1, &x, 4),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_append(NULL, "a", NPK_DTYPE_INT32, 1, shape, &x, 4),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_delete_rows(NULL, "a", &idx, 1), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_drop(NULL, "a"), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_compact(NULL, "a"), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_clone(NULL, "a", "b"), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_rename(NULL, "a", "b"), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_reset(NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_view(NULL, "a", 0, &view), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_stream(NULL, "a", 1, &stream), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_is_read_only(NULL, &b), NPK_STATUS_NULL_ARGUMENT);
}

static void test_save_load_info(void) {
    char dir[4096];
    npk_store *s;
    float data[12], back[12];
    uint64_t shape[2] = {3, 4};
    npk_array_info info, untouched;
    bool has = true;
    char long_name[300];
    size_t i;
    const char *bad_names[] = {"a/b", "..", ".", "", "a\\b", "tab\there"};

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    for (i = 0; i < 12; i++) {
        data[i] = (float)i * 0.5f;
    }

    CHECK_OK(npk_store_save(s, "f", NPK_DTYPE_FLOAT32, 2, shape, data, sizeof data));
    CHECK_OK(npk_store_has(s, "f", &has));
    CHECK(has);
    CHECK_OK(npk_store_has(s, "nope", &has));
    CHECK(!has);

    memset(&info, 0xAB, sizeof info);
    CHECK_OK(npk_store_info(s, "f", &info));
    CHECK(info.dtype == NPK_DTYPE_FLOAT32);
    CHECK(info.ndim == 2);
    CHECK(info.shape[0] == 3 && info.shape[1] == 4 && info.shape[2] == 0);
    CHECK(info.shape[NPK_MAX_NDIM - 1] == 0);
    CHECK(info.physical_rows == 3);
    CHECK(info.modified_us > 1500000000000000ull);

    memset(back, 0, sizeof back);
    CHECK_OK(npk_store_load(s, "f", back, sizeof back));
    CHECK(memcmp(back, data, sizeof data) == 0);

    /* Errors of save. */
    CHECK_STATUS(npk_store_save(s, NULL, NPK_DTYPE_FLOAT32, 2, shape, data, sizeof data),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_save(s, "g", 14, 2, shape, data, sizeof data),
                 NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_save(s, "g", 0xFFFFFFFFu, 2, shape, data, sizeof data),
                 NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_save(s, "g", NPK_DTYPE_FLOAT32, 2, NULL, data, sizeof data),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_save(s, "g", NPK_DTYPE_FLOAT32, 2, shape, NULL, sizeof data),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_save(s, "g", NPK_DTYPE_FLOAT32, 0, NULL, data, 4),
                 NPK_STATUS_SHAPE_MISMATCH);
    {
        uint64_t big[NPK_MAX_NDIM + 1];
        for (i = 0; i < NPK_MAX_NDIM + 1; i++) {
            big[i] = 1;
        }
        CHECK_STATUS(npk_store_save(s, "g", NPK_DTYPE_UINT8, NPK_MAX_NDIM + 1, big, data, 1),
                     NPK_STATUS_SHAPE_MISMATCH);
        CHECK_OK(npk_store_save(s, "g", NPK_DTYPE_UINT8, NPK_MAX_NDIM, big, data, 1));
        CHECK_OK(npk_store_info(s, "g", &info));
        CHECK(info.ndim == NPK_MAX_NDIM && info.shape[NPK_MAX_NDIM - 1] == 1);
    }
    CHECK_STATUS(npk_store_save(s, "g", NPK_DTYPE_FLOAT32, 2, shape, data, sizeof data - 1),
                 NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_store_save(s, "g", NPK_DTYPE_FLOAT64, 2, shape, data, sizeof data),
                 NPK_STATUS_BUFFER_SIZE);
    {
        uint64_t huge[2] = {UINT64_MAX, 2};
        CHECK_STATUS(npk_store_save(s, "g", NPK_DTYPE_FLOAT32, 2, huge, data, sizeof data),
                     NPK_STATUS_INVALID_ARGUMENT);
    }
    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        CHECK_STATUS(npk_store_save(s, bad_names[i], NPK_DTYPE_FLOAT32, 2, shape, data,
                                    sizeof data),
                     NPK_STATUS_INVALID_NAME);
        CHECK_STATUS(npk_store_has(s, bad_names[i], &has), NPK_STATUS_INVALID_NAME);
        CHECK_STATUS(npk_store_load(s, bad_names[i], back, sizeof back),
                     NPK_STATUS_INVALID_NAME);
    }
    memset(long_name, 'x', sizeof long_name);
    long_name[NPK_MAX_NAME_LEN + 1] = '\0';
    CHECK_STATUS(npk_store_save(s, long_name, NPK_DTYPE_FLOAT32, 2, shape, data, sizeof data),
                 NPK_STATUS_INVALID_NAME);
    long_name[NPK_MAX_NAME_LEN] = '\0';
    CHECK_OK(npk_store_save(s, long_name, NPK_DTYPE_FLOAT32, 2, shape, data, sizeof data));
    CHECK_STATUS(npk_store_save(s, "bad\xff", NPK_DTYPE_FLOAT32, 2, shape, data, sizeof data),
                 NPK_STATUS_INVALID_ARGUMENT);
    /* UTF-8 names are fine. */
    CHECK_OK(npk_store_save(s, "caf\xc3\xa9", NPK_DTYPE_FLOAT32, 2, shape, data, sizeof data));

    /* An empty array: NULL data with length 0. */
    {
        uint64_t empty[2] = {0, 4};
        CHECK_OK(npk_store_save(s, "empty", NPK_DTYPE_FLOAT32, 2, empty, NULL, 0));
        CHECK_OK(npk_store_load(s, "empty", NULL, 0));
        CHECK_OK(npk_store_info(s, "empty", &info));
        CHECK(info.shape[0] == 0 && info.shape[1] == 4);
    }

    /* Errors of load, info and has. */
    CHECK_STATUS(npk_store_load(s, "f", back, sizeof back - 4), NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_store_load(s, "f", back, sizeof back + 4), NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_store_load(s, "f", NULL, sizeof back), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_load(s, "missing", back, sizeof back), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_load(s, NULL, back, sizeof back), NPK_STATUS_NULL_ARGUMENT);
    memset(&untouched, 0x5A, sizeof untouched);
    info = untouched;
    CHECK_STATUS(npk_store_info(s, "missing", &info), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_info(s, "a/b", &info), NPK_STATUS_INVALID_NAME);
    CHECK_STATUS(npk_store_info(s, NULL, &info), NPK_STATUS_NULL_ARGUMENT);
    CHECK(memcmp(&info, &untouched, sizeof info) == 0);
    CHECK_STATUS(npk_store_info(s, "f", NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_has(s, "f", NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_has(s, NULL, &has), NPK_STATUS_NULL_ARGUMENT);

    /* Save replaces. */
    {
        uint64_t one[1] = {2};
        int64_t v[2] = {-1, 7};
        CHECK_OK(npk_store_save(s, "f", NPK_DTYPE_INT64, 1, one, v, sizeof v));
        CHECK_OK(npk_store_info(s, "f", &info));
        CHECK(info.dtype == NPK_DTYPE_INT64 && info.ndim == 1 && info.shape[0] == 2);
    }
    CHECK_OK(npk_store_close(s));
}

static void test_read_rows_and_range(void) {
    char dir[4096];
    npk_store *s;
    int32_t buf[3 * 2];
    int64_t idx[3] = {0, -1, 2};
    int64_t bad[1];

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "g", 5, 2); /* rows r: {r*100, r*100+1} */

    CHECK_OK(npk_store_read_rows(s, "g", idx, 3, buf, sizeof buf));
    CHECK(buf[0] == 0 && buf[1] == 1);
    CHECK(buf[2] == 400 && buf[3] == 401);
    CHECK(buf[4] == 200 && buf[5] == 201);
    idx[0] = 3;
    idx[1] = 3;
    CHECK_OK(npk_store_read_rows(s, "g", idx, 2, buf, 2 * 2 * sizeof(int32_t)));
    CHECK(buf[0] == 300 && buf[2] == 300);
    CHECK_OK(npk_store_read_rows(s, "g", NULL, 0, NULL, 0));

    bad[0] = 5;
    CHECK_STATUS(npk_store_read_rows(s, "g", bad, 1, buf, 8), NPK_STATUS_INDEX_OUT_OF_RANGE);
    bad[0] = -6;
    CHECK_STATUS(npk_store_read_rows(s, "g", bad, 1, buf, 8), NPK_STATUS_INDEX_OUT_OF_RANGE);
    bad[0] = INT64_MIN;
    CHECK_STATUS(npk_store_read_rows(s, "g", bad, 1, buf, 8), NPK_STATUS_INDEX_OUT_OF_RANGE);
    CHECK_STATUS(npk_store_read_rows(s, "g", idx, 3, buf, sizeof buf - 1), NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_store_read_rows(s, "g", NULL, 1, buf, 8), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_read_rows(s, "g", idx, 1, NULL, 8), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_read_rows(s, "missing", idx, 1, buf, 8), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_read_rows(s, "..", idx, 1, buf, 8), NPK_STATUS_INVALID_NAME);

    CHECK_OK(npk_store_read_range(s, "g", 1, 4, buf, sizeof buf));
    CHECK(buf[0] == 100 && buf[5] == 301);
    CHECK_OK(npk_store_read_range(s, "g", 5, 5, NULL, 0));
    CHECK_STATUS(npk_store_read_range(s, "g", 3, 2, buf, 0), NPK_STATUS_INDEX_OUT_OF_RANGE);
    CHECK_STATUS(npk_store_read_range(s, "g", 4, 6, buf, 16), NPK_STATUS_INDEX_OUT_OF_RANGE);
    CHECK_STATUS(npk_store_read_range(s, "g", 0, UINT64_MAX, buf, 16),
                 NPK_STATUS_INDEX_OUT_OF_RANGE);
    CHECK_STATUS(npk_store_read_range(s, "g", 0, 2, buf, 15), NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_store_read_range(s, "g", 0, 2, NULL, 16), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_read_range(s, "missing", 0, 1, buf, 8), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_read_range(s, NULL, 0, 1, buf, 8), NPK_STATUS_NULL_ARGUMENT);

    /* read_range_checked: reads only while the array has the shape the caller expects */
    {
        npk_array_info expect, now;
        int32_t row[2] = {-7, -8};
        uint64_t one_row[2] = {1, 2};
        memset(buf, 0, sizeof buf);
        CHECK_OK(npk_store_info(s, "g", &expect));
        CHECK_OK(npk_store_read_range_checked(s, "g", &expect, 1, 4, buf, sizeof buf));
        CHECK(buf[0] == 100 && buf[5] == 301);
        CHECK_OK(npk_store_read_range_checked(s, "g", &expect, 5, 5, NULL, 0));
        CHECK_STATUS(npk_store_read_range_checked(s, "g", &expect, 4, 6, buf, 16),
                     NPK_STATUS_INDEX_OUT_OF_RANGE);
        CHECK_STATUS(npk_store_read_range_checked(s, "g", &expect, 0, 2, buf, 15),
                     NPK_STATUS_BUFFER_SIZE);
        CHECK_STATUS(npk_store_read_range_checked(s, "g", NULL, 0, 1, buf, 8),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_store_read_range_checked(s, "missing", &expect, 0, 1, buf, 8),
                     NPK_STATUS_NOT_FOUND);
        /* one more row: the old shape no longer holds, buf is left alone */
        CHECK_OK(npk_store_append(s, "g", NPK_DTYPE_INT32, 2, one_row, row, sizeof row));
        buf[0] = 12345;
        CHECK_STATUS(npk_store_read_range_checked(s, "g", &expect, 0, 1, buf, 8),
                     NPK_STATUS_SHAPE_MISMATCH);
        CHECK(buf[0] == 12345);
        CHECK_OK(npk_store_info(s, "g", &now));
        CHECK_OK(npk_store_read_range_checked(s, "g", &now, 5, 6, buf, 8));
        CHECK(buf[0] == -7 && buf[1] == -8);
        /* another dtype of the same size, another row shape, a bad expectation */
        now.dtype = NPK_DTYPE_FLOAT32;
        CHECK_STATUS(npk_store_read_range_checked(s, "g", &now, 0, 1, buf, 8),
                     NPK_STATUS_DTYPE_MISMATCH);
        now.dtype = NPK_DTYPE_INT32;
        now.ndim = 3;
        now.shape[1] = 1;
        now.shape[2] = 2;
        CHECK_STATUS(npk_store_read_range_checked(s, "g", &now, 0, 1, buf, 8),
                     NPK_STATUS_SHAPE_MISMATCH);
        now.ndim = NPK_MAX_NDIM + 1;
        CHECK_STATUS(npk_store_read_range_checked(s, "g", &now, 0, 1, buf, 8),
                     NPK_STATUS_INVALID_ARGUMENT);
        now.ndim = 2;
        now.dtype = 999;
        CHECK_STATUS(npk_store_read_range_checked(s, "g", &now, 0, 1, buf, 8),
                     NPK_STATUS_INVALID_ARGUMENT);
    }

    /* read_rows_checked: the same check before a gather */
    {
        npk_array_info expect;
        int32_t row[2] = {9, 10};
        uint64_t one_row[2] = {1, 2};
        int64_t pick[2] = {-1, 0};
        CHECK_OK(npk_store_info(s, "g", &expect));
        CHECK_OK(npk_store_read_rows_checked(s, "g", &expect, pick, 2, buf, 16));
        CHECK(buf[0] == -7 && buf[1] == -8 && buf[2] == 0 && buf[3] == 1);
        CHECK_OK(npk_store_read_rows_checked(s, "g", &expect, NULL, 0, NULL, 0));
        bad[0] = 6;
        CHECK_STATUS(npk_store_read_rows_checked(s, "g", &expect, bad, 1, buf, 8),
                     NPK_STATUS_INDEX_OUT_OF_RANGE);
        CHECK_STATUS(npk_store_read_rows_checked(s, "g", &expect, pick, 2, buf, 15),
                     NPK_STATUS_BUFFER_SIZE);
        CHECK_STATUS(npk_store_read_rows_checked(s, "g", NULL, pick, 1, buf, 8),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK_OK(npk_store_append(s, "g", NPK_DTYPE_INT32, 2, one_row, row, sizeof row));
        buf[0] = 12345;
        CHECK_STATUS(npk_store_read_rows_checked(s, "g", &expect, pick, 1, buf, 8),
                     NPK_STATUS_SHAPE_MISMATCH);
        CHECK(buf[0] == 12345);
        expect.shape[0] += 1;
        CHECK_OK(npk_store_read_rows_checked(s, "g", &expect, pick, 1, buf, 8));
        CHECK(buf[0] == 9 && buf[1] == 10);
        expect.dtype = NPK_DTYPE_UINT32;
        CHECK_STATUS(npk_store_read_rows_checked(s, "g", &expect, pick, 1, buf, 8),
                     NPK_STATUS_DTYPE_MISMATCH);
    }
    CHECK_OK(npk_store_close(s));
}

static void test_replace(void) {
    char dir[4096];
    npk_store *s;
    int32_t rows[3 * 2] = {-1, -2, -3, -4, -5, -6};
    int32_t back[4 * 2];
    int64_t idx[3] = {1, -1, 1};

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "g", 4, 2);

    /* Index 1 repeats: the last row given for it wins. */
    CHECK_OK(npk_store_replace_rows(s, "g", NPK_DTYPE_INT32, idx, 3, rows, sizeof rows));
    CHECK_OK(npk_store_load(s, "g", back, sizeof back));
    CHECK(back[0] == 0 && back[1] == 1);
    CHECK(back[2] == -5 && back[3] == -6);
    CHECK(back[4] == 200);
    CHECK(back[6] == -3 && back[7] == -4);
    CHECK_OK(npk_store_replace_rows(s, "g", NPK_DTYPE_INT32, NULL, 0, NULL, 0));

    CHECK_STATUS(npk_store_replace_rows(s, "g", NPK_DTYPE_FLOAT32, idx, 1, rows, 8),
                 NPK_STATUS_DTYPE_MISMATCH);
    CHECK_STATUS(npk_store_replace_rows(s, "g", 99, idx, 1, rows, 8),
                 NPK_STATUS_INVALID_ARGUMENT);
    idx[0] = 4;
    CHECK_STATUS(npk_store_replace_rows(s, "g", NPK_DTYPE_INT32, idx, 1, rows, 8),
                 NPK_STATUS_INDEX_OUT_OF_RANGE);
    idx[0] = 0;
    CHECK_STATUS(npk_store_replace_rows(s, "g", NPK_DTYPE_INT32, idx, 1, rows, 12),
                 NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_store_replace_rows(s, "g", NPK_DTYPE_INT32, NULL, 1, rows, 8),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_replace_rows(s, "g", NPK_DTYPE_INT32, idx, 1, NULL, 8),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_replace_rows(s, "missing", NPK_DTYPE_INT32, idx, 1, rows, 8),
                 NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_replace_rows(s, "a/b", NPK_DTYPE_INT32, idx, 1, rows, 8),
                 NPK_STATUS_INVALID_NAME);

    CHECK_OK(npk_store_replace_range(s, "g", NPK_DTYPE_INT32, 2, 2, rows, 16));
    CHECK_OK(npk_store_load(s, "g", back, sizeof back));
    CHECK(back[4] == -1 && back[7] == -4);
    CHECK_OK(npk_store_replace_range(s, "g", NPK_DTYPE_INT32, 4, 0, NULL, 0));
    CHECK_STATUS(npk_store_replace_range(s, "g", NPK_DTYPE_INT32, 3, 2, rows, 16),
                 NPK_STATUS_INDEX_OUT_OF_RANGE);
    CHECK_STATUS(npk_store_replace_range(s, "g", NPK_DTYPE_INT32, 1, UINT64_MAX, rows, 16),
                 NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_replace_range(s, "g", NPK_DTYPE_INT32, 0, 2, rows, 12),
                 NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_store_replace_range(s, "g", NPK_DTYPE_UINT32, 0, 1, rows, 8),
                 NPK_STATUS_DTYPE_MISMATCH);
    CHECK_STATUS(npk_store_replace_range(s, "g", 14, 0, 1, rows, 8), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_replace_range(s, "g", NPK_DTYPE_INT32, 0, 1, NULL, 8),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_replace_range(s, "missing", NPK_DTYPE_INT32, 0, 1, rows, 8),
                 NPK_STATUS_NOT_FOUND);
    CHECK_OK(npk_store_close(s));
}

static void test_append(void) {
    char dir[4096];
    npk_store *s;
    int32_t rows[2 * 2] = {7, 8, 9, 10};
    int32_t back[5 * 2];
    uint64_t shape[2] = {2, 2};
    npk_array_info info;

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "g", 3, 2);

    CHECK_OK(npk_store_append(s, "g", NPK_DTYPE_INT32, 2, shape, rows, sizeof rows));
    CHECK_OK(npk_store_info(s, "g", &info));
    CHECK(info.shape[0] == 5 && info.physical_rows == 5);
    CHECK_OK(npk_store_load(s, "g", back, sizeof back));
    CHECK(back[5] == 201 && back[6] == 7 && back[9] == 10);

    shape[0] = 0;
    CHECK_OK(npk_store_append(s, "g", NPK_DTYPE_INT32, 2, shape, NULL, 0));
    CHECK_OK(npk_store_info(s, "g", &info));
    CHECK(info.shape[0] == 5);

    shape[0] = 1;
    shape[1] = 3;
    CHECK_STATUS(npk_store_append(s, "g", NPK_DTYPE_INT32, 2, shape, rows, 12),
                 NPK_STATUS_SHAPE_MISMATCH);
    CHECK_STATUS(npk_store_append(s, "g", NPK_DTYPE_INT32, 1, shape, rows, 4),
                 NPK_STATUS_SHAPE_MISMATCH);
    shape[1] = 2;
    CHECK_STATUS(npk_store_append(s, "g", NPK_DTYPE_INT64, 2, shape, rows, 16),
                 NPK_STATUS_DTYPE_MISMATCH);
    CHECK_STATUS(npk_store_append(s, "g", 1000, 2, shape, rows, 8), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_append(s, "g", NPK_DTYPE_INT32, 2, shape, rows, 12),
                 NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_store_append(s, "g", NPK_DTYPE_INT32, 2, NULL, rows, 8),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_append(s, "g", NPK_DTYPE_INT32, 2, shape, NULL, 8),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_append(s, "missing", NPK_DTYPE_INT32, 2, shape, rows, 8),
                 NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_append(s, ".", NPK_DTYPE_INT32, 2, shape, rows, 8),
                 NPK_STATUS_INVALID_NAME);
    CHECK_OK(npk_store_info(s, "g", &info));
    CHECK(info.shape[0] == 5);
    CHECK_OK(npk_store_close(s));
}

static void test_delete_views_compact(void) {
    char dir[4096];
    npk_store *s;
    npk_view *v = NULL, *v2 = NULL, *sentinel = (npk_view *)&v;
    npk_view_layout lay, untouched;
    npk_array_info info;
    int64_t del[3] = {1, -2, 1}; /* rows 1 and 4 of 6; repeats allowed */
    int32_t back[4 * 2];
    const int32_t *data;
    uint64_t i;

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "g", 6, 2);

    /* A view taken before the deletion has no row map. */
    CHECK_OK(npk_store_view(s, "g", 0, &v2));
    CHECK_OK(npk_view_info(v2, &lay));
    CHECK(lay.row_map == NULL && lay.rows == 6);

    CHECK_OK(npk_store_delete_rows(s, "g", del, 3));
    CHECK_OK(npk_store_delete_rows(s, "g", NULL, 0));
    CHECK_OK(npk_store_info(s, "g", &info));
    CHECK(info.shape[0] == 4 && info.physical_rows == 6);
    CHECK_OK(npk_store_load(s, "g", back, sizeof back));
    CHECK(back[0] == 0 && back[2] == 200 && back[4] == 300 && back[6] == 500);

    CHECK_OK(npk_store_view(s, "g", 0, &v));
    memset(&lay, 0, sizeof lay);
    CHECK_OK(npk_view_info(v, &lay));
    CHECK(lay.dtype == NPK_DTYPE_INT32);
    CHECK(lay.ndim == 2 && lay.shape[0] == 6 && lay.shape[1] == 2);
    CHECK(lay.nbytes == 6 * 2 * sizeof(int32_t));
    CHECK(lay.rows == 4);
    CHECK(lay.data != NULL);
    CHECK(lay.writable_data == NULL);
    CHECK(lay.row_map != NULL);
    if (lay.row_map != NULL && lay.data != NULL) {
        static const uint64_t want[4] = {0, 2, 3, 5};
        data = (const int32_t *)lay.data;
        for (i = 0; i < 4; i++) {
            CHECK(lay.row_map[i] == want[i]);
            /* The row map leads from logical rows to their physical bytes. */
            CHECK(data[lay.row_map[i] * 2] == back[i * 2]);
        }
    }
    CHECK_OK(npk_view_flush(v)); /* nothing to do for a read-only view */

    /* Errors of delete. */
    del[0] = 4;
    CHECK_STATUS(npk_store_delete_rows(s, "g", del, 1), NPK_STATUS_INDEX_OUT_OF_RANGE);
    CHECK_STATUS(npk_store_delete_rows(s, "g", NULL, 1), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_delete_rows(s, "missing", del, 1), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_delete_rows(s, "a/b", del, 1), NPK_STATUS_INVALID_NAME);

    /* Errors of view. */
    memset(&untouched, 0x5A, sizeof untouched);
    lay = untouched;
    CHECK_STATUS(npk_view_info(NULL, &lay), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_view_info(v, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_view_flush(NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK(memcmp(&lay, &untouched, sizeof lay) == 0);
    {
        npk_view *out = sentinel;
        CHECK_STATUS(npk_store_view(s, "g", 2, &out), NPK_STATUS_INVALID_ARGUMENT);
        CHECK_STATUS(npk_store_view(s, "missing", 0, &out), NPK_STATUS_NOT_FOUND);
        CHECK_STATUS(npk_store_view(s, "..", 0, &out), NPK_STATUS_INVALID_NAME);
        CHECK_STATUS(npk_store_view(s, NULL, 0, &out), NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_store_view(s, "g", 0, NULL), NPK_STATUS_NULL_ARGUMENT);
        CHECK(out == sentinel);
    }
    /* A view is not a store, and a store is not a view. */
    CHECK_STATUS(npk_store_sync((const npk_store *)v), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_view_info((const npk_view *)s, &lay), NPK_STATUS_INVALID_ARGUMENT);
    npk_view_free((npk_view *)s); /* ignored: not a view */

    /* Compact: the rows go, new views have no row map, old views keep their bytes. */
    CHECK_OK(npk_store_compact(s, "g"));
    CHECK_OK(npk_store_compact(s, "g")); /* nothing deleted any more */
    CHECK_OK(npk_store_info(s, "g", &info));
    CHECK(info.shape[0] == 4 && info.physical_rows == 4);
    CHECK_STATUS(npk_store_compact(s, "missing"), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_compact(s, ""), NPK_STATUS_INVALID_NAME);
    CHECK_STATUS(npk_store_compact(s, NULL), NPK_STATUS_NULL_ARGUMENT);
    {
        npk_view *v3 = NULL;
        npk_view_layout l3;
        CHECK_OK(npk_store_view(s, "g", 0, &v3));
        CHECK_OK(npk_view_info(v3, &l3));
        CHECK(l3.row_map == NULL && l3.rows == 4 && l3.shape[0] == 4);
        CHECK(l3.data != NULL && memcmp(l3.data, back, sizeof back) == 0);
        npk_view_free(v3);
    }
    CHECK_OK(npk_view_info(v, &lay));
    CHECK(lay.rows == 4 && ((const int32_t *)lay.data)[2] == 100);

    /* Every row deleted: no row map, no rows. */
    {
        int64_t all[4] = {0, 1, 2, 3};
        npk_view *v4 = NULL;
        npk_view_layout l4;
        CHECK_OK(npk_store_delete_rows(s, "g", all, 4));
        CHECK_OK(npk_store_view(s, "g", 0, &v4));
        CHECK_OK(npk_view_info(v4, &l4));
        CHECK(l4.rows == 0 && l4.row_map == NULL && l4.shape[0] == 4 && l4.data != NULL);
        npk_view_free(v4);
    }

    /* The store can close first; views stay valid. */
    CHECK_OK(npk_store_close(s));
    CHECK_OK(npk_view_info(v2, &lay));
    CHECK(lay.rows == 6 && ((const int32_t *)lay.data)[11] == 501);
    npk_view_free(v);
    npk_view_free(v2);
    npk_view_free(v); /* double free: ignored */
    npk_view_free(NULL);
    CHECK_STATUS(npk_view_info(v, &lay), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_view_flush(v), NPK_STATUS_INVALID_ARGUMENT);
}

static void test_writable_view(void) {
    char dir[4096], path[4200];
    npk_store *s, *ro = NULL;
    npk_view *v = NULL, *e = NULL;
    npk_view_layout lay;
    int32_t back[3 * 2];
    uint64_t empty[2] = {0, 2};

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "g", 3, 2);

    CHECK_OK(npk_store_view(s, "g", NPK_VIEW_WRITABLE, &v));
    CHECK_OK(npk_view_info(v, &lay));
    CHECK(lay.writable_data != NULL && lay.writable_data == lay.data);
    CHECK(lay.nbytes == sizeof back);
    if (lay.writable_data != NULL) {
        int32_t *w = (int32_t *)lay.writable_data;
        w[0] = 42;
        w[5] = -42;
    }
    CHECK_OK(npk_view_flush(v));
    npk_view_free(v);
    CHECK_OK(npk_store_load(s, "g", back, sizeof back));
    CHECK(back[0] == 42 && back[5] == -42 && back[2] == 100);

    /* An empty array: no addresses. */
    CHECK_OK(npk_store_save(s, "e", NPK_DTYPE_FLOAT64, 2, empty, NULL, 0));
    CHECK_OK(npk_store_view(s, "e", NPK_VIEW_WRITABLE, &e));
    CHECK_OK(npk_view_info(e, &lay));
    CHECK(lay.nbytes == 0 && lay.data == NULL && lay.writable_data == NULL);
    CHECK(lay.rows == 0 && lay.row_map == NULL && lay.ndim == 2 && lay.shape[1] == 2);
    CHECK_OK(npk_view_flush(e));
    npk_view_free(e);
    CHECK_OK(npk_store_close(s));

    /* A read-only store gives no writable view. */
    snprintf(path, sizeof path, "%s/s", dir);
    CHECK_OK(npk_store_open(path, NPK_OPEN_READ_ONLY, &ro));
    v = NULL;
    CHECK_STATUS(npk_store_view(ro, "g", NPK_VIEW_WRITABLE, &v), NPK_STATUS_READ_ONLY);
    CHECK(v == NULL);
    CHECK_OK(npk_store_view(ro, "g", 0, &v));
    CHECK_OK(npk_view_info(v, &lay));
    CHECK(lay.writable_data == NULL && ((const int32_t *)lay.data)[0] == 42);
    npk_view_free(v);
    CHECK_OK(npk_store_close(ro));
}

static void test_drop_clone_rename_reset(void) {
    char dir[4096];
    npk_store *s;
    bool has = false;
    npk_array_info info;
    int64_t del[1] = {0};
    int32_t back[2 * 2];

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "a", 3, 2);
    save_grid(s, "b", 1, 1);

    CHECK_OK(npk_store_delete_rows(s, "a", del, 1));
    CHECK_OK(npk_store_clone(s, "a", "c"));
    CHECK_OK(npk_store_info(s, "c", &info));
    CHECK(info.shape[0] == 2 && info.physical_rows == 2);
    CHECK_OK(npk_store_load(s, "c", back, sizeof back));
    CHECK(back[0] == 100 && back[3] == 201);
    CHECK_STATUS(npk_store_clone(s, "a", "b"), NPK_STATUS_ALREADY_EXISTS);
    CHECK_STATUS(npk_store_clone(s, "missing", "d"), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_clone(s, "a", "x/y"), NPK_STATUS_INVALID_NAME);
    CHECK_STATUS(npk_store_clone(s, "a", ".."), NPK_STATUS_INVALID_NAME);
    CHECK_STATUS(npk_store_clone(s, NULL, "d"), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_clone(s, "a", NULL), NPK_STATUS_NULL_ARGUMENT);

    CHECK_OK(npk_store_rename(s, "c", "d"));
    CHECK_OK(npk_store_has(s, "c", &has));
    CHECK(!has);
    CHECK_OK(npk_store_has(s, "d", &has));
    CHECK(has);
    CHECK_OK(npk_store_rename(s, "d", "d"));
    CHECK_STATUS(npk_store_rename(s, "d", "a"), NPK_STATUS_ALREADY_EXISTS);
    CHECK_STATUS(npk_store_rename(s, "missing", "e"), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_rename(s, "d", "../e"), NPK_STATUS_INVALID_NAME);
    CHECK_STATUS(npk_store_rename(s, NULL, "e"), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_rename(s, "d", NULL), NPK_STATUS_NULL_ARGUMENT);
    /* A renamed array keeps its deletions. */
    CHECK_OK(npk_store_rename(s, "a", "a2"));
    CHECK_OK(npk_store_info(s, "a2", &info));
    CHECK(info.shape[0] == 2 && info.physical_rows == 3);

    CHECK_OK(npk_store_drop(s, "b"));
    CHECK_OK(npk_store_has(s, "b", &has));
    CHECK(!has);
    CHECK_STATUS(npk_store_drop(s, "b"), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_drop(s, "a/b"), NPK_STATUS_INVALID_NAME);
    CHECK_STATUS(npk_store_drop(s, NULL), NPK_STATUS_NULL_ARGUMENT);

    CHECK_OK(npk_store_reset(s));
    {
        npk_names *names = NULL;
        CHECK_OK(npk_store_list(s, &names));
        CHECK(npk_names_count(names) == 0);
        CHECK(npk_names_get(names, 0) == NULL);
        npk_names_free(names);
    }
    CHECK_OK(npk_store_sync(s));
    CHECK_OK(npk_store_close(s));
}

static void test_read_only(void) {
    char dir[4096], path[4200];
    npk_store *s, *ro = NULL;
    int32_t row[2] = {1, 2}, back[2 * 2];
    uint64_t shape[2] = {1, 2};
    int64_t idx[1] = {0};
    bool flag = false;
    npk_names *names = NULL;

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "g", 2, 2);
    CHECK_OK(npk_store_close(s));

    snprintf(path, sizeof path, "%s/s", dir);
    CHECK_OK(npk_store_open(path, NPK_OPEN_READ_ONLY, &ro));
    CHECK_OK(npk_store_is_read_only(ro, &flag));
    CHECK(flag);
    CHECK_STATUS(npk_store_save(ro, "h", NPK_DTYPE_INT32, 2, shape, row, sizeof row),
                 NPK_STATUS_READ_ONLY);
    CHECK_STATUS(npk_store_append(ro, "g", NPK_DTYPE_INT32, 2, shape, row, sizeof row),
                 NPK_STATUS_READ_ONLY);
    CHECK_STATUS(npk_store_replace_rows(ro, "g", NPK_DTYPE_INT32, idx, 1, row, sizeof row),
                 NPK_STATUS_READ_ONLY);
    CHECK_STATUS(npk_store_replace_range(ro, "g", NPK_DTYPE_INT32, 0, 1, row, sizeof row),
                 NPK_STATUS_READ_ONLY);
    CHECK_STATUS(npk_store_delete_rows(ro, "g", idx, 1), NPK_STATUS_READ_ONLY);
    CHECK_STATUS(npk_store_drop(ro, "g"), NPK_STATUS_READ_ONLY);
    CHECK_STATUS(npk_store_compact(ro, "g"), NPK_STATUS_READ_ONLY);
    CHECK_STATUS(npk_store_clone(ro, "g", "h"), NPK_STATUS_READ_ONLY);
    CHECK_STATUS(npk_store_rename(ro, "g", "h"), NPK_STATUS_READ_ONLY);
    CHECK_STATUS(npk_store_reset(ro), NPK_STATUS_READ_ONLY);
    /* Reads work. */
    CHECK_OK(npk_store_load(ro, "g", back, sizeof back));
    CHECK(back[3] == 101);
    CHECK_OK(npk_store_list(ro, &names));
    CHECK(npk_names_count(names) == 1);
    npk_names_free(names);
    CHECK_OK(npk_store_sync(ro));
    CHECK_OK(npk_store_refresh(ro));
    CHECK_OK(npk_store_close(ro));
}

static void test_list(void) {
    char dir[4096];
    npk_store *s;
    npk_names *names = NULL, *sentinel = (npk_names *)&names, *out = sentinel;

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "zeta", 1, 1);
    save_grid(s, "alpha", 1, 1);
    save_grid(s, "mid", 1, 1);

    CHECK_OK(npk_store_list(s, &names));
    CHECK_STATUS(npk_store_list(s, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK(out == sentinel);
    CHECK_OK(npk_store_close(s)); /* the list does not need the store */
    CHECK(npk_names_count(names) == 3);
    if (npk_names_count(names) == 3) {
        CHECK_STR(npk_names_get(names, 0), "alpha");
        CHECK_STR(npk_names_get(names, 1), "mid");
        CHECK_STR(npk_names_get(names, 2), "zeta");
    }
    CHECK(npk_names_get(names, 3) == NULL);
    CHECK(npk_names_get(names, (size_t)-1) == NULL);
    CHECK(npk_names_count(NULL) == 0);
    CHECK(npk_names_get(NULL, 0) == NULL);
    CHECK(npk_names_count(sentinel) == 0);
    npk_names_free(names);
    npk_names_free(names); /* double free: ignored */
    npk_names_free(NULL);
    CHECK(npk_names_count(names) == 0);
    CHECK(npk_names_get(names, 0) == NULL);
}

static void test_stream(void) {
    char dir[4096];
    npk_store *s;
    npk_stream *st = NULL, *sentinel = (npk_stream *)&st, *out = sentinel;
    int32_t buf[4 * 2];
    uint64_t rows = 99, total = 0, calls = 0;
    int64_t del[1] = {2};
    int32_t expect_first = 0;
    int ok_order = 1;

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "g", 10, 2);
    CHECK_OK(npk_store_delete_rows(s, "g", del, 1)); /* 9 live rows */

    CHECK_STATUS(npk_store_stream(s, "g", 0, &out), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_stream(s, "missing", 4, &out), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_stream(s, "a/b", 4, &out), NPK_STATUS_INVALID_NAME);
    CHECK_STATUS(npk_store_stream(s, NULL, 4, &out), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_stream(s, "g", 4, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK(out == sentinel);

    CHECK_OK(npk_store_stream(s, "g", 4, &st));
    CHECK_OK(npk_store_close(s)); /* the stream does not need the store handle */
    CHECK_STATUS(npk_stream_next(st, buf, sizeof buf - 1, &rows), NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_stream_next(st, NULL, sizeof buf, &rows), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_stream_next(st, buf, sizeof buf, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_stream_next(NULL, buf, sizeof buf, &rows), NPK_STATUS_NULL_ARGUMENT);
    CHECK(rows == 99);
    for (;;) {
        uint64_t i;
        npk_status status = npk_stream_next(st, buf, sizeof buf, &rows);
        CHECK_STATUS(status, NPK_STATUS_OK);
        if (status != NPK_STATUS_OK || rows == 0 || ++calls > 10) {
            break;
        }
        for (i = 0; i < rows; i++) {
            int32_t want = expect_first == 200 ? 300 : expect_first;
            if (buf[i * 2] != want) {
                ok_order = 0;
            }
            expect_first = want + 100;
        }
        CHECK(rows == (calls < 3 ? 4u : 1u));
        total += rows;
    }
    CHECK(calls == 3);
    CHECK(total == 9);
    CHECK(ok_order);
    CHECK_OK(npk_stream_next(st, buf, sizeof buf, &rows));
    CHECK(rows == 0); /* stays at the end */
    npk_stream_free(st);
    npk_stream_free(st); /* double free: ignored */
    npk_stream_free(NULL);
    CHECK_STATUS(npk_stream_next(st, buf, sizeof buf, &rows), NPK_STATUS_INVALID_ARGUMENT);
}

static void *thread_message(void *arg) {
    const char **out = (const char **)arg;
    /* No call yet on this thread: empty, whatever the other thread did. */
    out[0] = npk_last_error_message()[0] == '\0' ? "empty" : "not empty";
    return NULL;
}

static void test_last_error(void) {
    char dir[4096];
    npk_store *s;
    bool has;
    const char *msg;
    const char *seen[1] = {NULL};
    pthread_t t;

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    CHECK_STR(npk_last_error_message(), "");

    CHECK_STATUS(npk_store_has(s, "a/b", &has), NPK_STATUS_INVALID_NAME);
    msg = npk_last_error_message();
    CHECK(strstr(msg, "a/b") != NULL);
    /* Functions that cannot fail leave the message alone. */
    CHECK(npk_status_name(NPK_STATUS_INVALID_NAME) != NULL);
    CHECK(npk_version() != NULL);
    CHECK(npk_dtype_size(NPK_DTYPE_INT8) == 1);
    CHECK(npk_dtype_name(NPK_DTYPE_INT8) != NULL);
    CHECK(npk_names_count(NULL) == 0);
    npk_view_free(NULL);
    CHECK(strstr(npk_last_error_message(), "a/b") != NULL);

    /* The message is per thread. */
    CHECK(pthread_create(&t, NULL, thread_message, (void *)seen) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(seen[0] != NULL && strcmp(seen[0], "empty") == 0);
    CHECK(strstr(npk_last_error_message(), "a/b") != NULL);

    /* A successful call clears it. */
    CHECK_OK(npk_store_has(s, "ok", &has));
    CHECK_STR(npk_last_error_message(), "");

    CHECK_STATUS(npk_store_load(s, "nothing", NULL, 0), NPK_STATUS_NOT_FOUND);
    CHECK(strstr(npk_last_error_message(), "nothing") != NULL);
    CHECK_OK(npk_store_close(s));
    CHECK_STR(npk_last_error_message(), "");
}

struct worker {
    const npk_store *store;
    int id;
    int errors;
};

static void *worker_main(void *arg) {
    struct worker *w = (struct worker *)arg;
    char name[32];
    uint64_t shape[2] = {1, 2};
    int32_t row[2];
    int i;
    snprintf(name, sizeof name, "w%d", w->id);
    for (i = 0; i < 50; i++) {
        int64_t idx[1] = {-1};
        int32_t back[2];
        bool has = false;
        row[0] = w->id;
        row[1] = i;
        if (npk_store_append(w->store, name, NPK_DTYPE_INT32, 2, shape, row, sizeof row) != 0) {
            w->errors++;
        }
        if (npk_store_read_rows(w->store, name, idx, 1, back, sizeof back) != 0 ||
            back[0] != w->id || back[1] != i) {
            w->errors++;
        }
        if (npk_store_has(w->store, "shared", &has) != 0 || !has) {
            w->errors++;
        }
        if (npk_last_error_message()[0] != '\0') {
            w->errors++;
        }
    }
    return NULL;
}

static void test_threads(void) {
    char dir[4096];
    npk_store *s;
    struct worker w[4];
    pthread_t t[4];
    int i;
    npk_array_info info;

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "shared", 2, 2);
    for (i = 0; i < 4; i++) {
        char name[32];
        uint64_t shape[2] = {0, 2};
        snprintf(name, sizeof name, "w%d", i);
        CHECK_OK(npk_store_save(s, name, NPK_DTYPE_INT32, 2, shape, NULL, 0));
        w[i].store = s;
        w[i].id = i;
        w[i].errors = 0;
    }
    for (i = 0; i < 4; i++) {
        CHECK(pthread_create(&t[i], NULL, worker_main, &w[i]) == 0);
    }
    for (i = 0; i < 4; i++) {
        char name[32];
        CHECK(pthread_join(t[i], NULL) == 0);
        CHECK(w[i].errors == 0);
        snprintf(name, sizeof name, "w%d", i);
        CHECK_OK(npk_store_info(s, name, &info));
        CHECK(info.shape[0] == 50);
    }
    CHECK_OK(npk_store_close(s));
}

static void test_two_handles(void) {
    char dir[4096], path[4200];
    npk_store *a, *b = NULL;
    bool has = false;

    fresh_dir(dir, sizeof dir);
    a = new_store(dir, "s");
    snprintf(path, sizeof path, "%s/s", dir);
    CHECK_OK(npk_store_open(path, 0, &b));
    save_grid(a, "x", 2, 2);
    CHECK_OK(npk_store_refresh(b));
    CHECK_OK(npk_store_has(b, "x", &has));
    CHECK(has);
    CHECK_OK(npk_store_sync(a));
    CHECK_OK(npk_store_drop(b, "x"));
    CHECK_OK(npk_store_has(a, "x", &has));
    CHECK(!has);
    CHECK_OK(npk_store_close(a));
    CHECK_OK(npk_store_close(b));
}

int main(int argc, char **argv) {
    base_dir = argc > 1 ? argv[1] : getenv("TMPDIR");
    if (base_dir == NULL) {
        base_dir = "/tmp";
    }
    test_version();
    test_status_names();
    test_dtypes();
    test_open_and_close();
    test_null_store();
    test_save_load_info();
    test_read_rows_and_range();
    test_replace();
    test_append();
    test_delete_views_compact();
    test_writable_view();
    test_drop_clone_rename_reset();
    test_read_only();
    test_list();
    test_stream();
    test_last_error();
    test_threads();
    test_two_handles();
    vector_tests();
    package_tests(); /* packages (.npkg) */
    /* --- .npy interop --- */
    npy_tests();
    /* --- end --- */
    check_tests(); /* check (cli branch) */
    compression_tests(); /* compressed arrays */
    safetensors_tests();
    hostile_link_tests();
    hostile_log_tests();
    hostile_tests();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
