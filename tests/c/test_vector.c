/*
 * C tests of exact vector search: npk_metric_*, npk_vector_*, npk_store_top_k and
 * npk_store_scores, against a brute-force reference computed here in double precision
 * (ties by lower index, NaN last), and their error paths.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

#include <math.h> /* NAN, INFINITY and isnan only: run.sh links the tests without -lm */

/* ------------------------------------------------------------------------------------ */
/* Reference arithmetic. sqrt and log are written out because the test program is not
 * linked with libm; both are accurate to a few ulps, far inside the tolerances below. */

static double ref_sqrt(double x) {
    double y;
    int i;
    if (isnan(x) || x < 0) {
        return NAN;
    }
    if (x == 0 || x == INFINITY) {
        return x;
    }
    y = x > 1 ? x : 1;
    for (i = 0; i < 200; i++) {
        double next = 0.5 * (y + x / y);
        if (next == y) {
            break;
        }
        y = next;
    }
    return y;
}

static double ref_log(double x) {
    double t, t2, term, sum = 0;
    int e = 0, i;
    if (isnan(x) || x < 0) {
        return NAN;
    }
    if (x == 0) {
        return -INFINITY;
    }
    if (x == INFINITY) {
        return INFINITY;
    }
    while (x > 1.5) {
        x /= 2;
        e++;
    }
    while (x < 0.75) {
        x *= 2;
        e--;
    }
    /* log x = 2 atanh((x - 1) / (x + 1)), |t| <= 0.2 here. */
    t = (x - 1) / (x + 1);
    t2 = t * t;
    term = t;
    for (i = 1; i < 60; i += 2) {
        sum += term / i;
        term *= t2;
    }
    return 2 * sum + e * 0.69314718055994530941723212145818;
}

static double pow2(int e) {
    double r = 1;
    for (; e > 0; e--) {
        r *= 2;
    }
    for (; e < 0; e++) {
        r /= 2;
    }
    return r;
}

static double half_to_double(uint16_t h) {
    int e = (h >> 10) & 31;
    double m = h & 1023, v;
    if (e == 31) {
        v = m == 0 ? INFINITY : NAN;
    } else if (e == 0) {
        v = m * pow2(-24);
    } else {
        v = (1024 + m) * pow2(e - 25);
    }
    return (h & 0x8000) ? -v : v;
}

static int popcount8(unsigned x) {
    int n = 0;
    for (; x; x &= x - 1) {
        n++;
    }
    return n;
}

static double ref_kl(const double *p, const double *q, size_t dim) {
    double s = 0;
    size_t i;
    for (i = 0; i < dim; i++) {
        if (p[i] > 0) {
            s += p[i] * ref_log(p[i] / q[i]);
        } else if (isnan(p[i])) {
            s += NAN;
        }
    }
    return s;
}

/* The metric between two vectors of `dim` elements, as the documentation defines it. */
static double ref_metric(uint32_t metric, const double *a, const double *b, size_t dim) {
    double dot = 0, na = 0, nb = 0, l2sq = 0, *m;
    size_t i;
    for (i = 0; i < dim; i++) {
        dot += a[i] * b[i];
        na += a[i] * a[i];
        nb += b[i] * b[i];
        l2sq += (a[i] - b[i]) * (a[i] - b[i]);
    }
    switch (metric) {
    case NPK_METRIC_DOT:
    case NPK_METRIC_INNER:
        return dot;
    case NPK_METRIC_COSINE:
        return na == 0 || nb == 0 ? 0.0 : dot / (ref_sqrt(na) * ref_sqrt(nb));
    case NPK_METRIC_L2:
        return ref_sqrt(l2sq);
    case NPK_METRIC_L2SQ:
        return l2sq;
    case NPK_METRIC_HAMMING:
    case NPK_METRIC_JACCARD: {
        int diff = 0, both = 0, either = 0;
        for (i = 0; i < dim; i++) {
            unsigned x = (unsigned)a[i], y = (unsigned)b[i];
            diff += popcount8(x ^ y);
            both += popcount8(x & y);
            either += popcount8(x | y);
        }
        if (metric == NPK_METRIC_HAMMING) {
            return diff;
        }
        return either == 0 ? 0.0 : 1.0 - (double)both / either;
    }
    case NPK_METRIC_KL:
        return ref_kl(a, b, dim);
    case NPK_METRIC_JS: {
        double r;
        m = (double *)malloc(dim * sizeof(double) + 1);
        for (i = 0; i < dim; i++) {
            m[i] = (a[i] + b[i]) / 2;
        }
        r = 0.5 * ref_kl(a, m, dim) + 0.5 * ref_kl(b, m, dim);
        free(m);
        return r;
    }
    default:
        return NAN;
    }
}

/* Element i of a vector matrix, as a double. */
static double element(const npk_vectors *v, size_t i) {
    switch (v->dtype) {
    case NPK_DTYPE_FLOAT32:
        return ((const float *)v->data)[i];
    case NPK_DTYPE_FLOAT64:
        return ((const double *)v->data)[i];
    case NPK_DTYPE_FLOAT16:
        return half_to_double(((const uint16_t *)v->data)[i]);
    case NPK_DTYPE_INT8:
        return ((const int8_t *)v->data)[i];
    case NPK_DTYPE_UINT8:
        return ((const uint8_t *)v->data)[i];
    default:
        return NAN;
    }
}

/* The reference scores of every row of `q` against every row of `c`, Q × N. */
static double *ref_scores(uint32_t metric, const npk_vectors *q, const npk_vectors *c) {
    size_t Q = (size_t)q->rows, N = (size_t)c->rows, dim = (size_t)c->dim, i, j, e;
    double *out = (double *)malloc(Q * N * sizeof(double) + 1);
    double *a = (double *)malloc(dim * sizeof(double) + 1);
    double *b = (double *)malloc(dim * sizeof(double) + 1);
    for (i = 0; i < Q; i++) {
        for (e = 0; e < dim; e++) {
            a[e] = element(q, i * dim + e);
        }
        for (j = 0; j < N; j++) {
            for (e = 0; e < dim; e++) {
                b[e] = element(c, j * dim + e);
            }
            out[i * N + j] = ref_metric(metric, a, b, dim);
        }
    }
    free(a);
    free(b);
    return out;
}

static int close_to(double got, double want, double tol) {
    double diff, scale;
    if (isnan(want)) {
        return isnan(got);
    }
    if (want == INFINITY || want == -INFINITY) {
        return got == want;
    }
    diff = got > want ? got - want : want - got;
    scale = want > 1 ? want : (want < -1 ? -want : 1);
    return diff <= tol * scale;
}

/* The ranking rule, for qsort: similarities descending, distances ascending, NaN last,
 * equal scores by lower index. */
static const double *rank_scores;
static int rank_similarity;

static int rank_cmp(const void *pa, const void *pb) {
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    double x = rank_scores[a], y = rank_scores[b];
    if (isnan(x) != isnan(y)) {
        return isnan(x) ? 1 : -1;
    }
    if (!isnan(x) && x != y) {
        return (rank_similarity ? x > y : x < y) ? -1 : 1;
    }
    return a < b ? -1 : (a > b ? 1 : 0);
}

/* All N candidate indices, best first for scores `all`. */
static uint64_t *ref_order(uint32_t metric, const double *all, size_t n) {
    uint64_t *order = (uint64_t *)malloc(n * sizeof(uint64_t) + 1);
    size_t i;
    for (i = 0; i < n; i++) {
        order[i] = i;
    }
    rank_scores = all;
    rank_similarity = npk_metric_is_similarity(metric);
    qsort(order, n, sizeof(uint64_t), rank_cmp);
    return order;
}

/* Checks one query's `kk` results against the reference scores `all` of its N
 * candidates. `exact`: indices must equal the reference's (scores with exact ties);
 * otherwise a different index must have a score within `tol` of the reference's. */
static int top_k_matches(uint32_t metric, const double *all, size_t n, const uint64_t *idx,
                         const double *scores, size_t kk, double tol, int exact) {
    uint64_t *order = ref_order(metric, all, n);
    char *seen = (char *)calloc(n + 1, 1);
    size_t j;
    int ok = 1;
    for (j = 0; j < kk && ok; j++) {
        uint64_t i = idx[j];
        if (i >= n || seen[i]) {
            fprintf(stderr, "  entry %zu: index %llu out of range or repeated\n", j,
                    (unsigned long long)i);
            ok = 0;
            break;
        }
        seen[i] = 1;
        if (!close_to(scores[j], all[i], tol) || !close_to(scores[j], all[order[j]], tol) ||
            (exact && i != order[j]) || (!exact && !close_to(all[i], all[order[j]], tol))) {
            fprintf(stderr, "  entry %zu: got index %llu score %.17g, want index %llu score %.17g\n",
                    j, (unsigned long long)i, scores[j], (unsigned long long)order[j],
                    all[order[j]]);
            ok = 0;
        }
    }
    free(order);
    free(seen);
    return ok;
}

/* The descriptor of row `r` of `v`. */
static npk_vectors row_of(const npk_vectors *v, uint64_t r) {
    npk_vectors one = *v;
    one.data = (const char *)v->data + r * v->dim * npk_dtype_size(v->dtype);
    one.rows = 1;
    return one;
}

/* ------------------------------------------------------------------------------------ */
/* Test data. */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t next_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

/* Uniform in [lo, hi). */
static double uniform(double lo, double hi) {
    return lo + (hi - lo) * (next_u32() / 4294967296.0);
}

enum { SIGNED, POSITIVE, SMALL_INTS };

/* `rows × dim` random elements of `dtype`: SIGNED in [-1, 1) (full range for integers),
 * POSITIVE in [0.05, 1) (1.. for integers; for kl and js), or SMALL_INTS in -2..2
 * (many exact ties). */
static npk_vectors make(uint32_t dtype, uint64_t rows, uint64_t dim, int kind) {
    size_t n = (size_t)(rows * dim), i;
    npk_vectors v;
    void *data = malloc(n * npk_dtype_size(dtype) + 8);
    for (i = 0; i < n; i++) {
        double x = kind == SMALL_INTS ? (double)(int)(next_u32() % 5) - 2
                   : kind == POSITIVE ? uniform(0.05, 1.0)
                                      : uniform(-1.0, 1.0);
        switch (dtype) {
        case NPK_DTYPE_FLOAT32:
            ((float *)data)[i] = (float)x;
            break;
        case NPK_DTYPE_FLOAT64:
            ((double *)data)[i] = x;
            break;
        case NPK_DTYPE_FLOAT16: {
            /* A random normal half in [0.25, 4) (or its negative), built from its bits. */
            uint16_t sign = kind == SIGNED ? (uint16_t)((next_u32() & 1) << 15) : 0;
            uint16_t exp = (uint16_t)(13 + next_u32() % 4);
            ((uint16_t *)data)[i] = (uint16_t)(sign | exp << 10 | (next_u32() & 1023));
            break;
        }
        case NPK_DTYPE_INT8:
            ((int8_t *)data)[i] = kind == SMALL_INTS ? (int8_t)x
                                  : kind == POSITIVE ? (int8_t)(1 + next_u32() % 127)
                                                     : (int8_t)(int)(next_u32() % 256 - 128);
            break;
        case NPK_DTYPE_UINT8:
            ((uint8_t *)data)[i] = kind == POSITIVE ? (uint8_t)(1 + next_u32() % 255)
                                                    : (uint8_t)(next_u32() % 256);
            break;
        default:
            break;
        }
    }
    v.data = data;
    v.dtype = dtype;
    v.rows = rows;
    v.dim = dim;
    return v;
}

static void release(npk_vectors *v) {
    free((void *)v->data);
    v->data = NULL;
}

/* ------------------------------------------------------------------------------------ */

static void test_metric_names(void) {
    static const struct {
        uint32_t code;
        const char *name;
        int similarity;
        const char *aliases[4];
    } table[] = {
        {NPK_METRIC_DOT, "dot", 1, {"dot_product", "DotProduct", "DOT", NULL}},
        {NPK_METRIC_INNER, "inner", 1, {"inner_product", "Inner", NULL, NULL}},
        {NPK_METRIC_COSINE, "cosine", 1, {"cos", "COSINE_similarity", "Cosine", NULL}},
        {NPK_METRIC_L2, "l2", 0, {"euclidean", "Euclidean", "L2_DISTANCE", NULL}},
        {NPK_METRIC_L2SQ, "l2sq", 0, {"l2_squared", "Squared_Euclidean", "L2SQ", NULL}},
        {NPK_METRIC_HAMMING, "hamming", 0, {"HAMMING", NULL, NULL, NULL}},
        {NPK_METRIC_JACCARD, "jaccard", 0, {"Jaccard", NULL, NULL, NULL}},
        {NPK_METRIC_KL, "kl", 0, {"kl_divergence", "KL", NULL, NULL}},
        {NPK_METRIC_JS, "js", 0, {"js_divergence", "JS_Divergence", NULL, NULL}},
    };
    static const char *unknown[] = {"manhattan", "", "cos ine", "l2 ", "dot\t", "\xff\xfe"};
    size_t i, j;
    uint32_t code;

    for (i = 0; i < sizeof table / sizeof table[0]; i++) {
        CHECK(table[i].code == i);
        CHECK(npk_metric_name(table[i].code) != NULL);
        if (npk_metric_name(table[i].code) != NULL) {
            CHECK_STR(npk_metric_name(table[i].code), table[i].name);
        }
        CHECK(npk_metric_is_similarity(table[i].code) == (table[i].similarity != 0));
        code = 99;
        CHECK_OK(npk_metric_parse(table[i].name, &code));
        CHECK(code == table[i].code);
        for (j = 0; j < 4 && table[i].aliases[j] != NULL; j++) {
            code = 99;
            CHECK_OK(npk_metric_parse(table[i].aliases[j], &code));
            CHECK(code == table[i].code);
        }
    }
    CHECK(npk_metric_name(9) == NULL);
    CHECK(npk_metric_name(0xFFFFFFFFu) == NULL);
    CHECK(!npk_metric_is_similarity(9));
    CHECK(!npk_metric_is_similarity(0xFFFFFFFFu));

    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        code = 77;
        CHECK_STATUS(npk_metric_parse(unknown[i], &code), NPK_STATUS_INVALID_ARGUMENT);
        CHECK(code == 77);
    }
    /* The message names the bad input and lists the valid names. */
    CHECK_STATUS(npk_metric_parse("manhattan", &code), NPK_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(npk_last_error_message(), "manhattan") != NULL);
    CHECK(strstr(npk_last_error_message(), "cosine") != NULL);
    CHECK(strstr(npk_last_error_message(), "l2sq") != NULL);
    /* Name lookups do not touch the last-error message. */
    CHECK(npk_metric_name(3) != NULL && !npk_metric_is_similarity(3));
    CHECK(strstr(npk_last_error_message(), "manhattan") != NULL);

    CHECK_STATUS(npk_metric_parse(NULL, &code), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_metric_parse("dot", NULL), NPK_STATUS_NULL_ARGUMENT);
}

static void test_capabilities(void) {
    const char *caps = npk_vector_capabilities();
    CHECK(caps != NULL);
    if (caps != NULL) {
        CHECK(strstr(caps, "kernels") != NULL);
        CHECK_STR(caps, npk_vector_capabilities());
    }
}

/* Scores, top-k (many queries and one at a time) and distances of `q` against `c` with
 * `metric`, against the reference computed from `ref_q` (the queries as the library
 * sees them after any dtype conversion; usually `q` itself). */
static void check_search(const char *label, uint32_t metric, const npk_vectors *q,
                         const npk_vectors *ref_q, const npk_vectors *c, double tol, int exact) {
    size_t Q = (size_t)q->rows, N = (size_t)c->rows, i, j, ki;
    double *ref = ref_scores(metric, ref_q, c);
    double *got = (double *)malloc(Q * N * sizeof(double) + 1);
    /* k far above N, up to UINT64_MAX, is clamped to N. */
    uint64_t ks[] = {0, 1, 5, N, N + 3, (uint64_t)1 << 40, UINT64_MAX};
    int bad = 0;

    /* The full score matrix. */
    CHECK_OK(npk_vector_scores(metric, q, c, got, Q * N));
    for (i = 0; i < Q * N && bad < 3; i++) {
        if (!close_to(got[i], ref[i], tol)) {
            fprintf(stderr, "%s %s: score %zu is %.17g, want %.17g\n", label,
                    npk_metric_name(metric), i, got[i], ref[i]);
            bad++;
        }
    }
    CHECK(bad == 0);

    /* One distance per query. */
    for (i = 0; i < Q; i++) {
        npk_vectors a = row_of(q, i), b = row_of(c, (i * 7) % N);
        double d = -12345;
        CHECK_OK(npk_vector_distance(metric, &a, &b, &d));
        CHECK(close_to(d, ref[i * N + (i * 7) % N], tol));
    }

    for (ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        uint64_t k = ks[ki], kk = 12345;
        size_t want_kk = k < N ? (size_t)k : N, len = Q * want_kk;
        uint64_t *idx = (uint64_t *)malloc((len + 1) * sizeof(uint64_t));
        double *scores = (double *)malloc((len + 1) * sizeof(double));
        idx[len] = 777;
        scores[len] = 777;
        CHECK_OK(npk_vector_top_k(metric, q, c, k, idx, scores, len, &kk));
        CHECK(kk == want_kk);
        CHECK(idx[len] == 777 && scores[len] == 777); /* nothing written past Q × kk */
        for (i = 0; i < Q; i++) {
            int ok = top_k_matches(metric, ref + i * N, N, idx + i * want_kk,
                                   scores + i * want_kk, want_kk, tol, exact);
            if (!ok) {
                fprintf(stderr, "%s %s: query %zu, k %llu differs from the reference\n", label,
                        npk_metric_name(metric), i, (unsigned long long)k);
            }
            CHECK(ok);
        }
        /* One query at a time gives exactly the rows of the many-query search. */
        if (k == 5 || k == N) {
            uint64_t *one_idx = (uint64_t *)malloc((want_kk + 1) * sizeof(uint64_t));
            double *one_scores = (double *)malloc((want_kk + 1) * sizeof(double));
            for (i = 0; i < Q; i++) {
                npk_vectors one = row_of(q, i);
                uint64_t one_kk = 0;
                CHECK_OK(npk_vector_top_k(metric, &one, c, k, one_idx, one_scores, want_kk,
                                          &one_kk));
                CHECK(one_kk == want_kk);
                for (j = 0; j < want_kk; j++) {
                    if (one_idx[j] != idx[i * want_kk + j] ||
                        memcmp(&one_scores[j], &scores[i * want_kk + j], sizeof(double)) != 0) {
                        break;
                    }
                }
                CHECK(j == want_kk);
            }
            free(one_idx);
            free(one_scores);
        }
        free(idx);
        free(scores);
    }
    free(ref);
    free(got);
}

static void test_every_dtype_and_metric(void) {
    static const uint32_t float_metrics[] = {NPK_METRIC_DOT, NPK_METRIC_INNER,
                                             NPK_METRIC_COSINE, NPK_METRIC_L2,
                                             NPK_METRIC_L2SQ};
    static const struct {
        uint32_t dtype;
        double tol;
    } floats[] = {
        {NPK_DTYPE_FLOAT32, 1e-4}, {NPK_DTYPE_FLOAT64, 1e-10}, {NPK_DTYPE_FLOAT16, 1e-4}};
    size_t d, m;
    /* Q = 9 takes the blocked many-query path for the float metrics, Q = 3 the direct one;
     * 257 candidates of 19 elements leave partial blocks and vector tails. */
    uint64_t qs[] = {9, 3};
    size_t qi;

    for (d = 0; d < sizeof floats / sizeof floats[0]; d++) {
        for (qi = 0; qi < 2; qi++) {
            npk_vectors c = make(floats[d].dtype, 257, 19, SIGNED);
            npk_vectors q = make(floats[d].dtype, qs[qi], 19, SIGNED);
            npk_vectors cp = make(floats[d].dtype, 257, 19, POSITIVE);
            npk_vectors qp = make(floats[d].dtype, qs[qi], 19, POSITIVE);
            const char *label = npk_dtype_name(floats[d].dtype);
            for (m = 0; m < sizeof float_metrics / sizeof float_metrics[0]; m++) {
                check_search(label, float_metrics[m], &q, &q, &c, floats[d].tol, 0);
            }
            check_search(label, NPK_METRIC_KL, &qp, &qp, &cp, floats[d].tol, 0);
            check_search(label, NPK_METRIC_JS, &qp, &qp, &cp, floats[d].tol, 0);
            release(&c);
            release(&q);
            release(&cp);
            release(&qp);
        }
    }

    /* int8 and uint8 are computed exactly in integers: dot and l2sq scores are whole
     * numbers, so ties are exact and indices must match the reference exactly. */
    {
        uint32_t ints[] = {NPK_DTYPE_INT8, NPK_DTYPE_UINT8};
        for (d = 0; d < 2; d++) {
            npk_vectors c = make(ints[d], 300, 13, SIGNED);
            npk_vectors q = make(ints[d], 9, 13, SIGNED);
            npk_vectors cp = make(ints[d], 300, 13, POSITIVE);
            npk_vectors qp = make(ints[d], 2, 13, POSITIVE);
            const char *label = npk_dtype_name(ints[d]);
            check_search(label, NPK_METRIC_DOT, &q, &q, &c, 0, 1);
            check_search(label, NPK_METRIC_L2SQ, &q, &q, &c, 0, 1);
            check_search(label, NPK_METRIC_COSINE, &q, &q, &c, 1e-12, 0);
            check_search(label, NPK_METRIC_L2, &q, &q, &c, 1e-12, 0);
            check_search(label, NPK_METRIC_KL, &qp, &qp, &cp, 1e-10, 0);
            check_search(label, NPK_METRIC_JS, &qp, &qp, &cp, 1e-10, 0);
            release(&c);
            release(&q);
            release(&cp);
            release(&qp);
        }
    }
}

static void test_bit_metrics(void) {
    /* 16 bytes = 128 packed bits per vector; hamming distances are whole numbers. */
    npk_vectors c = make(NPK_DTYPE_UINT8, 200, 16, SIGNED);
    npk_vectors q = make(NPK_DTYPE_UINT8, 4, 16, SIGNED);
    uint8_t zeros[2][3] = {{0, 0, 0}, {0, 0, 0}}, bits[2][3] = {{0xF0, 0x01, 0}, {0xFF, 0, 0}};
    npk_vectors z0 = {zeros[0], NPK_DTYPE_UINT8, 1, 3}, z1 = {zeros[1], NPK_DTYPE_UINT8, 1, 3};
    npk_vectors b0 = {bits[0], NPK_DTYPE_UINT8, 1, 3}, b1 = {bits[1], NPK_DTYPE_UINT8, 1, 3};
    float f[3] = {1, 0, 0};
    npk_vectors fv = {f, NPK_DTYPE_FLOAT32, 1, 3};
    int8_t s8[3] = {1, 0, 0};
    npk_vectors iv = {s8, NPK_DTYPE_INT8, 1, 3};
    double d = -1;

    check_search("uint8", NPK_METRIC_HAMMING, &q, &q, &c, 0, 1);
    check_search("uint8", NPK_METRIC_JACCARD, &q, &q, &c, 1e-12, 0);
    release(&c);
    release(&q);

    /* Hand-computed: 0xF0,0x01 vs 0xFF: differing bits 4 + 1, |a∧b| = 4, |a∨b| = 9. */
    CHECK_OK(npk_vector_distance(NPK_METRIC_HAMMING, &b0, &b1, &d));
    CHECK(d == 5);
    CHECK_OK(npk_vector_distance(NPK_METRIC_JACCARD, &b0, &b1, &d));
    CHECK(close_to(d, 1.0 - 4.0 / 9.0, 1e-15));
    CHECK_OK(npk_vector_distance(NPK_METRIC_JACCARD, &z0, &z1, &d));
    CHECK(d == 0); /* both zero: 0, not NaN */
    CHECK_OK(npk_vector_distance(NPK_METRIC_JACCARD, &z0, &b1, &d));
    CHECK(d == 1);
    CHECK_OK(npk_vector_distance(NPK_METRIC_HAMMING, &z0, &z1, &d));
    CHECK(d == 0);

    /* Only uint8, on both sides. */
    d = -1;
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_HAMMING, &fv, &fv, &d),
                 NPK_STATUS_DTYPE_MISMATCH);
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_JACCARD, &b0, &fv, &d),
                 NPK_STATUS_DTYPE_MISMATCH);
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_HAMMING, &iv, &iv, &d),
                 NPK_STATUS_DTYPE_MISMATCH);
    CHECK(d == -1);
}

static void test_kl_js_edges(void) {
    double p[2] = {0.5, 0.5}, q[2] = {1.0, 0.0}, r[2] = {0.0, 1.0}, d = 0;
    npk_vectors pv = {p, NPK_DTYPE_FLOAT64, 1, 2}, qv = {q, NPK_DTYPE_FLOAT64, 1, 2};
    npk_vectors rv = {r, NPK_DTYPE_FLOAT64, 1, 2};
    const double ln2 = 0.69314718055994530941723212145818;

    /* p > 0 = q gives +inf; p = 0 terms count 0. */
    CHECK_OK(npk_vector_distance(NPK_METRIC_KL, &pv, &qv, &d));
    CHECK(d == INFINITY);
    CHECK_OK(npk_vector_distance(NPK_METRIC_KL, &qv, &pv, &d));
    CHECK(close_to(d, ln2, 1e-15));
    CHECK_OK(npk_vector_distance(NPK_METRIC_KL, &pv, &pv, &d));
    CHECK(d == 0);
    /* JS of disjoint distributions is ln 2 (the divergence, not its square root). */
    CHECK_OK(npk_vector_distance(NPK_METRIC_JS, &qv, &rv, &d));
    CHECK(close_to(d, ln2, 1e-15));
    CHECK_OK(npk_vector_distance(NPK_METRIC_JS, &pv, &qv, &d));
    CHECK(close_to(d, ref_metric(NPK_METRIC_JS, p, q, 2), 1e-15));
}

static void test_ties_nan_and_zero_vectors(void) {
    /* Integer-valued float32 data: dot and l2sq are exact, so ties are exact. */
    npk_vectors c = make(NPK_DTYPE_FLOAT32, 200, 4, SMALL_INTS);
    npk_vectors q = make(NPK_DTYPE_FLOAT32, 9, 4, SMALL_INTS);
    float cands[5][2] = {{1, 0}, {0, 1}, {1, 0}, {NAN, 0}, {1, 0}}, query[2] = {1, 0};
    float zero[2] = {0, 0};
    npk_vectors cv = {cands, NPK_DTYPE_FLOAT32, 5, 2}, qv = {query, NPK_DTYPE_FLOAT32, 1, 2};
    npk_vectors zv = {zero, NPK_DTYPE_FLOAT32, 1, 2};
    uint64_t idx[5], kk = 0, want[5] = {0, 2, 4, 1, 3};
    double scores[5], d = -1;
    size_t i;

    check_search("small-int float32", NPK_METRIC_DOT, &q, &q, &c, 0, 1);
    check_search("small-int float32", NPK_METRIC_L2SQ, &q, &q, &c, 0, 1);
    release(&c);
    release(&q);

    /* Equal scores by lower index; the NaN row last, for a similarity and a distance. */
    CHECK_OK(npk_vector_top_k(NPK_METRIC_DOT, &qv, &cv, 5, idx, scores, 5, &kk));
    CHECK(kk == 5);
    for (i = 0; i < 5; i++) {
        CHECK(idx[i] == want[i]);
    }
    CHECK(scores[0] == 1 && scores[3] == 0 && isnan(scores[4]));
    CHECK_OK(npk_vector_top_k(NPK_METRIC_L2SQ, &qv, &cv, 5, idx, scores, 5, &kk));
    for (i = 0; i < 5; i++) {
        CHECK(idx[i] == want[i]);
    }
    CHECK(scores[0] == 0 && scores[3] == 2 && isnan(scores[4]));
    /* k = 4 keeps the NaN out. */
    CHECK_OK(npk_vector_top_k(NPK_METRIC_COSINE, &qv, &cv, 4, idx, scores, 4, &kk));
    CHECK(kk == 4 && idx[0] == 0 && idx[3] == 1);

    /* Cosine with a zero vector is 0, on either side. */
    CHECK_OK(npk_vector_distance(NPK_METRIC_COSINE, &zv, &qv, &d));
    CHECK(d == 0);
    CHECK_OK(npk_vector_distance(NPK_METRIC_COSINE, &qv, &zv, &d));
    CHECK(d == 0);
    CHECK_OK(npk_vector_distance(NPK_METRIC_COSINE, &zv, &zv, &d));
    CHECK(d == 0);
}

static void test_mixed_dtypes(void) {
    npk_vectors c = make(NPK_DTYPE_FLOAT32, 60, 8, SIGNED);
    npk_vectors q64 = make(NPK_DTYPE_FLOAT64, 3, 8, SIGNED);
    npk_vectors q8 = make(NPK_DTYPE_INT8, 3, 8, SIGNED);
    npk_vectors c8 = make(NPK_DTYPE_INT8, 10, 8, SIGNED);
    npk_vectors u8 = make(NPK_DTYPE_UINT8, 1, 8, SIGNED);
    float q32[24];
    npk_vectors rq = {q32, NPK_DTYPE_FLOAT32, 3, 8};
    npk_vectors c64 = make(NPK_DTYPE_FLOAT64, 60, 8, SIGNED);
    npk_vectors one32 = {q32, NPK_DTYPE_FLOAT32, 1, 8};
    uint64_t idx[4], kk = 9;
    double scores[4], d = -1;
    size_t i;

    /* A float64 query is rounded to the float32 candidates' type. */
    for (i = 0; i < 24; i++) {
        q32[i] = (float)((const double *)q64.data)[i];
    }
    check_search("float64 query, float32 candidates", NPK_METRIC_COSINE, &q64, &rq, &c, 1e-4, 0);
    check_search("float64 query, float32 candidates", NPK_METRIC_L2SQ, &q64, &rq, &c, 1e-4, 0);
    /* A float32 query is widened exactly to float64 candidates. */
    check_search("float32 query, float64 candidates", NPK_METRIC_DOT, &rq, &rq, &c64, 1e-5, 0);
    /* An int8 query against float candidates is converted exactly. */
    check_search("int8 query, float32 candidates", NPK_METRIC_DOT, &q8, &q8, &c, 1e-4, 0);

    /* Integer candidates need a query of the same dtype. */
    CHECK_STATUS(npk_vector_top_k(NPK_METRIC_DOT, &one32, &c8, 2, idx, scores, 4, &kk),
                 NPK_STATUS_DTYPE_MISMATCH);
    CHECK_STATUS(npk_vector_top_k(NPK_METRIC_DOT, &u8, &c8, 2, idx, scores, 4, &kk),
                 NPK_STATUS_DTYPE_MISMATCH);
    CHECK(kk == 9);
    {
        npk_vectors c8_row = row_of(&c8, 0);
        CHECK_STATUS(npk_vector_distance(NPK_METRIC_L2, &one32, &c8_row, &d),
                     NPK_STATUS_DTYPE_MISMATCH);
    }
    CHECK(d == -1);
    release(&c);
    release(&q64);
    release(&q8);
    release(&c8);
    release(&u8);
    release(&c64);
}

static void test_k_and_layout(void) {
    npk_vectors c = make(NPK_DTYPE_FLOAT32, 4, 3, SIGNED);
    npk_vectors q = make(NPK_DTYPE_FLOAT32, 3, 3, SIGNED);
    npk_vectors none = {NULL, NPK_DTYPE_FLOAT32, 0, 3};
    uint64_t idx[40], kk;
    double scores[40], out[12];
    size_t i;
    int seen[4];

    /* k > N: kk = N per query, written compactly at q * kk; sizing Q * k is enough. */
    for (i = 0; i < 40; i++) {
        idx[i] = 999;
        scores[i] = -999;
    }
    kk = 0;
    CHECK_OK(npk_vector_top_k(NPK_METRIC_L2, &q, &c, 10, idx, scores, 30, &kk));
    CHECK(kk == 4);
    for (i = 0; i < 3; i++) {
        size_t j;
        memset(seen, 0, sizeof seen);
        for (j = 0; j < 4; j++) {
            if (idx[i * 4 + j] < 4) {
                seen[idx[i * 4 + j]]++;
            }
            if (j > 0) {
                CHECK(scores[i * 4 + j - 1] <= scores[i * 4 + j]);
            }
        }
        CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1);
    }
    CHECK(idx[12] == 999 && scores[12] == -999);

    /* k = 0: nothing written, kk = 0; NULL outputs are fine when out_len is 0. */
    kk = 5;
    CHECK_OK(npk_vector_top_k(NPK_METRIC_L2, &q, &c, 0, idx, scores, 40, &kk));
    CHECK(kk == 0 && idx[12] == 999);
    kk = 5;
    CHECK_OK(npk_vector_top_k(NPK_METRIC_L2, &q, &c, 0, NULL, NULL, 0, &kk));
    CHECK(kk == 0);
    /* No candidates: kk = 0; scores of nothing is fine. */
    kk = 5;
    CHECK_OK(npk_vector_top_k(NPK_METRIC_COSINE, &q, &none, 3, NULL, NULL, 0, &kk));
    CHECK(kk == 0);
    CHECK_OK(npk_vector_scores(NPK_METRIC_COSINE, &q, &none, NULL, 0));
    /* No queries: kk = min(k, N), nothing written. */
    kk = 0;
    CHECK_OK(npk_vector_top_k(NPK_METRIC_DOT, &none, &c, 2, NULL, NULL, 0, &kk));
    CHECK(kk == 2);
    CHECK_OK(npk_vector_scores(NPK_METRIC_DOT, &none, &c, NULL, 0));

    /* Output sizes: top-k needs at least Q × kk; scores exactly Q × N. */
    kk = 77;
    CHECK_STATUS(npk_vector_top_k(NPK_METRIC_L2, &q, &c, 2, idx, scores, 5, &kk),
                 NPK_STATUS_BUFFER_SIZE);
    CHECK(kk == 77);
    CHECK_OK(npk_vector_top_k(NPK_METRIC_L2, &q, &c, 2, idx, scores, 6, &kk));
    CHECK(kk == 2);
    CHECK_STATUS(npk_vector_scores(NPK_METRIC_L2, &q, &c, out, 11), NPK_STATUS_BUFFER_SIZE);
    CHECK_STATUS(npk_vector_scores(NPK_METRIC_L2, &q, &c, scores, 13), NPK_STATUS_BUFFER_SIZE);
    CHECK_OK(npk_vector_scores(NPK_METRIC_L2, &q, &c, out, 12));
    release(&c);
    release(&q);
}

static void test_bad_arguments(void) {
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    union {
        double align;
        char bytes[64];
    } buf;
    npk_vectors one = {a, NPK_DTYPE_FLOAT32, 1, 4};
    npk_vectors two = {a, NPK_DTYPE_FLOAT32, 2, 4};
    npk_vectors dim3 = {a, NPK_DTYPE_FLOAT32, 1, 3};
    npk_vectors v;
    uint64_t idx[4], kk = 42, n = 42;
    double scores[4], out = -1;

    memset(&buf, 0, sizeof buf);

    /* NULL arguments. */
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_DOT, NULL, &one, &out), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_DOT, &one, NULL, &out), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_DOT, &one, &one, NULL), NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_vector_scores(NPK_METRIC_DOT, NULL, &two, scores, 2),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_vector_scores(NPK_METRIC_DOT, &one, NULL, scores, 2),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_vector_scores(NPK_METRIC_DOT, &one, &two, NULL, 2),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_vector_top_k(NPK_METRIC_DOT, NULL, &two, 1, idx, scores, 4, &kk),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_vector_top_k(NPK_METRIC_DOT, &one, NULL, 1, idx, scores, 4, &kk),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_vector_top_k(NPK_METRIC_DOT, &one, &two, 1, NULL, scores, 4, &kk),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_vector_top_k(NPK_METRIC_DOT, &one, &two, 1, idx, NULL, 4, &kk),
                 NPK_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(npk_vector_top_k(NPK_METRIC_DOT, &one, &two, 1, idx, scores, 4, NULL),
                 NPK_STATUS_NULL_ARGUMENT);
    v = one;
    v.data = NULL; /* NULL data with rows > 0 */
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_DOT, &v, &one, &out), NPK_STATUS_NULL_ARGUMENT);
    CHECK(out == -1 && kk == 42);

    /* Unknown metric codes. */
    CHECK_STATUS(npk_vector_distance(9, &one, &one, &out), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_vector_scores(0xFFFFFFFFu, &one, &two, scores, 2),
                 NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_vector_top_k(99, &one, &two, 1, idx, scores, 4, &kk),
                 NPK_STATUS_INVALID_ARGUMENT);

    /* Dimensions that differ; distance takes one row each. */
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_L2, &dim3, &one, &out), NPK_STATUS_SHAPE_MISMATCH);
    CHECK_STATUS(npk_vector_scores(NPK_METRIC_L2, &dim3, &two, scores, 2),
                 NPK_STATUS_SHAPE_MISMATCH);
    CHECK_STATUS(npk_vector_top_k(NPK_METRIC_L2, &dim3, &two, 1, idx, scores, 4, &kk),
                 NPK_STATUS_SHAPE_MISMATCH);
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_L2, &two, &one, &out), NPK_STATUS_SHAPE_MISMATCH);
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_L2, &one, &two, &out), NPK_STATUS_SHAPE_MISMATCH);
    CHECK(out == -1 && kk == 42);

    /* Bad descriptors: dtype outside the five, unknown dtype code, dim 0, a size that
     * overflows, misaligned data. */
    v = one;
    v.dtype = NPK_DTYPE_INT32;
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_DOT, &v, &v, &out), NPK_STATUS_DTYPE_MISMATCH);
    v.dtype = NPK_DTYPE_BOOL;
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_DOT, &one, &v, &out), NPK_STATUS_DTYPE_MISMATCH);
    v.dtype = 99;
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_DOT, &v, &one, &out), NPK_STATUS_INVALID_ARGUMENT);
    v = one;
    v.dim = 0;
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_DOT, &v, &v, &out), NPK_STATUS_INVALID_ARGUMENT);
    v = one;
    v.rows = UINT64_MAX;
    v.dim = 2;
    CHECK_STATUS(npk_vector_scores(NPK_METRIC_DOT, &v, &one, scores, 4),
                 NPK_STATUS_INVALID_ARGUMENT);
    v = one;
    v.data = buf.bytes + 1;
    CHECK_STATUS(npk_vector_distance(NPK_METRIC_DOT, &v, &one, &out), NPK_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(npk_vector_top_k(NPK_METRIC_DOT, &one, &two, 1, (uint64_t *)(void *)(buf.bytes + 1),
                                  scores, 2, &kk),
                 NPK_STATUS_INVALID_ARGUMENT);
    CHECK(out == -1 && kk == 42 && n == 42);
}

/* Stored arrays: candidates are the live rows, indices logical. */
static void test_store_search(void) {
    enum { ROWS = 40, DIM = 6, MORE = 5, LIVE = ROWS - 3 + MORE };
    char dir[4096];
    npk_store *s, *ro;
    float full[ROWS * DIM], extra[MORE * DIM], live[LIVE * DIM];
    int64_t del[3] = {3, 17, 39};
    uint64_t shape[3] = {ROWS, DIM, 0}, more_shape[2] = {MORE, DIM};
    npk_vectors q = make(NPK_DTYPE_FLOAT32, 9, DIM, SIGNED);
    npk_vectors one = row_of(&q, 0);
    npk_vectors lv = {live, NPK_DTYPE_FLOAT32, LIVE, DIM};
    uint64_t idx[9 * LIVE + 1], mem_idx[9 * LIVE + 1], kk, mem_kk, n;
    double scores[9 * LIVE + 1], mem_scores[9 * LIVE + 1];
    size_t i, r, m;
    uint32_t metrics[] = {NPK_METRIC_DOT, NPK_METRIC_COSINE, NPK_METRIC_L2SQ, NPK_METRIC_L2};
    char path[4200];

    for (i = 0; i < ROWS * DIM; i++) {
        full[i] = (float)uniform(-1, 1);
    }
    for (i = 0; i < MORE * DIM; i++) {
        extra[i] = (float)uniform(-1, 1);
    }
    /* The live rows: every row but 3, 17 and 39, then the appended ones. */
    for (r = 0, m = 0; r < ROWS; r++) {
        if (r != 3 && r != 17 && r != 39) {
            memcpy(live + m * DIM, full + r * DIM, DIM * sizeof(float));
            m++;
        }
    }
    memcpy(live + m * DIM, extra, sizeof extra);

    fresh_dir(dir, sizeof dir);
    s = new_store(dir, "vec.npk");
    CHECK_OK(npk_store_save(s, "emb", NPK_DTYPE_FLOAT32, 2, shape, full, sizeof full));
    CHECK_OK(npk_store_delete_rows(s, "emb", del, 3));
    CHECK_OK(npk_store_append(s, "emb", NPK_DTYPE_FLOAT32, 2, more_shape, extra, sizeof extra));

    for (m = 0; m < sizeof metrics / sizeof metrics[0]; m++) {
        double *ref = ref_scores(metrics[m], &q, &lv);
        /* Many queries, and k larger than the live rows. */
        uint64_t ks[] = {7, LIVE + 10};
        size_t ki;
        for (ki = 0; ki < 2; ki++) {
            size_t want = ks[ki] < LIVE ? (size_t)ks[ki] : LIVE;
            kk = 0;
            CHECK_OK(npk_store_top_k(s, "emb", metrics[m], &q, ks[ki], idx, scores, 9 * want, &kk));
            CHECK(kk == want);
            CHECK_OK(npk_vector_top_k(metrics[m], &q, &lv, ks[ki], mem_idx, mem_scores, 9 * want,
                                      &mem_kk));
            CHECK(memcmp(idx, mem_idx, 9 * want * sizeof(uint64_t)) == 0);
            CHECK(memcmp(scores, mem_scores, 9 * want * sizeof(double)) == 0);
            for (i = 0; i < 9; i++) {
                CHECK(top_k_matches(metrics[m], ref + i * LIVE, LIVE, idx + i * want,
                                    scores + i * want, want, 1e-4, 0));
            }
        }
        /* Scores of every live row; a longer out is fine and its tail untouched. */
        scores[9 * LIVE] = 555;
        n = 0;
        CHECK_OK(npk_store_scores(s, "emb", metrics[m], &q, scores, 9 * LIVE + 1, &n));
        CHECK(n == LIVE);
        CHECK(scores[9 * LIVE] == 555);
        CHECK_OK(npk_vector_scores(metrics[m], &q, &lv, mem_scores, 9 * LIVE));
        CHECK(memcmp(scores, mem_scores, 9 * LIVE * sizeof(double)) == 0);
        for (i = 0; i < 9 * LIVE; i++) {
            if (!close_to(scores[i], ref[i], 1e-4)) {
                break;
            }
        }
        CHECK(i == 9 * LIVE);
        free(ref);
    }

    /* The deleted rows never come back: an exact copy of physical row 17 (deleted) is
     * not found, while one of physical row 18 (logical 16) is found at distance 0. */
    {
        npk_vectors probe = {full + 17 * DIM, NPK_DTYPE_FLOAT32, 1, DIM};
        CHECK_OK(npk_store_top_k(s, "emb", NPK_METRIC_L2SQ, &probe, 1, idx, scores, 1, &kk));
        CHECK(kk == 1 && scores[0] > 0);
        probe.data = full + 18 * DIM;
        CHECK_OK(npk_store_top_k(s, "emb", NPK_METRIC_L2SQ, &probe, 1, idx, scores, 1, &kk));
        CHECK(kk == 1 && idx[0] == 16 && scores[0] == 0);
        probe.data = extra + 2 * DIM; /* appended rows come after the 37 surviving ones */
        CHECK_OK(npk_store_top_k(s, "emb", NPK_METRIC_L2SQ, &probe, 1, idx, scores, 1, &kk));
        CHECK(kk == 1 && idx[0] == ROWS - 3 + 2 && scores[0] == 0);
    }

    /* 1-D arrays are vectors of one element; N-D arrays' vectors are their rows. */
    {
        double flat[30], x = 0.25;
        npk_vectors qx = {&x, NPK_DTYPE_FLOAT64, 1, 1};
        uint64_t flat_shape[1] = {30}, cube_shape[3] = {ROWS, 2, 3};
        npk_vectors fv = {flat, NPK_DTYPE_FLOAT64, 30, 1};
        npk_vectors cube = {full, NPK_DTYPE_FLOAT32, ROWS, 6};
        for (i = 0; i < 30; i++) {
            flat[i] = uniform(-1, 1);
        }
        CHECK_OK(npk_store_save(s, "flat", NPK_DTYPE_FLOAT64, 1, flat_shape, flat, sizeof flat));
        CHECK_OK(npk_store_top_k(s, "flat", NPK_METRIC_L2, &qx, 4, idx, scores, 4, &kk));
        CHECK_OK(npk_vector_top_k(NPK_METRIC_L2, &qx, &fv, 4, mem_idx, mem_scores, 4, &mem_kk));
        CHECK(kk == 4 && memcmp(idx, mem_idx, 4 * sizeof(uint64_t)) == 0);
        CHECK_OK(npk_store_save(s, "cube", NPK_DTYPE_FLOAT32, 3, cube_shape, full, sizeof full));
        CHECK_OK(npk_store_top_k(s, "cube", NPK_METRIC_COSINE, &q, 3, idx, scores, 27, &kk));
        CHECK_OK(npk_vector_top_k(NPK_METRIC_COSINE, &q, &cube, 3, mem_idx, mem_scores, 27,
                                  &mem_kk));
        CHECK(kk == 3 && memcmp(idx, mem_idx, 27 * sizeof(uint64_t)) == 0);
        CHECK(memcmp(scores, mem_scores, 27 * sizeof(double)) == 0);
    }

    /* A float32 query against stored float16 rows is converted as in memory; packed bits. */
    {
        npk_vectors h = make(NPK_DTYPE_FLOAT16, 50, DIM, SIGNED);
        npk_vectors b = make(NPK_DTYPE_UINT8, 50, 4, SIGNED);
        npk_vectors bq = make(NPK_DTYPE_UINT8, 2, 4, SIGNED);
        uint64_t hshape[2] = {50, DIM}, bshape[2] = {50, 4};
        CHECK_OK(npk_store_save(s, "half", NPK_DTYPE_FLOAT16, 2, hshape, h.data, 50 * DIM * 2));
        CHECK_OK(npk_store_top_k(s, "half", NPK_METRIC_DOT, &q, 5, idx, scores, 45, &kk));
        CHECK_OK(npk_vector_top_k(NPK_METRIC_DOT, &q, &h, 5, mem_idx, mem_scores, 45, &mem_kk));
        CHECK(kk == 5 && memcmp(idx, mem_idx, 45 * sizeof(uint64_t)) == 0);
        CHECK_OK(npk_store_save(s, "bits", NPK_DTYPE_UINT8, 2, bshape, b.data, 200));
        CHECK_OK(npk_store_top_k(s, "bits", NPK_METRIC_HAMMING, &bq, 6, idx, scores, 12, &kk));
        CHECK_OK(npk_vector_top_k(NPK_METRIC_HAMMING, &bq, &b, 6, mem_idx, mem_scores, 12,
                                  &mem_kk));
        CHECK(kk == 6 && memcmp(idx, mem_idx, 12 * sizeof(uint64_t)) == 0);
        CHECK(memcmp(scores, mem_scores, 12 * sizeof(double)) == 0);
        CHECK_STATUS(npk_store_top_k(s, "emb", NPK_METRIC_HAMMING, &bq, 1, idx, scores, 2, &kk),
                     NPK_STATUS_DTYPE_MISMATCH);
        release(&h);
        release(&b);
        release(&bq);
    }

    /* k = 0, and an array whose rows are all deleted. */
    kk = 9;
    CHECK_OK(npk_store_top_k(s, "emb", NPK_METRIC_DOT, &q, 0, NULL, NULL, 0, &kk));
    CHECK(kk == 0);
    {
        float two[2 * DIM] = {0};
        uint64_t two_shape[2] = {2, DIM};
        int64_t both[2] = {0, 1};
        CHECK_OK(npk_store_save(s, "gone", NPK_DTYPE_FLOAT32, 2, two_shape, two, sizeof two));
        CHECK_OK(npk_store_delete_rows(s, "gone", both, 2));
        kk = 9;
        CHECK_OK(npk_store_top_k(s, "gone", NPK_METRIC_DOT, &q, 5, NULL, NULL, 0, &kk));
        CHECK(kk == 0);
        n = 9;
        CHECK_OK(npk_store_scores(s, "gone", NPK_METRIC_DOT, &q, NULL, 0, &n));
        CHECK(n == 0);
    }

    /* Errors. */
    {
        int32_t ints[4] = {1, 2, 3, 4};
        uint64_t ishape[2] = {2, 2};
        npk_vectors short_q = {live, NPK_DTYPE_FLOAT32, 1, DIM - 1};
        CHECK_OK(npk_store_save(s, "ints", NPK_DTYPE_INT32, 2, ishape, ints, sizeof ints));
        kk = n = 42;
        CHECK_STATUS(npk_store_top_k(s, "ints", NPK_METRIC_DOT, &one, 1, idx, scores, 1, &kk),
                     NPK_STATUS_DTYPE_MISMATCH);
        CHECK_STATUS(npk_store_top_k(s, "missing", NPK_METRIC_DOT, &one, 1, idx, scores, 1, &kk),
                     NPK_STATUS_NOT_FOUND);
        CHECK_STATUS(npk_store_top_k(s, "a/b", NPK_METRIC_DOT, &one, 1, idx, scores, 1, &kk),
                     NPK_STATUS_INVALID_NAME);
        CHECK_STATUS(npk_store_top_k(s, "emb", NPK_METRIC_DOT, &short_q, 1, idx, scores, 1, &kk),
                     NPK_STATUS_SHAPE_MISMATCH);
        CHECK_STATUS(npk_store_top_k(s, "emb", 9, &one, 1, idx, scores, 1, &kk),
                     NPK_STATUS_INVALID_ARGUMENT);
        CHECK_STATUS(npk_store_top_k(s, "emb", NPK_METRIC_DOT, &q, 2, idx, scores, 17, &kk),
                     NPK_STATUS_BUFFER_SIZE);
        CHECK_STATUS(npk_store_top_k(NULL, "emb", NPK_METRIC_DOT, &one, 1, idx, scores, 1, &kk),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_store_top_k(s, NULL, NPK_METRIC_DOT, &one, 1, idx, scores, 1, &kk),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_store_top_k(s, "emb", NPK_METRIC_DOT, NULL, 1, idx, scores, 1, &kk),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_store_top_k(s, "emb", NPK_METRIC_DOT, &one, 1, idx, scores, 1, NULL),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_store_top_k(s, "emb", NPK_METRIC_DOT, &one, 1, NULL, scores, 1, &kk),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK(kk == 42);

        CHECK_STATUS(npk_store_scores(s, "ints", NPK_METRIC_DOT, &one, scores, 2, &n),
                     NPK_STATUS_DTYPE_MISMATCH);
        CHECK_STATUS(npk_store_scores(s, "missing", NPK_METRIC_DOT, &one, scores, 2, &n),
                     NPK_STATUS_NOT_FOUND);
        CHECK_STATUS(npk_store_scores(s, "", NPK_METRIC_DOT, &one, scores, 2, &n),
                     NPK_STATUS_INVALID_NAME);
        CHECK_STATUS(npk_store_scores(s, "emb", NPK_METRIC_L2, &short_q, scores, LIVE, &n),
                     NPK_STATUS_SHAPE_MISMATCH);
        CHECK_STATUS(npk_store_scores(s, "emb", NPK_METRIC_L2, &one, scores, LIVE - 1, &n),
                     NPK_STATUS_BUFFER_SIZE);
        CHECK_STATUS(npk_store_scores(s, "emb", 12, &one, scores, LIVE, &n),
                     NPK_STATUS_INVALID_ARGUMENT);
        CHECK_STATUS(npk_store_scores(NULL, "emb", NPK_METRIC_L2, &one, scores, LIVE, &n),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_store_scores(s, NULL, NPK_METRIC_L2, &one, scores, LIVE, &n),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_store_scores(s, "emb", NPK_METRIC_L2, NULL, scores, LIVE, &n),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_store_scores(s, "emb", NPK_METRIC_L2, &one, NULL, LIVE, &n),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(npk_store_scores(s, "emb", NPK_METRIC_L2, &one, scores, LIVE, NULL),
                     NPK_STATUS_NULL_ARGUMENT);
        CHECK(n == 42);
    }

    /* A second, read-only handle sees the same live rows. */
    CHECK_OK(npk_store_sync(s));
    snprintf(path, sizeof path, "%s/vec.npk", dir);
    CHECK_OK(npk_store_open(path, NPK_OPEN_READ_ONLY, &ro));
    CHECK_OK(npk_store_top_k(ro, "emb", NPK_METRIC_L2, &q, 3, idx, scores, 27, &kk));
    CHECK_OK(npk_store_top_k(s, "emb", NPK_METRIC_L2, &q, 3, mem_idx, mem_scores, 27, &mem_kk));
    CHECK(kk == 3 && memcmp(idx, mem_idx, 27 * sizeof(uint64_t)) == 0);
    CHECK_OK(npk_store_close(ro));

    CHECK_OK(npk_store_close(s));
    release(&q);
}

void vector_tests(void) {
    test_metric_names();
    test_capabilities();
    test_every_dtype_and_metric();
    test_bit_metrics();
    test_kl_js_edges();
    test_ties_nan_and_zero_vectors();
    test_mixed_dtypes();
    test_k_and_layout();
    test_bad_arguments();
    test_store_search();
}
