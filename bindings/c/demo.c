/* The demo: a store of embeddings changed the way applications change them — bulk save,
 * appends, scattered replaces, deletes, random reads, a zero-copy view, a streamed scan,
 * compaction — with every result checked and timed. Usage: demo <store-dir> */
#define _POSIX_C_SOURCE 199309L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "numpack.h"

enum { ROWS = 200000, DIM = 32, APPEND = 20000 };

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Stops the demo with the library's message when a call fails. */
static void check(npk_status s, const char *what) {
    if (s != NPK_STATUS_OK) {
        fprintf(stderr, "demo: %s failed: %s (%s)\n", what, npk_status_name(s), npk_last_error_message());
        exit(1);
    }
}

static void expect(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "demo: wrong result: %s\n", what);
        exit(1);
    }
}

/* Row r holds r, r + 0.01, ..., so any row read back tells which row it is. */
static void fill(float *row, int64_t r) {
    for (int c = 0; c < DIM; c++) row[c] = (float)r + c / 100.0f;
}

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <store-dir>\n", argv[0]);
        return 2;
    }
    printf("numpack %s — demo store at %s\n", npk_version(), argv[1]);
    npk_store *store;
    check(npk_store_open(argv[1], NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS, &store), "open");

    float *data = malloc(sizeof(float) * (size_t)ROWS * DIM);
    for (int64_t r = 0; r < ROWS; r++) fill(data + r * DIM, r);
    uint64_t shape[2] = {ROWS, DIM};
    double t = now_ms();
    check(npk_store_save(store, "embeddings", NPK_DTYPE_FLOAT32, 2, shape, data, sizeof(float) * (size_t)ROWS * DIM), "save");
    printf("  save %d x %d float32 (%.1f MB)        %8.2f ms\n", ROWS, DIM, ROWS * DIM * 4 / 1e6, now_ms() - t);

    /* Append in batches of 100 rows, as a logger would. */
    float batch[100 * DIM];
    uint64_t bshape[2] = {100, DIM};
    t = now_ms();
    for (int64_t b = 0; b < APPEND / 100; b++) {
        for (int i = 0; i < 100; i++) fill(batch + i * DIM, ROWS + b * 100 + i);
        check(npk_store_append(store, "embeddings", NPK_DTYPE_FLOAT32, 2, bshape, batch, sizeof batch), "append");
    }
    printf("  append %d batches of 100 rows            %8.2f us per batch\n", APPEND / 100, (now_ms() - t) * 1e3 / (APPEND / 100));

    /* Replace 1,000 scattered rows with their negation. */
    uint64_t seed = 42;
    int64_t idx[1000];
    float *rep = malloc(sizeof(float) * 1000 * DIM);
    for (int i = 0; i < 1000; i++) {
        idx[i] = (int64_t)(next_rand(&seed) % (ROWS + APPEND));
        fill(rep + i * DIM, idx[i]);
        for (int c = 0; c < DIM; c++) rep[i * DIM + c] = -rep[i * DIM + c];
    }
    t = now_ms();
    check(npk_store_replace_rows(store, "embeddings", NPK_DTYPE_FLOAT32, idx, 1000, rep, sizeof(float) * 1000 * DIM), "replace");
    printf("  replace 1,000 scattered rows              %8.2f ms\n", now_ms() - t);

    /* Delete every 20th row (logical delete through the bitmap). */
    int64_t *del = malloc(sizeof(int64_t) * ROWS / 20);
    for (int64_t i = 0; i < ROWS / 20; i++) del[i] = i * 20;
    t = now_ms();
    check(npk_store_delete_rows(store, "embeddings", del, ROWS / 20), "delete");
    printf("  delete %d rows                        %8.2f ms\n", ROWS / 20, now_ms() - t);

    npk_array_info info;
    check(npk_store_info(store, "embeddings", &info), "info");
    uint64_t live = ROWS + APPEND - ROWS / 20;
    expect(info.shape[0] == live && info.physical_rows == ROWS + APPEND, "logical and physical rows");

    /* Random reads by logical index: logical row i is physical row i + i/19 + 1. */
    int64_t want[1000];
    float *got = malloc(sizeof(float) * 1000 * DIM);
    for (int i = 0; i < 1000; i++) want[i] = (int64_t)(next_rand(&seed) % ROWS * 19 / 20);
    t = now_ms();
    check(npk_store_read_rows(store, "embeddings", want, 1000, got, sizeof(float) * 1000 * DIM), "read rows");
    double read_ms = now_ms() - t;
    for (int i = 0; i < 1000; i++) {
        int64_t phys = want[i] + want[i] / 19 + 1;
        float v = got[i * DIM];
        expect(v == (float)phys || v == -(float)phys, "random rows map logical to physical");
    }
    printf("  read 1,000 random rows                    %8.2f us\n", read_ms * 1e3);

    /* A zero-copy view: the file as mapped, plus the logical->physical row map. */
    npk_view *view;
    npk_view_layout vi;
    check(npk_store_view(store, "embeddings", 0, &view), "view");
    check(npk_view_info(view, &vi), "view info");
    expect(vi.rows == live && vi.row_map != NULL && vi.row_map[0] == 1, "view row map");
    const float *mapped = vi.data;
    float last = mapped[vi.row_map[live - 1] * DIM];
    expect(last == (float)(ROWS + APPEND - 1) || last == -(float)(ROWS + APPEND - 1), "last row through the view");
    npk_view_free(view);

    /* Stream every live row in batches of 10,000 and count them. */
    npk_stream *stream;
    float *buf = malloc(sizeof(float) * 10000 * DIM);
    uint64_t n, seen = 0;
    t = now_ms();
    check(npk_store_stream(store, "embeddings", 10000, &stream), "stream");
    do {
        check(npk_stream_next(stream, buf, sizeof(float) * 10000 * DIM, &n), "stream next");
        seen += n;
    } while (n > 0);
    npk_stream_free(stream);
    expect(seen == live, "stream sees every live row once");
    printf("  stream %" PRIu64 " rows in batches of 10,000    %8.2f ms\n", seen, now_ms() - t);

    t = now_ms();
    check(npk_store_compact(store, "embeddings"), "compact");
    check(npk_store_info(store, "embeddings", &info), "info");
    expect(info.physical_rows == live, "compaction removes deleted rows");
    printf("  compact                                   %8.2f ms\n", now_ms() - t);

    int64_t labels[1000];
    for (int i = 0; i < 1000; i++) labels[i] = i % 7;
    uint64_t lshape[1] = {1000};
    check(npk_store_save(store, "labels", NPK_DTYPE_INT64, 1, lshape, labels, sizeof labels), "save labels");
    t = now_ms();
    check(npk_store_sync(store), "sync");
    printf("  sync (fsync everything)                   %8.2f ms\n", now_ms() - t);
    check(npk_store_close(store), "close");
    printf("C: all results checked; %" PRIu64 " live rows of %d floats\n", live, DIM);
    free(data);
    free(rep);
    free(del);
    free(got);
    free(buf);
    return 0;
}
