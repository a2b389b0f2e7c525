/*
 * C tests of .npy / .npz interop: npk_npy_info, npk_npy_import, npk_npz_import,
 * npk_npy_export, npk_npy_create_appendable, npk_npy_append, npk_npy_make_appendable
 * and npk_npy_recover, with their error paths, NULL arguments and concurrent appenders;
 * progress callbacks and cancellation of import, export and append_file.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

#include <pthread.h>

/* Records the progress calls of an npy operation and cancels at call `cancel_at`
 * (1-based; 0 = never). */
typedef struct {
    int calls;
    int cancel_at;
    uint64_t first_done;
    uint64_t last_done;
    uint64_t total;
    int bad;
} npy_progress;

static bool on_npy_progress(uint64_t done, uint64_t total, void *user_data) {
    npy_progress *p = (npy_progress *)user_data;
    if (p->calls == 0) {
        p->first_done = done;
    } else if (done < p->last_done || total != p->total) {
        p->bad = 1;
    }
    if (done > total) {
        p->bad = 1;
    }
    p->calls++;
    p->last_done = done;
    p->total = total;
    return p->cancel_at == 0 || p->calls < p->cancel_at;
}

static npy_progress npy_progress_cancelling_at(int cancel_at) {
    npy_progress p;
    memset(&p, 0, sizeof p);
    p.cancel_at = cancel_at;
    return p;
}

/* Writes a .npy file as NumPy does (version 1.0): int32, shape (rows, 3), element
 * (r, c) = r * 10 + c. The header is padded to a multiple of `align` bytes: 64 as NumPy
 * writes today (which leaves room for the shape to grow), 16 as old NumPy versions did
 * (no spare room: such files must be made appendable first). */
static void write_numpy_file(const char *path, int rows, size_t align) {
    char dict[128];
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t len, total, header_len;
    FILE *f;
    int r, c;
    snprintf(dict, sizeof dict, "{'descr': '<i4', 'fortran_order': False, 'shape': (%d, 3), }", rows);
    len = strlen(dict) + 1;
    total = (10 + len + align - 1) / align * align;
    header_len = total - 10;
    pre[8] = (unsigned char)(header_len & 0xff);
    pre[9] = (unsigned char)(header_len >> 8);
    f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fwrite(pre, 1, 10, f);
    fputs(dict, f);
    for (; len < header_len; len++) {
        fputc(' ', f);
    }
    fputc('\n', f);
    for (r = 0; r < rows; r++) {
        for (c = 0; c < 3; c++) {
            int32_t v = r * 10 + c;
            fwrite(&v, sizeof v, 1, f);
        }
    }
    fclose(f);
}

static void append_bytes(const char *path, const void *bytes, size_t len) {
    FILE *f = fopen(path, "ab");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fwrite(bytes, 1, len, f);
    fclose(f);
}

static void test_npy_info_and_import(void) {
    char dir[2048], path[4096], bad[4096];
    npk_store *s;
    npk_npy_file_info info;
    npk_array_info ai;
    int32_t data[12];
    int i;
    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "store");
    snprintf(path, sizeof path, "%s/grid.npy", dir);
    write_numpy_file(path, 4, 64);

    memset(&info, 0xAB, sizeof info);
    CHECK_OK(npk_npy_info(path, &info));
    CHECK(info.dtype == NPK_DTYPE_INT32);
    CHECK(info.ndim == 2 && info.shape[0] == 4 && info.shape[1] == 3 && info.shape[2] == 0);
    CHECK(info.version_major == 1 && info.version_minor == 0);
    CHECK(!info.big_endian && !info.fortran_order && info.appendable);
    CHECK(info.data_offset == 128 && info.header_len == 118);
    CHECK(info.file_size == 128 + 48);

    CHECK_OK(npk_npy_import(s, "grid", path, 0, NULL, NULL));
    CHECK_OK(npk_store_info(s, "grid", &ai));
    CHECK(ai.dtype == NPK_DTYPE_INT32 && ai.ndim == 2 && ai.shape[0] == 4 && ai.shape[1] == 3);
    CHECK_OK(npk_store_load(s, "grid", data, sizeof data));
    for (i = 0; i < 12; i++) {
        CHECK(data[i] == (i / 3) * 10 + i % 3);
    }
    CHECK_STATUS(npk_npy_import(s, "grid", path, 0, NULL, NULL), NPK_STATUS_ALREADY_EXISTS);
    CHECK_OK(npk_npy_import(s, "grid", path, NPK_NPY_OVERWRITE, NULL, NULL));

    /* Errors: NULLs, flags, missing file, not a .npy, bad names, truncation. */
    CHECK_STATUS(npk_npy_info(NULL, &info), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_info(path, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_info("", &info), NPK_STATUS_INVALID_ARGUMENT);
    snprintf(bad, sizeof bad, "%s/missing.npy", dir);
    CHECK_STATUS(npk_npy_info(bad, &info), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_npy_import(NULL, "x", path, 0, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_import(s, NULL, path, 0, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_import(s, "x", NULL, 0, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_import(s, "x", path, 0x100, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_npy_import(s, "a/b", path, 0, NULL, NULL), NPK_STATUS_INVALID_NAME);
    CHECK_STATUS(npk_npy_import(s, "x", bad, 0, NULL, NULL), NPK_STATUS_NOT_FOUND);
    snprintf(bad, sizeof bad, "%s/text.npy", dir);
    append_bytes(bad, "hello, world", 12);
    CHECK_STATUS(npk_npy_info(bad, &info), NPK_STATUS_CORRUPT);
    CHECK(strstr(npk_last_error_message(), "text.npy") != NULL);
    CHECK_STATUS(npk_npy_import(s, "x", bad, 0, NULL, NULL), NPK_STATUS_CORRUPT);
    append_bytes(path, "\x01\x02", 2);
    CHECK_STATUS(npk_npy_import(s, "x", path, 0, NULL, NULL), NPK_STATUS_NEEDS_RECOVERY);
    CHECK_OK(npk_store_close(s));
}

static void test_npy_export_and_npz(void) {
    char dir[2048], path[4096], store2[4096];
    npk_store *s, *t;
    npk_npy_file_info info;
    npk_names *names = NULL;
    npk_array_info ai;
    int64_t del[1] = {1};
    int32_t data[9];
    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "store");
    save_grid(s, "g", 4, 3);
    CHECK_OK(npk_store_delete_rows(s, "g", del, 1));
    snprintf(path, sizeof path, "%s/g.npy", dir);
    CHECK_OK(npk_npy_export(s, "g", path, 0, NULL, NULL));
    CHECK_OK(npk_npy_info(path, &info));
    CHECK(info.ndim == 2 && info.shape[0] == 3 && info.shape[1] == 3);
    CHECK(info.appendable && info.data_offset % 64 == 0);
    CHECK(info.file_size == info.data_offset + 9 * 4);
    CHECK_STATUS(npk_npy_export(s, "g", path, 0, NULL, NULL), NPK_STATUS_ALREADY_EXISTS);
    CHECK_OK(npk_npy_export(s, "g", path, NPK_NPY_OVERWRITE, NULL, NULL));
    CHECK_STATUS(npk_npy_export(s, "nope", path, NPK_NPY_OVERWRITE, NULL, NULL), NPK_STATUS_NOT_FOUND);
    CHECK_STATUS(npk_npy_export(NULL, "g", path, 0, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_export(s, NULL, path, 0, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_export(s, "g", NULL, 0, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_export(s, "g", path, NPK_NPY_SYNC, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT);

    /* The exported file imports back to the live rows. */
    snprintf(store2, sizeof store2, "other");
    t = new_store(dir, store2);
    CHECK_OK(npk_npy_import(t, "back", path, 0, NULL, NULL));
    CHECK_OK(npk_store_load(t, "back", data, sizeof data));
    CHECK(data[0] == 0 && data[3] == 200 && data[8] == 302);

    /* A zip that is not an npz, and a file that is no zip at all. */
    CHECK_STATUS(npk_npz_import(t, path, 0, NULL, NULL, &names), NPK_STATUS_CORRUPT);
    CHECK(names == NULL);
    CHECK_STATUS(npk_npz_import(NULL, path, 0, NULL, NULL, &names), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npz_import(t, NULL, 0, NULL, NULL, &names), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npz_import(t, path, 0, NULL, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npz_import(t, path, 4, NULL, NULL, &names), NPK_STATUS_INVALID_ARGUMENT);
    {
        /* A stored .npz with one member "m.npy": the exported file, zipped by hand. */
        char npz[4096];
        FILE *in = fopen(path, "rb"), *out;
        unsigned char buf[1024];
        size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
        uint32_t crc = 0xFFFFFFFFu;
        size_t i;
        int k;
        unsigned char lh[30] = {'P', 'K', 3, 4, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        unsigned char cd[46] = {'P', 'K', 1, 2, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        unsigned char end[22] = {'P', 'K', 5, 6, 0, 0, 0, 0, 1, 0, 1, 0};
        if (in) {
            fclose(in);
        }
        for (i = 0; i < n; i++) {
            crc ^= buf[i];
            for (k = 0; k < 8; k++) {
                crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
            }
        }
        crc ^= 0xFFFFFFFFu;
#define PUT32(p, v) ((p)[0] = (unsigned char)(v), (p)[1] = (unsigned char)((v) >> 8), \
                     (p)[2] = (unsigned char)((v) >> 16), (p)[3] = (unsigned char)((v) >> 24))
        PUT32(lh + 14, crc);
        PUT32(lh + 18, (uint32_t)n);
        PUT32(lh + 22, (uint32_t)n);
        lh[26] = 5;
        PUT32(cd + 16, crc);
        PUT32(cd + 20, (uint32_t)n);
        PUT32(cd + 24, (uint32_t)n);
        cd[28] = 5;
        PUT32(end + 12, 46u + 5u);
        PUT32(end + 16, (uint32_t)(30 + 5 + n));
        snprintf(npz, sizeof npz, "%s/one.npz", dir);
        out = fopen(npz, "wb");
        fwrite(lh, 1, 30, out);
        fwrite("m.npy", 1, 5, out);
        fwrite(buf, 1, n, out);
        fwrite(cd, 1, 46, out);
        fwrite("m.npy", 1, 5, out);
        fwrite(end, 1, 22, out);
        fclose(out);
        {
            /* Cancelled at the start: no array. Then with progress to the end. */
            npy_progress p = npy_progress_cancelling_at(1);
            CHECK_STATUS(npk_npz_import(t, npz, 0, on_npy_progress, &p, &names), NPK_STATUS_CANCELLED);
            CHECK(p.calls == 1 && p.first_done == 0);
            CHECK_STATUS(npk_store_info(t, "m", &ai), NPK_STATUS_NOT_FOUND);
            p = npy_progress_cancelling_at(0);
            CHECK_OK(npk_npz_import(t, npz, 0, on_npy_progress, &p, &names));
            CHECK(p.calls >= 2 && !p.bad && p.total == 36 && p.last_done == 36);
        }
        CHECK(npk_names_count(names) == 1);
        CHECK(npk_names_get(names, 0) != NULL && strcmp(npk_names_get(names, 0), "m") == 0);
        npk_names_free(names);
        names = NULL;
        CHECK_OK(npk_store_info(t, "m", &ai));
        CHECK(ai.shape[0] == 3 && ai.shape[1] == 3);
        CHECK_STATUS(npk_npz_import(t, npz, 0, NULL, NULL, &names), NPK_STATUS_ALREADY_EXISTS);
        CHECK_OK(npk_npz_import(t, npz, NPK_NPY_OVERWRITE, NULL, NULL, &names));
        npk_names_free(names);
    }
    CHECK_OK(npk_store_close(t));
    CHECK_OK(npk_store_close(s));
}

static void test_npy_append_make_appendable_recover(void) {
    char dir[2048], path[4096], legacy[4096];
    uint64_t row_shape[1] = {3}, rows = 0;
    int32_t block[6] = {1, 2, 3, 4, 5, 6};
    npk_npy_file_info info;
    npk_npy_recovery rec;
    bool rewritten = true;
    long before;
    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a.npy", dir);
    CHECK_OK(npk_npy_create_appendable(path, NPK_DTYPE_INT32, 1, row_shape));
    CHECK_STATUS(npk_npy_create_appendable(path, NPK_DTYPE_INT32, 1, row_shape), NPK_STATUS_ALREADY_EXISTS);
    CHECK_STATUS(npk_npy_create_appendable(NULL, NPK_DTYPE_INT32, 1, row_shape), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_create_appendable(path, NPK_DTYPE_INT32, 1, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_create_appendable(path, 99, 1, row_shape), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_OK(npk_npy_append(path, NPK_DTYPE_INT32, 1, row_shape, block, sizeof block, 0, &rows));
    CHECK(rows == 2);
    CHECK_OK(npk_npy_append(path, NPK_DTYPE_INT32, 1, row_shape, block, 12, NPK_NPY_SYNC, &rows));
    CHECK(rows == 3);
    CHECK_OK(npk_npy_append(path, NPK_DTYPE_INT32, 1, row_shape, NULL, 0, 0, &rows));
    CHECK(rows == 3);
    CHECK_OK(npk_npy_info(path, &info));
    CHECK(info.shape[0] == 3 && info.appendable);
    CHECK((long)info.file_size == file_size(path) && info.file_size == info.data_offset + 36);
    /* Rejections. */
    CHECK_STATUS(npk_npy_append(path, NPK_DTYPE_INT64, 1, row_shape, block, 24, 0, &rows), NPK_STATUS_DTYPE_MISMATCH);
    CHECK_STATUS(npk_npy_append(path, NPK_DTYPE_INT32, 0, NULL, block, 4, 0, &rows), NPK_STATUS_SHAPE_MISMATCH);
    CHECK_STATUS(npk_npy_append(path, NPK_DTYPE_INT32, 1, row_shape, block, 10, 0, &rows), NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_npy_append(path, NPK_DTYPE_INT32, 1, row_shape, NULL, 12, 0, &rows), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_append(path, NPK_DTYPE_INT32, 1, row_shape, block, 12, 0, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_append(NULL, NPK_DTYPE_INT32, 1, row_shape, block, 12, 0, &rows), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_append(path, NPK_DTYPE_INT32, 1, row_shape, block, 12, NPK_NPY_ZERO_FILL, &rows), NPK_STATUS_INVALID_ARGUMENT);
    CHECK(rows == 3);
    {
        char fresh[4096];
        snprintf(fresh, sizeof fresh, "%s/fresh.npy", dir);
        CHECK_STATUS(npk_npy_append(fresh, NPK_DTYPE_INT32, 1, row_shape, block, 12, 0, &rows), NPK_STATUS_NOT_FOUND);
        CHECK_OK(npk_npy_append(fresh, NPK_DTYPE_INT32, 1, row_shape, block, 12, NPK_NPY_CREATE, &rows));
        CHECK(rows == 1);
    }

    /* A NumPy-written file must be made appendable first. */
    snprintf(legacy, sizeof legacy, "%s/legacy.npy", dir);
    write_numpy_file(legacy, 2, 16);
    CHECK_STATUS(npk_npy_append(legacy, NPK_DTYPE_INT32, 1, row_shape, block, 12, 0, &rows), NPK_STATUS_UNSUPPORTED);
    CHECK_OK(npk_npy_make_appendable(legacy, &rewritten));
    CHECK(rewritten);
    CHECK_OK(npk_npy_make_appendable(legacy, &rewritten));
    CHECK(!rewritten);
    CHECK_STATUS(npk_npy_make_appendable(NULL, &rewritten), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_make_appendable(legacy, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_OK(npk_npy_append(legacy, NPK_DTYPE_INT32, 1, row_shape, block, 12, 0, &rows));
    CHECK(rows == 3);

    /* One file appended to another, and onto a new file. */
    {
        char copy[4096];
        snprintf(copy, sizeof copy, "%s/copy.npy", dir);
        CHECK_STATUS(npk_npy_append_file(copy, legacy, 0, NULL, NULL, &rows), NPK_STATUS_NOT_FOUND);
        CHECK_OK(npk_npy_append_file(copy, legacy, NPK_NPY_CREATE, NULL, NULL, &rows));
        CHECK(rows == 3);
        CHECK_OK(npk_npy_append_file(copy, legacy, NPK_NPY_SYNC, NULL, NULL, &rows));
        CHECK(rows == 6);
        CHECK_OK(npk_npy_info(copy, &info));
        CHECK(info.shape[0] == 6 && info.shape[1] == 3 && (long)info.file_size == file_size(copy));
        CHECK_STATUS(npk_npy_append_file(copy, copy, 0, NULL, NULL, &rows), NPK_STATUS_INVALID_ARGUMENT);
        CHECK_STATUS(npk_npy_append_file(NULL, legacy, 0, NULL, NULL, &rows), NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_npy_append_file(copy, NULL, 0, NULL, NULL, &rows), NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_npy_append_file(copy, legacy, 0, NULL, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_npy_append_file(copy, legacy, NPK_NPY_ZERO_FILL, NULL, NULL, &rows), NPK_STATUS_INVALID_ARGUMENT);
        CHECK(rows == 6);
    }

    /* Recovery: a clean file, a partial row (dropped, then zero-filled), a lagging header. */
    CHECK_OK(npk_npy_recover(path, 0, &rec));
    CHECK(rec.header_rows == 3 && rec.rows == 3 && rec.dropped_bytes == 0 && !rec.rewritten);
    before = file_size(path);
    append_bytes(path, block, 5);
    CHECK_STATUS(npk_npy_append(path, NPK_DTYPE_INT32, 1, row_shape, block, 12, 0, &rows), NPK_STATUS_NEEDS_RECOVERY);
    CHECK_OK(npk_npy_recover(path, 0, &rec));
    CHECK(rec.rows == 3 && rec.dropped_bytes == 5 && rec.zero_filled_bytes == 0);
    CHECK(file_size(path) == before);
    append_bytes(path, block, 5);
    CHECK_OK(npk_npy_recover(path, NPK_NPY_ZERO_FILL, &rec));
    CHECK(rec.rows == 4 && rec.zero_filled_bytes == 7);
    append_bytes(path, block, 24);
    CHECK_OK(npk_npy_recover(path, 0, &rec));
    CHECK(rec.header_rows == 4 && rec.rows == 6);
    CHECK_OK(npk_npy_info(path, &info));
    CHECK(info.shape[0] == 6 && (long)info.file_size == file_size(path));
    CHECK_STATUS(npk_npy_recover(NULL, 0, &rec), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_recover(path, 0, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_npy_recover(path, NPK_NPY_OVERWRITE, &rec), NPK_STATUS_INVALID_ARGUMENT);
}

#define APPEND_THREADS 4
#define APPENDS_PER_THREAD 25

struct appender {
    const char *path;
    int id;
    int errors;
};

static void *appender_main(void *arg) {
    struct appender *a = (struct appender *)arg;
    uint64_t row_shape[1] = {2}, rows;
    int i;
    for (i = 0; i < APPENDS_PER_THREAD; i++) {
        int64_t row[2];
        row[0] = a->id;
        row[1] = i;
        if (npk_npy_append(a->path, NPK_DTYPE_INT64, 1, row_shape, row, sizeof row, NPK_NPY_CREATE, &rows) != NPK_STATUS_OK) {
            a->errors++;
        }
    }
    return NULL;
}

static void test_npy_concurrent_appenders(void) {
    char dir[2048], path[4096];
    pthread_t threads[APPEND_THREADS];
    struct appender args[APPEND_THREADS];
    int seen[APPEND_THREADS][APPENDS_PER_THREAD];
    npk_npy_file_info info;
    FILE *f;
    int i, errors = 0, bad = 0;
    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/c.npy", dir);
    memset(seen, 0, sizeof seen);
    for (i = 0; i < APPEND_THREADS; i++) {
        args[i].path = path;
        args[i].id = i;
        args[i].errors = 0;
        pthread_create(&threads[i], NULL, appender_main, &args[i]);
    }
    for (i = 0; i < APPEND_THREADS; i++) {
        pthread_join(threads[i], NULL);
        errors += args[i].errors;
    }
    CHECK(errors == 0);
    CHECK_OK(npk_npy_info(path, &info));
    CHECK(info.shape[0] == APPEND_THREADS * APPENDS_PER_THREAD && info.shape[1] == 2);
    f = fopen(path, "rb");
    if (f != NULL) {
        int64_t row[2];
        fseek(f, (long)info.data_offset, SEEK_SET);
        while (fread(row, sizeof row, 1, f) == 1) {
            if (row[0] < 0 || row[0] >= APPEND_THREADS || row[1] < 0 || row[1] >= APPENDS_PER_THREAD) {
                bad++;
            } else {
                seen[row[0]][row[1]]++;
            }
        }
        fclose(f);
    }
    CHECK(bad == 0);
    for (i = 0; i < APPEND_THREADS * APPENDS_PER_THREAD; i++) {
        CHECK(seen[i / APPENDS_PER_THREAD][i % APPENDS_PER_THREAD] == 1);
    }
}

/* Import, export and append_file of a 12 MiB array report progress block by block, and
 * cancelling in the middle leaves nothing half-done. */
static void test_npy_progress_and_cancel(void) {
    enum { ROWS = 786432, COLS = 4 };
    const uint64_t total = (uint64_t)ROWS * COLS * 4;
    char dir[2048], out_dir[3072], path[4096], target[4096];
    uint64_t shape[2] = {ROWS, COLS}, row_shape[1] = {COLS}, rows = 0;
    int32_t *data = malloc((size_t)total);
    npk_store *s;
    npk_names *names = NULL;
    npk_array_info ai;
    npy_progress p;
    size_t i;
    FILE *f;
    CHECK(data != NULL);
    if (data == NULL) {
        return;
    }
    for (i = 0; i < (size_t)ROWS * COLS; i++) {
        data[i] = (int32_t)i;
    }
    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "store");
    CHECK_OK(npk_store_save(s, "big", NPK_DTYPE_INT32, 2, shape, data, (size_t)total));
    snprintf(out_dir, sizeof out_dir, "%s/out", dir);
    CHECK(mkdir(out_dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/big.npy", out_dir);

    /* Export over an old file, cancelled at the second call: the old file stays, no
     * temporary file is left. */
    f = fopen(path, "wb");
    fputs("old", f);
    fclose(f);
    p = npy_progress_cancelling_at(2);
    CHECK_STATUS(npk_npy_export(s, "big", path, NPK_NPY_OVERWRITE, on_npy_progress, &p), NPK_STATUS_CANCELLED);
    CHECK(p.calls == 2);
    CHECK(strstr(npk_last_error_message(), "cancelled") != NULL);
    CHECK(file_size(path) == 3);
    CHECK(count_entries(out_dir) == 1);
    p = npy_progress_cancelling_at(0);
    CHECK_OK(npk_npy_export(s, "big", path, NPK_NPY_OVERWRITE, on_npy_progress, &p));
    CHECK(p.calls >= 4 && !p.bad && p.first_done == 0 && p.total == total && p.last_done == total);
    CHECK(count_entries(out_dir) == 1);

    /* Import cancelled in the middle: no array; then complete. */
    p = npy_progress_cancelling_at(3);
    CHECK_STATUS(npk_npy_import(s, "back", path, 0, on_npy_progress, &p), NPK_STATUS_CANCELLED);
    CHECK(p.calls == 3);
    CHECK_STATUS(npk_store_info(s, "back", &ai), NPK_STATUS_NOT_FOUND);
    CHECK_OK(npk_store_list(s, &names));
    CHECK(npk_names_count(names) == 1);
    npk_names_free(names);
    p = npy_progress_cancelling_at(0);
    CHECK_OK(npk_npy_import(s, "back", path, 0, on_npy_progress, &p));
    CHECK(p.calls >= 4 && !p.bad && p.total == total && p.last_done == total);
    CHECK_OK(npk_store_info(s, "back", &ai));
    CHECK(ai.shape[0] == ROWS && ai.shape[1] == COLS);

    /* append_file cancelled in the middle: the target keeps its old (zero) rows. */
    snprintf(target, sizeof target, "%s/grow.npy", out_dir);
    CHECK_OK(npk_npy_create_appendable(target, NPK_DTYPE_INT32, 1, row_shape));
    {
        long before = file_size(target);
        npk_npy_file_info info;
        p = npy_progress_cancelling_at(2);
        CHECK_STATUS(npk_npy_append_file(target, path, 0, on_npy_progress, &p, &rows), NPK_STATUS_CANCELLED);
        CHECK(file_size(target) == before);
        CHECK_OK(npk_npy_info(target, &info));
        CHECK(info.shape[0] == 0);
    }
    p = npy_progress_cancelling_at(0);
    CHECK_OK(npk_npy_append_file(target, path, 0, on_npy_progress, &p, &rows));
    CHECK(rows == ROWS);
    CHECK(p.calls >= 4 && !p.bad && p.total == total && p.last_done == total);
    CHECK_OK(npk_store_close(s));
    free(data);
}

void npy_tests(void) {
    test_npy_progress_and_cancel();
    test_npy_info_and_import();
    test_npy_export_and_npz();
    test_npy_append_make_appendable_recover();
    test_npy_concurrent_appenders();
}
