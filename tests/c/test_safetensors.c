/*
 * C tests of safetensors interop: npk_safetensors_read_header and its accessors,
 * npk_safetensors_import (all, selected, unsupported dtype, bad header, cancelled) and
 * npk_safetensors_export (metadata, selection, complex128 refused, overwrite), with NULL
 * arguments.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

/* Writes `json` (padded with spaces to 8 bytes) after its length, then `data`. */
static void write_st(const char *path, const char *json, const void *data, size_t data_len) {
    size_t n = strlen(json), padded = (n + 7) / 8 * 8, i;
    unsigned char len[8];
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    for (i = 0; i < 8; i++) {
        len[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    }
    fwrite(len, 1, 8, f);
    fwrite(json, 1, n, f);
    for (i = n; i < padded; i++) {
        fputc(' ', f);
    }
    if (data_len > 0) {
        fwrite(data, 1, data_len, f);
    }
    fclose(f);
}

/* A progress callback that cancels on its second call; `user_data` counts the calls. */
static bool cancel_on_second(uint64_t done, uint64_t total, void *user_data) {
    int *calls = (int *)user_data;
    (void)done;
    (void)total;
    return ++*calls < 2;
}

static void test_header_and_import(void) {
    char dir[4096], file[4200], bad[4200];
    npk_store *s;
    npk_safetensors_header *h = NULL;
    npk_safetensors_summary sum;
    npk_safetensors_tensor t;
    npk_names *names = NULL;
    const char *key = NULL, *value = NULL;
    const char *pick[1] = {"b"};
    int16_t a[6] = {1, 2, 3, 4, 5, 6};
    unsigned char data[16];
    int16_t back[6];
    uint8_t b[2];
    int calls = 0;

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    snprintf(file, sizeof file, "%s/m.safetensors", dir);
    memcpy(data, a, 12);
    data[12] = 7;
    data[13] = 9;
    data[14] = 0;
    data[15] = 0;
    write_st(file,
             "{\"__metadata__\":{\"format\":\"pt\"},"
             "\"a\":{\"dtype\":\"I16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
             "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[12,14]},"
             "\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[14,16]}}",
             data, sizeof data);

    CHECK_OK(npk_safetensors_read_header(file, &h));
    CHECK_OK(npk_safetensors_header_summary(h, &sum));
    CHECK(sum.tensor_count == 3 && sum.metadata_count == 1);
    CHECK(sum.data_offset == 8 + sum.header_len && sum.header_len % 8 == 0);
    CHECK(sum.file_size == sum.data_offset + 16);
    CHECK_OK(npk_safetensors_header_get_tensor(h, 0, &t));
    CHECK_STR(t.name, "a");
    CHECK_STR(t.dtype_name, "I16");
    CHECK(t.npk_dtype == NPK_DTYPE_INT16 && t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 3 && t.shape[2] == 0);
    CHECK(t.data_begin == 0 && t.data_end == 12);
    CHECK_OK(npk_safetensors_header_get_tensor(h, 2, &t));
    CHECK_STR(t.dtype_name, "BF16");
    CHECK(t.npk_dtype == NPK_SAFETENSORS_NO_DTYPE);
    CHECK_STATUS(npk_safetensors_header_get_tensor(h, 3, &t), NPK_STATUS_INDEX_OUT_OF_RANGE);
    CHECK_OK(npk_safetensors_header_get_metadata(h, 0, &key, &value));
    CHECK_STR(key, "format");
    CHECK_STR(value, "pt");
    CHECK_STATUS(npk_safetensors_header_get_metadata(h, 1, &key, &value), NPK_STATUS_INDEX_OUT_OF_RANGE);
    CHECK_STATUS(npk_safetensors_header_get_metadata(h, 0, NULL, &value), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_safetensors_header_summary(NULL, &sum), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_safetensors_header_get_tensor(h, 0, NULL), NPK_STATUS_NULL_ARGUMENT);
    npk_safetensors_header_free(h);
    npk_safetensors_header_free(h); /* already freed: ignored */
    npk_safetensors_header_free(NULL);
    CHECK_STATUS(npk_safetensors_header_summary(h, &sum), NPK_STATUS_INVALID_ARGUMENT);

    /* All tensors: BF16 makes it fail as a whole, naming the dtype. */
    CHECK_STATUS(npk_safetensors_import(s, file, NULL, 0, 0, NULL, NULL, &names), NPK_STATUS_UNSUPPORTED);
    CHECK(strstr(npk_last_error_message(), "BF16") != NULL);
    CHECK(names == NULL);
    {
        npk_names *list = NULL;
        CHECK_OK(npk_store_list(s, &list));
        CHECK(npk_names_count(list) == 0);
        npk_names_free(list);
    }
    /* Selected: a cancelled import leaves nothing; then it works. */
    {
        const char *two[2] = {"a", "b"};
        CHECK_STATUS(npk_safetensors_import(s, file, two, 2, 0, cancel_on_second, &calls, &names), NPK_STATUS_CANCELLED);
        CHECK_OK(npk_safetensors_import(s, file, two, 2, 0, NULL, NULL, &names));
        CHECK(npk_names_count(names) == 2);
        CHECK_STR(npk_names_get(names, 0), "a");
        npk_names_free(names);
        names = NULL;
        CHECK_OK(npk_store_load(s, "a", back, sizeof back));
        CHECK(memcmp(back, a, sizeof a) == 0);
        CHECK_OK(npk_store_load(s, "b", b, sizeof b));
        CHECK(b[0] == 7 && b[1] == 9);
        CHECK_STATUS(npk_safetensors_import(s, file, pick, 1, 0, NULL, NULL, &names), NPK_STATUS_ALREADY_EXISTS);
        CHECK_OK(npk_safetensors_import(s, file, pick, 1, NPK_SAFETENSORS_OVERWRITE, NULL, NULL, &names));
        npk_names_free(names);
        names = NULL;
    }
    {
        const char *nope[1] = {"nope"};
        const char *null_entry[1] = {NULL};
        CHECK_STATUS(npk_safetensors_import(s, file, nope, 1, 0, NULL, NULL, &names), NPK_STATUS_NOT_FOUND);
        CHECK_STATUS(npk_safetensors_import(s, file, null_entry, 1, 0, NULL, NULL, &names), NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_safetensors_import(s, file, NULL, 1, 0, NULL, NULL, &names), NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_safetensors_import(s, file, pick, 1, 0, NULL, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_safetensors_import(s, file, pick, 1, 8, NULL, NULL, &names), NPK_STATUS_INVALID_ARGUMENT);
        CHECK_STATUS(npk_safetensors_import(NULL, file, pick, 1, 0, NULL, NULL, &names), NPK_STATUS_NULL_ARGUMENT);
    }

    /* Hostile: offsets past the end of the file, a huge header length. */
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    write_st(bad, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", data, 8);
    CHECK_STATUS(npk_safetensors_read_header(bad, &h), NPK_STATUS_CORRUPT);
    CHECK_STATUS(npk_safetensors_import(s, bad, NULL, 0, 0, NULL, NULL, &names), NPK_STATUS_CORRUPT);
    {
        FILE *f = fopen(bad, "wb");
        unsigned char huge[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        fwrite(huge, 1, 8, f);
        fclose(f);
    }
    CHECK_STATUS(npk_safetensors_read_header(bad, &h), NPK_STATUS_CORRUPT);
    CHECK_STATUS(npk_safetensors_read_header("/nonexistent/x.safetensors", &h), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_safetensors_read_header(NULL, &h), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_safetensors_read_header(file, NULL), NPK_STATUS_NULL_ARGUMENT);
    npk_store_close(s);
}

static void test_export(void) {
    char dir[4096], file[4200];
    npk_store *s, *s2;
    npk_safetensors_header *h = NULL;
    npk_safetensors_summary sum;
    npk_safetensors_tensor t;
    npk_names *names = NULL;
    const char *keys[2] = {"format", "who"};
    const char *values[2] = {"np", "c test"};
    const char *pick[2] = {"grid", "f"};
    const char *key = NULL, *value = NULL;
    uint64_t shape1[1] = {3};
    double f[3] = {0.5, 1.5, 2.5};
    double cplx[2] = {1.0, 2.0};
    int32_t grid[12];
    int64_t del[1] = {1};
    int calls = 0;

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "s");
    save_grid(s, "grid", 4, 3);
    CHECK_OK(npk_store_delete_rows(s, "grid", del, 1));
    CHECK_OK(npk_store_save(s, "f", NPK_DTYPE_FLOAT64, 1, shape1, f, sizeof f));
    shape1[0] = 1;
    CHECK_OK(npk_store_save(s, "z", NPK_DTYPE_COMPLEX128, 1, shape1, cplx, sizeof cplx));
    snprintf(file, sizeof file, "%s/out.safetensors", dir);

    /* complex128 has no safetensors dtype: refused by name, nothing written. */
    CHECK_STATUS(npk_safetensors_export(s, file, NULL, 0, NULL, NULL, 0, 0, NULL, NULL), NPK_STATUS_UNSUPPORTED);
    CHECK(strstr(npk_last_error_message(), "complex128") != NULL);
    CHECK(!exists(file));
    CHECK_STATUS(npk_safetensors_export(s, file, pick, 2, keys, values, 2, 0, cancel_on_second, &calls), NPK_STATUS_CANCELLED);
    CHECK(!exists(file));
    CHECK(count_entries(dir) == 1);
    CHECK_OK(npk_safetensors_export(s, file, pick, 2, keys, values, 2, 0, NULL, NULL));
    CHECK_STATUS(npk_safetensors_export(s, file, pick, 2, NULL, NULL, 0, 0, NULL, NULL), NPK_STATUS_ALREADY_EXISTS);
    CHECK_STATUS(npk_safetensors_export(s, file, pick, 2, keys, NULL, 2, NPK_SAFETENSORS_OVERWRITE, NULL, NULL),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_safetensors_export(NULL, file, NULL, 0, NULL, NULL, 0, 0, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);

    CHECK_OK(npk_safetensors_read_header(file, &h));
    CHECK_OK(npk_safetensors_header_summary(h, &sum));
    CHECK(sum.tensor_count == 2 && sum.metadata_count == 2);
    /* Larger elements first: f (8 bytes), then grid (4 bytes), with deleted rows gone. */
    CHECK_OK(npk_safetensors_header_get_tensor(h, 0, &t));
    CHECK_STR(t.name, "f");
    CHECK_STR(t.dtype_name, "F64");
    CHECK_OK(npk_safetensors_header_get_tensor(h, 1, &t));
    CHECK_STR(t.name, "grid");
    CHECK(t.npk_dtype == NPK_DTYPE_INT32 && t.shape[0] == 3 && t.shape[1] == 3);
    CHECK_OK(npk_safetensors_header_get_metadata(h, 1, &key, &value));
    CHECK_STR(key, "who");
    CHECK_STR(value, "c test");
    npk_safetensors_header_free(h);

    s2 = new_store(dir, "s2");
    CHECK_OK(npk_safetensors_import(s2, file, NULL, 0, 0, NULL, NULL, &names));
    CHECK(npk_names_count(names) == 2);
    npk_names_free(names);
    CHECK_OK(npk_store_load(s2, "grid", grid, 9 * sizeof(int32_t)));
    CHECK(grid[0] == 0 && grid[3] == 200 && grid[8] == 302);
    npk_store_close(s2);
    npk_store_close(s);
}

void safetensors_tests(void) {
    test_header_and_import();
    test_export();
}
