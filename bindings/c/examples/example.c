/* numpack from C: create a store, save and append rows, read rows back (by index, by
 * range, through a zero-copy view), delete rows and compact, search the rows as vectors.
 * Every result is checked.
 * Usage: example_c <store-dir> */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "numpack.h"

enum { DIM = 4 };

/* Stops with the library's message when a call fails. */
#define CHECK(call)                                                                    \
    do {                                                                               \
        npk_status st_ = (call);                                                       \
        if (st_ != NPK_STATUS_OK) {                                                    \
            fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__, #call,  \
                    npk_status_name(st_), npk_last_error_message());                   \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define EXPECT(cond)                                                                   \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);        \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

/* Row r holds r*10 + c: any row read back tells which row it was. */
static void fill(float *rows, uint64_t first, uint64_t n) {
    for (uint64_t r = 0; r < n; r++)
        for (int c = 0; c < DIM; c++) rows[r * DIM + c] = (float)((first + r) * 10 + c);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <store-dir>\n", argv[0]);
        return 2;
    }
    printf("numpack %s (header %s)\n", npk_version(), NPK_VERSION_STRING);

    npk_store *store = NULL;
    CHECK(npk_store_open(argv[1], NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS, &store));

    /* Save 100 rows of 4 float32, then append 20 more. */
    float first[100 * DIM], more[20 * DIM];
    fill(first, 0, 100);
    fill(more, 100, 20);
    uint64_t shape[2] = {100, DIM};
    CHECK(npk_store_save(store, "x", NPK_DTYPE_FLOAT32, 2, shape, first, sizeof first));
    uint64_t more_shape[2] = {20, DIM};
    CHECK(npk_store_append(store, "x", NPK_DTYPE_FLOAT32, 2, more_shape, more, sizeof more));

    npk_array_info info;
    CHECK(npk_store_info(store, "x", &info));
    EXPECT(info.dtype == NPK_DTYPE_FLOAT32 && info.ndim == 2);
    EXPECT(info.shape[0] == 120 && info.shape[1] == DIM);
    printf("x: %s, %llu x %llu\n", npk_dtype_name(info.dtype),
           (unsigned long long)info.shape[0], (unsigned long long)info.shape[1]);

    /* Random rows (negative indices count from the end) and a range. */
    int64_t idx[3] = {5, 110, -1};
    float got[3 * DIM];
    CHECK(npk_store_read_rows(store, "x", idx, 3, got, sizeof got));
    EXPECT(got[0] == 50.0f && got[DIM] == 1100.0f && got[2 * DIM + 3] == 1193.0f);
    float range[10 * DIM];
    CHECK(npk_store_read_range(store, "x", 95, 105, range, sizeof range));
    EXPECT(range[0] == 950.0f && range[9 * DIM] == 1040.0f);

    /* Delete the even rows below 10: rows 0..9 become 1, 3, 5, 7, 9, 10, ... */
    int64_t del[5] = {0, 2, 4, 6, 8};
    CHECK(npk_store_delete_rows(store, "x", del, 5));
    CHECK(npk_store_info(store, "x", &info));
    EXPECT(info.shape[0] == 115 && info.physical_rows == 120);

    /* A lazy view: no copy, deleted rows are skipped through the row map. */
    npk_view *view = NULL;
    CHECK(npk_store_view(store, "x", 0, &view));
    npk_view_layout lay;
    CHECK(npk_view_info(view, &lay));
    EXPECT(lay.rows == 115 && lay.shape[0] == 120 && lay.row_map != NULL);
    const float *data = lay.data;
    double sum = 0;
    for (uint64_t i = 0; i < lay.rows; i++) sum += data[lay.row_map[i] * DIM];
    EXPECT(data[lay.row_map[0] * DIM] == 10.0f);
    printf("view: %llu live rows of %llu, first column sums to %.0f\n",
           (unsigned long long)lay.rows, (unsigned long long)lay.shape[0], sum);

    /* Compact: the deleted rows leave the data file. The old view keeps its mapping. */
    CHECK(npk_store_compact(store, "x"));
    CHECK(npk_store_info(store, "x", &info));
    EXPECT(info.shape[0] == 115 && info.physical_rows == 115);
    EXPECT(data[lay.row_map[0] * DIM] == 10.0f);
    npk_view_free(view);

    /* Stream the array in batches of 32 rows. */
    npk_stream *stream = NULL;
    CHECK(npk_store_stream(store, "x", 32, &stream));
    float batch[32 * DIM];
    uint64_t rows, total = 0;
    do {
        CHECK(npk_stream_next(stream, batch, sizeof batch, &rows));
        total += rows;
    } while (rows > 0);
    npk_stream_free(stream);
    EXPECT(total == 115);

    /* Exact vector search over the stored rows: the 2 nearest to a copy of row 42. Indices
     * are logical rows (row 42 is logical 37 after the deletions); equal distances rank the
     * lower index first (rows 41 and 43 are both 20 away). */
    float query[DIM];
    fill(query, 42, 1);
    npk_vectors q = {query, NPK_DTYPE_FLOAT32, 1, DIM};
    uint32_t l2;
    CHECK(npk_metric_parse("euclidean", &l2));
    uint64_t near[2], kk;
    double dist[2];
    CHECK(npk_store_top_k(store, "x", l2, &q, 2, near, dist, 2, &kk));
    EXPECT(kk == 2 && near[0] == 37 && dist[0] == 0 && near[1] == 36 && dist[1] == 20);
    printf("nearest to row 42 (%s): logical rows %llu and %llu\n", npk_metric_name(l2),
           (unsigned long long)near[0], (unsigned long long)near[1]);

    /* Errors carry a code and a message. */
    float one[DIM];
    npk_status st = npk_store_read_range(store, "missing", 0, 1, one, sizeof one);
    EXPECT(st == NPK_STATUS_NOT_FOUND);
    printf("expected error: %s: %s\n", npk_status_name(st), npk_last_error_message());

    npk_names *names = NULL;
    CHECK(npk_store_list(store, &names));
    EXPECT(npk_names_count(names) == 1);
    printf("arrays: %s\n", npk_names_get(names, 0));
    npk_names_free(names);

    CHECK(npk_store_close(store));
    printf("example_c: ok\n");
    return 0;
}
