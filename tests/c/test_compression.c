/*
 * C tests of compressed arrays: npk_store_save_with and npk_store_compression, the
 * ordinary store functions on a compressed array, and their error paths.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

/* 20000 rows x 4 int64, row r = [r, 2r, r / 7, -r]: compresses well, several chunks. */
#define ZROWS 20000
#define ZCOLS 4

static int64_t *z_rows(uint64_t first, uint64_t n) {
    int64_t *d = (int64_t *)malloc((size_t)(n * ZCOLS) * sizeof(int64_t) + 1);
    uint64_t r;
    for (r = 0; r < n; r++) {
        int64_t v = (int64_t)(first + r);
        d[r * ZCOLS + 0] = v;
        d[r * ZCOLS + 1] = 2 * v;
        d[r * ZCOLS + 2] = v / 7;
        d[r * ZCOLS + 3] = -v;
    }
    return d;
}

static void test_save_with_and_info(void) {
    char dir[4096], file[4200];
    npk_store *s;
    npk_save_options o;
    npk_compression_info ci;
    npk_array_info info;
    uint64_t shape[2] = {ZROWS, ZCOLS};
    size_t len = (size_t)ZROWS * ZCOLS * sizeof(int64_t);
    int64_t *d = z_rows(0, ZROWS);
    int64_t *back = (int64_t *)malloc(len);
    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "z");

    /* A zero-initialised struct is a plain save. */
    memset(&o, 0, sizeof o);
    CHECK_OK(npk_store_save_with(s, "plain", NPK_DTYPE_INT64, 2, shape, d, len, &o));
    CHECK_OK(npk_store_compression(s, "plain", &ci));
    CHECK(ci.compression == NPK_COMPRESSION_NONE && ci.level == 0 && ci.chunks == 0 && ci.stored_bytes == 0);
    snprintf(file, sizeof file, "%s/z/data_plain.npkd", dir);
    CHECK(exists(file));
    /* NULL options too. */
    CHECK_OK(npk_store_save_with(s, "plain2", NPK_DTYPE_INT64, 2, shape, d, len, NULL));
    CHECK_OK(npk_store_compression(s, "plain2", &ci));
    CHECK(ci.compression == NPK_COMPRESSION_NONE);

    /* zstd, default level (0 means 3). */
    o.compression = NPK_COMPRESSION_ZSTD;
    o.level = 0;
    CHECK_OK(npk_store_save_with(s, "z", NPK_DTYPE_INT64, 2, shape, d, len, &o));
    snprintf(file, sizeof file, "%s/z/data_z.npkz", dir);
    CHECK(exists(file));
    snprintf(file, sizeof file, "%s/z/data_z.npkd", dir);
    CHECK(!exists(file));
    CHECK_OK(npk_store_compression(s, "z", &ci));
    CHECK(ci.compression == NPK_COMPRESSION_ZSTD && ci.level == 3);
    CHECK(ci.raw_bytes == len);
    CHECK(ci.chunks == (ZROWS + ci.rows_per_chunk - 1) / ci.rows_per_chunk && ci.chunks > 1);
    CHECK(ci.stored_bytes > 0 && ci.stored_bytes < len / 4);
    CHECK_OK(npk_store_info(s, "z", &info));
    CHECK(info.dtype == NPK_DTYPE_INT64 && info.ndim == 2 && info.shape[0] == ZROWS && info.shape[1] == ZCOLS);
    CHECK_OK(npk_store_load(s, "z", back, len));
    CHECK(memcmp(back, d, len) == 0);

    /* A chosen level. */
    o.level = 12;
    CHECK_OK(npk_store_save_with(s, "z12", NPK_DTYPE_INT64, 2, shape, d, len, &o));
    CHECK_OK(npk_store_compression(s, "z12", &ci));
    CHECK(ci.level == 12);

    /* Errors. */
    o.level = 23;
    CHECK_STATUS(npk_store_save_with(s, "bad", NPK_DTYPE_INT64, 2, shape, d, len, &o), NPK_STATUS_INVALID_ARGUMENT);
    o.level = 3;
    o.compression = 7;
    CHECK_STATUS(npk_store_save_with(s, "bad", NPK_DTYPE_INT64, 2, shape, d, len, &o), NPK_STATUS_INVALID_ARGUMENT);
    o.compression = NPK_COMPRESSION_ZSTD;
    CHECK_STATUS(npk_store_save_with(s, "bad", NPK_DTYPE_INT64, 2, shape, d, len - 1, &o), NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_store_save_with(s, "bad", 99, 2, shape, d, len, &o), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_store_save_with(NULL, "bad", NPK_DTYPE_INT64, 2, shape, d, len, &o), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_save_with(s, NULL, NPK_DTYPE_INT64, 2, shape, d, len, &o), NPK_STATUS_NULL_ARGUMENT);
    {
        uint64_t empty_rows[2] = {5, 0};
        CHECK_STATUS(npk_store_save_with(s, "bad", NPK_DTYPE_INT64, 2, empty_rows, NULL, 0, &o), NPK_STATUS_SHAPE_MISMATCH);
    }
    CHECK_STATUS(npk_store_compression(s, "bad", &ci), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_store_compression(s, "z", NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_compression(NULL, "z", &ci), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_store_compression(s, "a/b", &ci), NPK_STATUS_INVALID_NAME);

    CHECK_OK(npk_store_close(s));
    free(d);
    free(back);
}

static void test_operations_on_compressed(void) {
    char dir[4096];
    npk_store *s;
    npk_save_options o;
    npk_view *v = NULL;
    npk_view_layout lay;
    npk_stream *st = NULL;
    uint64_t shape[2] = {ZROWS, ZCOLS};
    size_t row = ZCOLS * sizeof(int64_t);
    int64_t *d = z_rows(0, ZROWS);
    int64_t out[8 * ZCOLS];
    int64_t idx[4] = {0, 9999, -1, 15000};
    int64_t *more = z_rows(ZROWS, 100);
    int64_t repl[ZCOLS] = {-7, -7, -7, -7};
    int64_t del[2] = {1, 2};
    int64_t *batch = (int64_t *)malloc(5000 * row);
    uint64_t got = 0, total = 0;
    int ordered = 1;
    uint64_t app_shape[2] = {100, ZCOLS};
    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "z");
    memset(&o, 0, sizeof o);
    o.compression = NPK_COMPRESSION_ZSTD;
    o.level = 1;
    CHECK_OK(npk_store_save_with(s, "z", NPK_DTYPE_INT64, 2, shape, d, ZROWS * row, &o));

    CHECK_OK(npk_store_read_rows(s, "z", idx, 4, out, 4 * row));
    CHECK(out[0] == 0 && out[ZCOLS] == 9999 && out[2 * ZCOLS] == ZROWS - 1 && out[3 * ZCOLS] == 15000 && out[3 * ZCOLS + 3] == -15000);
    CHECK_OK(npk_store_read_range(s, "z", 8190, 8198, out, 8 * row));
    CHECK(out[0] == 8190 && out[7 * ZCOLS] == 8197);

    CHECK_OK(npk_store_append(s, "z", NPK_DTYPE_INT64, 2, app_shape, more, 100 * row));
    CHECK_OK(npk_store_replace_rows(s, "z", NPK_DTYPE_INT64, &idx[1], 1, repl, row));
    CHECK_OK(npk_store_delete_rows(s, "z", del, 2));
    /* Logical rows now: 0, 3, 4, ..., 9998, -7 (was 9999), 10000, ..., ZROWS + 99. */
    CHECK_OK(npk_store_read_range(s, "z", 0, 2, out, 2 * row));
    CHECK(out[0] == 0 && out[ZCOLS] == 3);
    {
        int64_t where = 9999 - 2;
        CHECK_OK(npk_store_read_rows(s, "z", &where, 1, out, row));
        CHECK(out[0] == -7);
        where = -1;
        CHECK_OK(npk_store_read_rows(s, "z", &where, 1, out, row));
        CHECK(out[0] == ZROWS + 99);
    }

    /* Streams decompress chunk by chunk. */
    CHECK_OK(npk_store_stream(s, "z", 5000, &st));
    for (;;) {
        CHECK_OK(npk_stream_next(st, batch, 5000 * row, &got));
        if (got == 0) {
            break;
        }
        if (total == 0 && (batch[0] != 0 || batch[ZCOLS] != 3)) {
            ordered = 0;
        }
        total += got;
    }
    CHECK(ordered);
    CHECK(total == ZROWS + 100 - 2);
    npk_stream_free(st);

    /* A read-only view holds the decompressed rows; a writable one is refused. */
    CHECK_OK(npk_store_view(s, "z", 0, &v));
    CHECK_OK(npk_view_info(v, &lay));
    CHECK(lay.nbytes == (ZROWS + 100) * row && lay.writable_data == NULL && lay.rows == ZROWS + 100 - 2);
    CHECK(lay.row_map != NULL && lay.row_map[1] == 3);
    CHECK(((const int64_t *)lay.data)[9999 * ZCOLS] == -7);
    npk_view_free(v);
    v = NULL;
    CHECK_STATUS(npk_store_view(s, "z", NPK_VIEW_WRITABLE, &v), NPK_STATUS_UNSUPPORTED);
    CHECK(v == NULL);

    /* Compaction keeps it compressed. */
    CHECK_OK(npk_store_compact(s, "z"));
    {
        npk_compression_info ci;
        CHECK_OK(npk_store_compression(s, "z", &ci));
        CHECK(ci.compression == NPK_COMPRESSION_ZSTD && ci.level == 1 && ci.raw_bytes == (ZROWS + 98) * row);
    }
    CHECK_OK(npk_store_close(s));
    free(d);
    free(more);
    free(batch);
}

void compression_tests(void) {
    test_save_with_and_info();
    test_operations_on_compressed();
}
