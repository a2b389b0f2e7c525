/*
 * A log record forged by someone else (with a valid CRC) must not make numpack touch a
 * file outside the store: opening it, read-only or writable, fails with CORRUPT naming
 * the record, and a bait file next to the store is left alone.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

#include <fcntl.h>

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n) {
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        for (k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return crc;
}

static void put_u32(unsigned char *p, uint32_t v) {
    int i;
    for (i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static void put_u64(unsigned char *p, uint64_t v) {
    int i;
    for (i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Appends a committed, unfinished Drop record for `name` to the store's log. */
static int forge_drop(const char *store, const char *name) {
    char path[4200];
    unsigned char hdr[64], rec[8 + 1 + 4 + 256], gen[8];
    size_t nlen = strlen(name), plen = 1 + 4 + nlen;
    uint64_t end;
    uint32_t crc;
    int fd, ok;
    snprintf(path, sizeof path, "%s/numpack.wal", store);
    fd = open(path, O_RDWR);
    if (fd < 0 || nlen > 256 || pread(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) {
        if (fd >= 0) {
            close(fd);
        }
        return 0;
    }
    end = get_u64(hdr + 56);
    rec[8] = 6; /* drop */
    put_u32(rec + 9, (uint32_t)nlen);
    memcpy(rec + 13, name, nlen);
    memcpy(gen, hdr + 16, 8);
    crc = crc32_update(0xFFFFFFFFu, gen, 8);
    crc = crc32_update(crc, rec + 8, plen) ^ 0xFFFFFFFFu;
    put_u32(rec, (uint32_t)plen);
    put_u32(rec + 4, crc);
    ok = pwrite(fd, rec, 8 + plen, (off_t)end) == (ssize_t)(8 + plen);
    put_u64(hdr + 56, end + 8 + plen);
    ok = ok && pwrite(fd, hdr + 56, 8, 56) == 8;
    close(fd);
    return ok;
}

static void test_forged_log_touches_nothing_outside(void) {
    char dir[4096], sandbox[4200], store[4300], sub[4400], bait[4300], content[64];
    npk_store *s = NULL;
    FILE *f;
    size_t n;

    fresh_dir(dir, sizeof dir);
    snprintf(sandbox, sizeof sandbox, "%s/sandbox", dir);
    CHECK(mkdir(sandbox, 0755) == 0);
    snprintf(bait, sizeof bait, "%s/victim.npkd", sandbox);
    f = fopen(bait, "w");
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    fputs("bait", f);
    fclose(f);
    snprintf(store, sizeof store, "%s/inner", sandbox);
    CHECK_OK(npk_store_open(store, NPK_OPEN_CREATE, &s));
    save_grid(s, "g", 2, 2);
    CHECK_OK(npk_store_close(s));
    /* data_x/../../victim.npkd is the bait, through a directory the store ships. */
    snprintf(sub, sizeof sub, "%s/data_x", store);
    CHECK(mkdir(sub, 0755) == 0);
    CHECK(forge_drop(store, "x/../../victim"));

    s = NULL;
    CHECK_STATUS(npk_store_open(store, NPK_OPEN_READ_ONLY, &s), NPK_STATUS_CORRUPT);
    CHECK(s == NULL);
    CHECK(strstr(npk_last_error_message(), "drop record, field name") != NULL);
    CHECK_STATUS(npk_store_open(store, 0, &s), NPK_STATUS_CORRUPT);
    CHECK(s == NULL);
    CHECK(strstr(npk_last_error_message(), "x/../../victim") != NULL);

    f = fopen(bait, "r");
    CHECK(f != NULL);
    if (f != NULL) {
        n = fread(content, 1, sizeof content - 1, f);
        content[n] = '\0';
        fclose(f);
        CHECK_STR(content, "bait");
    }
}

void hostile_log_tests(void) {
    test_forged_log_touches_nothing_outside();
}
