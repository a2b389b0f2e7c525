/*
 * C tests of .npkg packages: npk_package_pack, npk_package_unpack, npk_package_read_info
 * and the npk_package_info getters: round trips, descriptions, bad paths and NULLs,
 * damaged and hostile packages, cancellation through the progress callback, and the
 * rules for existing targets (never replaced without the OVERWRITE flag, never lost to
 * a failed unpack).
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"


/* Counts the progress calls, checks they never go backwards, and cancels at call
 * `cancel_at` (1-based; 0 = never). */
typedef struct {
    int calls;
    int cancel_at;
    uint64_t last_done;
    uint64_t total;
    int went_backwards;
} progress_state;

static bool on_progress(uint64_t done, uint64_t total, void *user_data) {
    progress_state *p = (progress_state *)user_data;
    p->calls++;
    if (done < p->last_done || done > total) {
        p->went_backwards = 1;
    }
    p->last_done = done;
    p->total = total;
    return p->cancel_at == 0 || p->calls < p->cancel_at;
}

static int write_file(const char *path, const unsigned char *bytes, size_t len) {
    FILE *f = fopen(path, "wb");
    int ok;
    if (f == NULL) {
        return 0;
    }
    ok = fwrite(bytes, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    long n;
    unsigned char *buf;
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (unsigned char *)malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p) {
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Offset and length of the payload of entry `name` in a package's bytes (parsed here
 * from the layout: "NPKG" u32 version, u8 flag, u32 count; per entry u32 name length,
 * name, u64 original size, u64 compressed size, payload), or 0 when it is not found. */
static size_t payload_of(const unsigned char *pkg, size_t len, const char *name, size_t *payload_len) {
    size_t pos = 13;
    uint32_t count = le32(pkg + 9), i;
    for (i = 0; i < count && pos + 4 <= len; i++) {
        uint32_t nlen = le32(pkg + pos);
        const unsigned char *nm = pkg + pos + 4;
        uint64_t orig = le64(nm + nlen), stored = le64(nm + nlen + 8);
        size_t at = pos + 4 + nlen + 16;
        size_t plen = (size_t)(stored > 0 ? stored : orig);
        if (nlen == strlen(name) && memcmp(nm, name, nlen) == 0) {
            *payload_len = plen;
            return at;
        }
        pos = at + plen;
    }
    return 0;
}

/* A store at DIR/name with "a" (int32 40 x 8, rows 3 and 17 deleted) and "b" (float64
 * 5 x 2), closed again. */
static void make_store(const char *dir, const char *name) {
    npk_store *s = new_store(dir, name);
    double b[5][2];
    uint64_t shape[2] = {5, 2};
    int64_t gone[2] = {3, 17};
    int i;
    for (i = 0; i < 10; i++) {
        b[i / 2][i % 2] = i * 0.5;
    }
    save_grid(s, "a", 40, 8);
    CHECK_OK(npk_store_save(s, "b", NPK_DTYPE_FLOAT64, 2, shape, b, sizeof b));
    CHECK_OK(npk_store_delete_rows(s, "a", gone, 2));
    CHECK_OK(npk_store_close(s));
}

/* Whether the store at `path` holds what make_store put there. */
static int store_matches(const char *path) {
    npk_store *s = NULL;
    npk_array_info info;
    int32_t a[38][8];
    double b[5][2];
    int ok = 1, r, c;
    if (npk_store_open(path, NPK_OPEN_READ_ONLY, &s) != NPK_STATUS_OK) {
        fprintf(stderr, "cannot open %s: %s\n", path, npk_last_error_message());
        return 0;
    }
    ok &= npk_store_info(s, "a", &info) == NPK_STATUS_OK && info.shape[0] == 38 && info.physical_rows == 40;
    ok &= npk_store_load(s, "a", a, sizeof a) == NPK_STATUS_OK;
    for (r = 0; ok && r < 38; r++) {
        int src = r < 3 ? r : r < 16 ? r + 1 : r + 2; /* rows 3 and 17 are gone */
        for (c = 0; c < 8; c++) {
            ok &= a[r][c] == src * 100 + c;
        }
    }
    ok &= npk_store_load(s, "b", b, sizeof b) == NPK_STATUS_OK;
    for (r = 0; ok && r < 10; r++) {
        ok &= b[r / 2][r % 2] == r * 0.5;
    }
    ok &= npk_store_close(s) == NPK_STATUS_OK;
    return ok;
}

static npk_store *open_store(const char *path) {
    npk_store *s = NULL;
    CHECK_OK(npk_store_open(path, 0, &s));
    return s;
}

static void test_round_trip(void) {
    char dir[4096], store[4200], pkg[4200], pkg_raw[4200], out[4200], out_raw[4200];
    npk_store *s;
    npk_package_info *packed = NULL, *unpacked = NULL, *read = NULL;
    npk_package_summary sum, sum2;
    npk_package_entry e, e2;
    progress_state p = {0, 0, 0, 0, 0};
    size_t i;
    fresh_dir(dir, sizeof dir);
    make_store(dir, "s.npk");
    snprintf(store, sizeof store, "%s/s.npk", dir);
    snprintf(pkg, sizeof pkg, "%s/deep/er/s.npk.npkg", dir); /* parents are created */
    snprintf(pkg_raw, sizeof pkg_raw, "%s/raw.npkg", dir);
    snprintf(out, sizeof out, "%s/out/s.npk", dir);
    snprintf(out_raw, sizeof out_raw, "%s/out_raw.npk", dir);

    s = open_store(store);
    CHECK_OK(npk_package_pack(s, pkg, NPK_PACK_COMPRESS, on_progress, &p, &packed));
    CHECK(p.calls >= 2 && !p.went_backwards && p.last_done == p.total && p.total > 0);
    CHECK_OK(npk_package_get_summary(packed, &sum));
    CHECK(sum.version == 2 && sum.compression == 1 && sum.entry_count == 4);
    {
        uint64_t total = 0;
        for (i = 0; i < 4; i++) {
            CHECK_OK(npk_package_get_entry(packed, i, &e));
            total += e.original_size;
        }
        CHECK(sum.total_original_size == total);
        CHECK(e.original_size == (uint64_t)file_size(strcat(strcpy(out, store), "/metadata.npkm")));
        snprintf(out, sizeof out, "%s/out/s.npk", dir);
    }
    CHECK(sum.total_stored_size < sum.total_original_size); /* the grid compresses */
    CHECK(file_size(pkg) > 0 && (uint64_t)file_size(pkg) > sum.total_stored_size);
    /* Sorted by name: data_a, data_b, deleted_a, metadata; every CRC known. */
    CHECK_OK(npk_package_get_entry(packed, 0, &e));
    CHECK_STR(e.name, "data_a.npkd");
    CHECK(e.original_size == 40 * 8 * 4 && e.stored_size > 0 && e.stored_size < e.original_size && e.has_crc32);
    CHECK_OK(npk_package_get_entry(packed, 2, &e));
    CHECK_STR(e.name, "deleted_a.npkb");
    CHECK(e.original_size == 16 + 8 && e.has_crc32);
    CHECK_OK(npk_package_get_entry(packed, 3, &e));
    CHECK_STR(e.name, "metadata.npkm");
    CHECK_STATUS(npk_package_get_entry(packed, 4, &e), NPK_STATUS_INDEX_OUT_OF_RANGE);

    /* Uncompressed: flag 0, every payload raw; the store handle stays usable. */
    CHECK_OK(npk_package_pack(s, pkg_raw, 0, NULL, NULL, NULL));
    CHECK_OK(npk_store_close(s));

    /* The description from the headers alone agrees, without CRCs. */
    CHECK_OK(npk_package_read_info(pkg, &read));
    CHECK_OK(npk_package_get_summary(read, &sum2));
    CHECK(sum2.version == sum.version && sum2.compression == sum.compression && sum2.entry_count == sum.entry_count);
    CHECK(sum2.total_original_size == sum.total_original_size && sum2.total_stored_size == sum.total_stored_size);
    for (i = 0; i < sum.entry_count; i++) {
        CHECK_OK(npk_package_get_entry(packed, i, &e));
        CHECK_OK(npk_package_get_entry(read, i, &e2));
        CHECK_STR(e.name, e2.name);
        CHECK(e.original_size == e2.original_size && e.stored_size == e2.stored_size && !e2.has_crc32);
    }
    npk_package_info_free(read);
    read = NULL;
    CHECK_OK(npk_package_read_info(pkg_raw, &read));
    CHECK_OK(npk_package_get_summary(read, &sum2));
    CHECK(sum2.compression == 0 && sum2.entry_count == 4 && sum2.total_stored_size == sum2.total_original_size);
    npk_package_info_free(read);

    /* Unpack both, verifying; the CRCs as unpacked are the ones packed. */
    p.calls = 0;
    p.last_done = 0;
    CHECK_OK(npk_package_unpack(pkg, out, NPK_UNPACK_VERIFY, on_progress, &p, &unpacked));
    CHECK(p.calls >= 2 && !p.went_backwards && p.last_done == p.total && p.total == sum.total_original_size);
    for (i = 0; i < sum.entry_count; i++) {
        CHECK_OK(npk_package_get_entry(packed, i, &e));
        CHECK_OK(npk_package_get_entry(unpacked, i, &e2));
        CHECK(e2.has_crc32 && e.crc32 == e2.crc32);
    }
    CHECK(store_matches(out));
    CHECK_OK(npk_package_unpack(pkg_raw, out_raw, NPK_UNPACK_VERIFY, NULL, NULL, NULL));
    CHECK(store_matches(out_raw));
    /* Nothing but the packages and stores is left beside them. */
    CHECK(count_entries(dir) == 5); /* s.npk deep raw.npkg out out_raw.npk */
    npk_package_info_free(packed);
    npk_package_info_free(unpacked);
}

static void test_nulls_and_bad_arguments(void) {
    char dir[4096], store[4200], pkg[4200], missing[4200], out[4200];
    npk_store *s;
    npk_package_info *info = NULL;
    npk_package_summary sum;
    npk_package_entry e;
    fresh_dir(dir, sizeof dir);
    make_store(dir, "s.npk");
    snprintf(store, sizeof store, "%s/s.npk", dir);
    snprintf(pkg, sizeof pkg, "%s/p.npkg", dir);
    snprintf(missing, sizeof missing, "%s/missing.npkg", dir);
    snprintf(out, sizeof out, "%s/out.npk", dir);
    s = open_store(store);

    CHECK_STATUS(npk_package_pack(NULL, pkg, 0, NULL, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_package_pack(s, NULL, 0, NULL, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_package_pack(s, "", 0, NULL, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_package_pack(s, pkg, 0x100, NULL, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_package_pack(s, dir, 0, NULL, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT); /* a directory */
    CHECK_STATUS(npk_package_pack((const npk_store *)&e, pkg, 0, NULL, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT);
    CHECK(!exists(pkg));
    CHECK_OK(npk_package_pack(s, pkg, NPK_PACK_COMPRESS, NULL, NULL, NULL));

    CHECK_STATUS(npk_package_unpack(NULL, out, 0, NULL, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_package_unpack(pkg, NULL, 0, NULL, NULL, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_package_unpack(pkg, out, 0x100, NULL, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_package_unpack(missing, out, 0, NULL, NULL, NULL), NPK_STATUS_IO);
    CHECK(strstr(npk_last_error_message(), "missing.npkg") != NULL);
    CHECK_STATUS(npk_package_unpack(dir, out, 0, NULL, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_package_unpack(store, out, 0, NULL, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT);
    CHECK(!exists(out));

    CHECK_STATUS(npk_package_read_info(NULL, &info), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_package_read_info(pkg, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_package_read_info("", &info), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_package_read_info(missing, &info), NPK_STATUS_IO);
    CHECK_STATUS(npk_package_read_info(dir, &info), NPK_STATUS_INVALID_ARGUMENT);
    /* A store's catalogue is a file, but not a package. */
    {
        char meta[4300];
        snprintf(meta, sizeof meta, "%s/metadata.npkm", store);
        CHECK_STATUS(npk_package_read_info(meta, &info), NPK_STATUS_CORRUPT);
        CHECK(strstr(npk_last_error_message(), "not a .npkg package") != NULL);
    }
    CHECK(info == NULL); /* outputs untouched on failure */

    CHECK_OK(npk_package_read_info(pkg, &info));
    CHECK_STATUS(npk_package_get_summary(NULL, &sum), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_package_get_summary(info, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_package_get_entry(NULL, 0, &e), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_package_get_entry(info, 0, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_package_get_entry(info, (size_t)-1, &e), NPK_STATUS_INDEX_OUT_OF_RANGE);
    /* A store handle is not a package description, and the other way round. */
    CHECK_STATUS(npk_package_get_summary((const npk_package_info *)s, &sum), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_package_pack((const npk_store *)info, pkg, 0, NULL, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT);
    npk_package_info_free(info);
    /* Freed: detected, and a second free is ignored. */
    CHECK_STATUS(npk_package_get_summary(info, &sum), NPK_STATUS_INVALID_ARGUMENT);
    npk_package_info_free(info);
    npk_package_info_free(NULL);
    CHECK_OK(npk_store_close(s));
}

static void test_damaged_packages(void) {
    char dir[4096], store[4200], pkg[4200], raw[4200], out[4200], bad[4200];
    npk_store *s;
    unsigned char *bytes;
    size_t len, at, plen;
    npk_package_info *info = NULL;
    fresh_dir(dir, sizeof dir);
    make_store(dir, "s.npk");
    snprintf(store, sizeof store, "%s/s.npk", dir);
    snprintf(pkg, sizeof pkg, "%s/p.npkg", dir);
    snprintf(raw, sizeof raw, "%s/raw.npkg", dir);
    snprintf(out, sizeof out, "%s/out.npk", dir);
    snprintf(bad, sizeof bad, "%s/bad.npkg", dir);
    s = open_store(store);
    CHECK_OK(npk_package_pack(s, pkg, NPK_PACK_COMPRESS, NULL, NULL, NULL));
    CHECK_OK(npk_package_pack(s, raw, 0, NULL, NULL, NULL));
    CHECK_OK(npk_store_close(s));

    /* A flipped byte in a compressed file: its codec's checksum names the file. */
    bytes = read_file(pkg, &len);
    CHECK(bytes != NULL);
    at = payload_of(bytes, len, "data_a.npkd", &plen);
    CHECK(at > 0 && plen > 16);
    bytes[at + plen / 2] ^= 0x40;
    CHECK(write_file(bad, bytes, len));
    CHECK_STATUS(npk_package_unpack(bad, out, NPK_UNPACK_VERIFY, NULL, NULL, NULL), NPK_STATUS_CORRUPT);
    CHECK(strstr(npk_last_error_message(), "data_a.npkd") != NULL);
    CHECK(strstr(npk_last_error_message(), "bad.npkg") != NULL);
    CHECK(!exists(out));
    free(bytes);

    /* A flipped byte in a raw file: the footer's checksum of CRC32s disagrees. Without
     * VERIFY (NumPack's verify=False) the footer is not compared. */
    bytes = read_file(raw, &len);
    CHECK(bytes != NULL);
    at = payload_of(bytes, len, "data_b.npkd", &plen);
    CHECK(at > 0 && plen == 80);
    bytes[at + 3] ^= 0x01;
    CHECK(write_file(bad, bytes, len));
    CHECK_STATUS(npk_package_unpack(bad, out, NPK_UNPACK_VERIFY, NULL, NULL, NULL), NPK_STATUS_CORRUPT);
    CHECK(strstr(npk_last_error_message(), "checksum mismatch") != NULL);
    CHECK(!exists(out));
    CHECK_OK(npk_package_unpack(bad, out, 0, NULL, NULL, NULL));
    CHECK(exists(out));
    free(bytes);

    /* Truncated: read_info names the problem. */
    bytes = read_file(pkg, &len);
    CHECK(write_file(bad, bytes, len - 10));
    CHECK_STATUS(npk_package_read_info(bad, &info), NPK_STATUS_CORRUPT);
    CHECK(strstr(npk_last_error_message(), "truncated") != NULL);
    /* A version from the future. */
    put32(bytes + 4, 3);
    CHECK(write_file(bad, bytes, len));
    CHECK_STATUS(npk_package_read_info(bad, &info), NPK_STATUS_UNSUPPORTED);
    CHECK(info == NULL);
    free(bytes);
}

/* A package with one raw entry named `name` holding `content`. */
static void hostile_package(const char *path, const char *name, const char *content) {
    unsigned char buf[512];
    size_t n = strlen(name), c = strlen(content), pos = 0;
    memcpy(buf, "NPKG", 4);
    put32(buf + 4, 2);
    buf[8] = 0;
    put32(buf + 9, 1);
    pos = 13;
    put32(buf + pos, (uint32_t)n);
    memcpy(buf + pos + 4, name, n);
    pos += 4 + n;
    memset(buf + pos, 0, 16);
    put32(buf + pos, (uint32_t)c);
    pos += 16;
    memcpy(buf + pos, content, c);
    pos += c;
    put32(buf + pos, 0);
    pos += 4;
    CHECK(write_file(path, buf, pos));
}

static void test_path_escape(void) {
    static const char *names[] = {"../escaped.npkd", "/tmp/abs.npkd", "sub/data_x.npkd", "..", "notes.txt"};
    char dir[4096], pkg[4200], out[4200], escaped[4200];
    npk_package_info *info = NULL;
    size_t i;
    fresh_dir(dir, sizeof dir);
    snprintf(pkg, sizeof pkg, "%s/evil.npkg", dir);
    snprintf(out, sizeof out, "%s/x/out.npk", dir);
    snprintf(escaped, sizeof escaped, "%s/x/escaped.npkd", dir);
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        hostile_package(pkg, names[i], "payload!");
        CHECK_STATUS(npk_package_unpack(pkg, out, NPK_UNPACK_VERIFY | NPK_UNPACK_OVERWRITE, NULL, NULL, NULL),
                     NPK_STATUS_CORRUPT);
        CHECK(strstr(npk_last_error_message(), i < 4 ? "escape" : "not a file of a NumPack store") != NULL);
        CHECK_STATUS(npk_package_read_info(pkg, &info), NPK_STATUS_CORRUPT);
        CHECK(!exists(out) && !exists(escaped));
        /* The parent made for the target is removed again: only the package is left. */
        CHECK(count_entries(dir) == 1);
    }
    CHECK(info == NULL);
}

static void test_cancel(void) {
    char dir[4096], store[4200], pkg[4200], out[4200], other[4200];
    npk_store *s;
    npk_package_info *info = NULL;
    progress_state p = {0, 1, 0, 0, 0};
    fresh_dir(dir, sizeof dir);
    make_store(dir, "s.npk");
    snprintf(store, sizeof store, "%s/s.npk", dir);
    snprintf(pkg, sizeof pkg, "%s/p.npkg", dir);
    snprintf(out, sizeof out, "%s/out.npk", dir);
    snprintf(other, sizeof other, "%s/other.npkg", dir);
    s = open_store(store);
    /* Cancelled at the first call, then at the third (after a file was written). */
    CHECK_STATUS(npk_package_pack(s, pkg, NPK_PACK_COMPRESS, on_progress, &p, &info), NPK_STATUS_CANCELLED);
    CHECK(p.calls == 1 && !exists(pkg) && info == NULL);
    p.calls = 0;
    p.cancel_at = 3;
    CHECK_STATUS(npk_package_pack(s, pkg, NPK_PACK_COMPRESS, on_progress, &p, &info), NPK_STATUS_CANCELLED);
    CHECK(p.calls == 3 && !exists(pkg) && info == NULL);
    CHECK(strstr(npk_last_error_message(), "cancelled") != NULL);
    CHECK(count_entries(dir) == 1); /* no temporary file left */
    CHECK_OK(npk_package_pack(s, pkg, NPK_PACK_COMPRESS, NULL, NULL, NULL));
    /* Cancelling an overwrite keeps the old package. */
    p.calls = 0;
    p.cancel_at = 2;
    CHECK_STATUS(npk_package_pack(s, pkg, NPK_PACK_OVERWRITE, on_progress, &p, NULL), NPK_STATUS_CANCELLED);
    CHECK_OK(npk_package_read_info(pkg, &info));
    {
        npk_package_summary sum;
        CHECK_OK(npk_package_get_summary(info, &sum));
        CHECK(sum.compression == 1);
    }
    npk_package_info_free(info);
    info = NULL;
    CHECK_OK(npk_store_close(s));

    p.calls = 0;
    p.cancel_at = 2;
    CHECK_STATUS(npk_package_unpack(pkg, out, NPK_UNPACK_VERIFY, on_progress, &p, &info), NPK_STATUS_CANCELLED);
    CHECK(p.calls == 2 && !exists(out) && info == NULL);
    CHECK(count_entries(dir) == 2); /* s.npk and p.npkg: no temporary directory */
    (void)other;
}

static void test_existing_targets(void) {
    char dir[4096], store[4200], pkg[4200], out[4200], notstore[4200], bad[4200], keep[4300];
    npk_store *s;
    unsigned char *bytes;
    size_t len, at, plen;
    fresh_dir(dir, sizeof dir);
    make_store(dir, "s.npk");
    snprintf(store, sizeof store, "%s/s.npk", dir);
    snprintf(pkg, sizeof pkg, "%s/p.npkg", dir);
    snprintf(out, sizeof out, "%s/out.npk", dir);
    snprintf(notstore, sizeof notstore, "%s/plain", dir);
    snprintf(bad, sizeof bad, "%s/bad.npkg", dir);
    s = open_store(store);
    CHECK_OK(npk_package_pack(s, pkg, NPK_PACK_COMPRESS, NULL, NULL, NULL));
    /* An existing package is kept without OVERWRITE, replaced with it. */
    CHECK_STATUS(npk_package_pack(s, pkg, 0, NULL, NULL, NULL), NPK_STATUS_ALREADY_EXISTS);
    CHECK_OK(npk_package_pack(s, pkg, NPK_PACK_OVERWRITE, NULL, NULL, NULL));
    {
        npk_package_info *info = NULL;
        npk_package_summary sum;
        CHECK_OK(npk_package_read_info(pkg, &info));
        CHECK_OK(npk_package_get_summary(info, &sum));
        CHECK(sum.compression == 0);
        npk_package_info_free(info);
    }
    /* A package target inside the store that would overwrite one of its files. */
    snprintf(keep, sizeof keep, "%s/metadata.npkm", store);
    CHECK_STATUS(npk_package_pack(s, keep, NPK_PACK_OVERWRITE, NULL, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_OK(npk_store_close(s));
    CHECK(store_matches(store));

    /* An existing store is kept without OVERWRITE, replaced with it. */
    CHECK_OK(npk_package_unpack(pkg, out, 0, NULL, NULL, NULL));
    CHECK_STATUS(npk_package_unpack(pkg, out, NPK_UNPACK_VERIFY, NULL, NULL, NULL), NPK_STATUS_ALREADY_EXISTS);
    s = open_store(out);
    CHECK_OK(npk_store_drop(s, "b"));
    CHECK_OK(npk_store_close(s));
    CHECK_OK(npk_package_unpack(pkg, out, NPK_UNPACK_OVERWRITE | NPK_UNPACK_VERIFY, NULL, NULL, NULL));
    CHECK(store_matches(out));
    /* A directory that is not a store is never replaced. */
    CHECK(mkdir(notstore, 0755) == 0);
    snprintf(keep, sizeof keep, "%s/mine.txt", notstore);
    CHECK(write_file(keep, (const unsigned char *)"x", 1));
    CHECK_STATUS(npk_package_unpack(pkg, notstore, NPK_UNPACK_OVERWRITE, NULL, NULL, NULL), NPK_STATUS_INVALID_ARGUMENT);
    CHECK(exists(keep));

    /* A failed unpack over an existing store leaves it as it was. */
    bytes = read_file(pkg, &len);
    at = payload_of(bytes, len, "data_a.npkd", &plen);
    CHECK(at > 0 && plen == 40 * 8 * 4);
    bytes[at + 100] ^= 0xff;
    CHECK(write_file(bad, bytes, len));
    free(bytes);
    CHECK_STATUS(npk_package_unpack(bad, out, NPK_UNPACK_OVERWRITE | NPK_UNPACK_VERIFY, NULL, NULL, NULL),
                 NPK_STATUS_CORRUPT);
    CHECK(store_matches(out));
    CHECK(count_entries(dir) == 5); /* s.npk p.npkg out.npk plain bad.npkg: nothing temporary */
}

void package_tests(void) {
    test_round_trip();
    test_nulls_and_bad_arguments();
    test_damaged_packages();
    test_path_escape();
    test_cancel();
    test_existing_targets();
}
