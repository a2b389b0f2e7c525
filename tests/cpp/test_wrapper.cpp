// Tests of numpack.hpp: errors, move semantics, typed access, views, streams, names,
// vector search.
// Usage: test_wrapper <scratch-dir>. Prints "N passed, M failed" last; exits 1 on failure.
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>  // check (cli branch)
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "numpack.hpp"

namespace {

int passed = 0, failed = 0;

void check(bool ok, const char* what, int line) {
    if (ok) {
        ++passed;
    } else {
        ++failed;
        std::cerr << "FAIL line " << line << ": " << what << "\n";
    }
}
#define CHECK(cond) check((cond), #cond, __LINE__)

// Runs f, expecting numpack::Error with `code` and a non-empty message.
template <class F>
void expect_error(npk_status code, F&& f, int line) {
    try {
        f();
        check(false, "no exception thrown", line);
    } catch (const numpack::Error& e) {
        bool ok = e.code() == code && !e.message().empty() &&
                  std::string(e.what()).find(npk_status_name(code)) == 0;
        if (!ok) std::cerr << "  got " << e.what() << " (code " << e.code() << ")\n";
        check(ok, "numpack::Error with the expected code and a message", line);
    } catch (const std::exception& e) {
        std::cerr << "  got " << e.what() << "\n";
        check(false, "a numpack::Error", line);
    }
}
#define EXPECT_ERROR(code, body) expect_error(code, [&] { body; }, __LINE__)

std::vector<float> iota_rows(uint64_t first, uint64_t n, uint64_t dim) {
    std::vector<float> v(n * dim);
    for (uint64_t r = 0; r < n; ++r)
        for (uint64_t c = 0; c < dim; ++c) v[r * dim + c] = static_cast<float>((first + r) * 100 + c);
    return v;
}

static_assert(!std::is_copy_constructible<numpack::Store>::value, "Store is move-only");
static_assert(!std::is_copy_assignable<numpack::Store>::value, "Store is move-only");
static_assert(std::is_nothrow_move_constructible<numpack::Store>::value, "Store moves");
static_assert(std::is_nothrow_move_assignable<numpack::Store>::value, "Store moves");
static_assert(!std::is_copy_constructible<numpack::View>::value, "View is move-only");
static_assert(std::is_nothrow_move_constructible<numpack::View>::value, "View moves");
static_assert(!std::is_copy_constructible<numpack::Stream>::value, "Stream is move-only");
static_assert(std::is_nothrow_move_constructible<numpack::Stream>::value, "Stream moves");
static_assert(!std::is_copy_constructible<numpack::Names>::value, "Names is move-only");
static_assert(std::is_nothrow_move_constructible<numpack::Names>::value, "Names moves");
static_assert(numpack::dtype_v<float> == NPK_DTYPE_FLOAT32, "dtype trait");
static_assert(numpack::dtype_v<std::complex<double>> == NPK_DTYPE_COMPLEX128, "dtype trait");
static_assert(numpack::dtype_v<const int16_t> == NPK_DTYPE_INT16, "dtype trait");

void test_dtypes() {
    CHECK(numpack::dtype_size(numpack::dtype_v<double>) == sizeof(double));
    CHECK(numpack::dtype_size(numpack::dtype_v<std::complex<float>>) == sizeof(std::complex<float>));
    CHECK(numpack::dtype_size(numpack::dtype_v<bool>) == sizeof(bool));
    CHECK(numpack::dtype_size(numpack::dtype_v<uint64_t>) == 8);
    CHECK(numpack::dtype_name(NPK_DTYPE_INT8) == "int8");
    CHECK(numpack::dtype_name(999).empty());
    CHECK(numpack::version() == NPK_VERSION_STRING);
}

void test_errors(const std::string& dir) {
    EXPECT_ERROR(NPK_STATUS_STORE_NOT_FOUND, numpack::Store(dir + "/none", 0));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT,
                 numpack::Store::open(dir + "/bad", NPK_OPEN_DROP_IF_EXISTS | NPK_OPEN_READ_ONLY));
    numpack::Store empty;
    CHECK(!empty);
    EXPECT_ERROR(NPK_STATUS_NULL_ARGUMENT, empty.sync());
    EXPECT_ERROR(NPK_STATUS_NULL_ARGUMENT, (void)empty.has("x"));
    empty.close();  // closing an empty handle does nothing

    numpack::Store s(dir + "/errors", NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
    EXPECT_ERROR(NPK_STATUS_NOT_FOUND, (void)s.info("nope"));
    EXPECT_ERROR(NPK_STATUS_INVALID_NAME, (void)s.has("a/b"));
    EXPECT_ERROR(NPK_STATUS_INVALID_NAME, (void)s.has(""));
    s.save("x", iota_rows(0, 4, 3), {4, 3});
    EXPECT_ERROR(NPK_STATUS_BUFFER_SIZE, s.save("y", iota_rows(0, 4, 3), {4, 4}));
    EXPECT_ERROR(NPK_STATUS_SHAPE_MISMATCH, s.append("x", iota_rows(0, 2, 2), {2, 2}));
    EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH, s.append("x", std::vector<double>(6), {2, 3}));
    EXPECT_ERROR(NPK_STATUS_INDEX_OUT_OF_RANGE, (void)s.read_rows<float>("x", {4}));
    EXPECT_ERROR(NPK_STATUS_INDEX_OUT_OF_RANGE, (void)s.read_range<float>("x", 2, 9));
    EXPECT_ERROR(NPK_STATUS_INDEX_OUT_OF_RANGE, s.delete_rows("x", {-5}));
    EXPECT_ERROR(NPK_STATUS_ALREADY_EXISTS, (s.save("z", iota_rows(0, 1, 1), {1, 1}), s.rename("x", "z")));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, (void)s.stream("x", 0));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, (void)s.view("x", 0x80));

    // Typed access checks the element type before touching the data.
    EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH, (void)s.load<double>("x"));
    EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH, (void)s.load<int32_t>("x"));
    EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH, (void)s.read_rows<uint32_t>("x", {0}));
    EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH, (void)s.read_range<std::complex<float>>("x", 0, 1));
    EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH, (void)s.view("x").rows<double>());
    {
        numpack::Stream st = s.stream("x", 2);
        std::vector<int8_t> wrong;
        EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH, (void)st.next(wrong));
    }
    // A read-only view cannot give writable rows.
    EXPECT_ERROR(NPK_STATUS_READ_ONLY, (void)s.view("x").writable_rows<float>());
    // Row access out of range.
    numpack::Array<float> a = s.load<float>("x");
    EXPECT_ERROR(NPK_STATUS_INDEX_OUT_OF_RANGE, (void)a.row(4));

    s.close();
    {
        numpack::Store ro(dir + "/errors", NPK_OPEN_READ_ONLY);
        CHECK(ro.read_only());
        EXPECT_ERROR(NPK_STATUS_READ_ONLY, ro.drop("x"));
        EXPECT_ERROR(NPK_STATUS_READ_ONLY, (void)ro.view("x", NPK_VIEW_WRITABLE));
    }
    // The error is a std::exception too.
    try {
        numpack::Store(dir + "/none", 0);
        CHECK(false);
    } catch (const std::exception& e) {
        CHECK(std::strstr(e.what(), "STORE_NOT_FOUND") == e.what());
    }
}

void test_moves(const std::string& dir) {
    numpack::Store a(dir + "/moves", NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
    a.save("x", iota_rows(0, 3, 2), {3, 2});
    npk_store* raw = a.capi();
    numpack::Store b(std::move(a));
    CHECK(!a && a.capi() == nullptr);  // NOLINT(bugprone-use-after-move)
    CHECK(b.capi() == raw && b.has("x"));
    EXPECT_ERROR(NPK_STATUS_NULL_ARGUMENT, (void)a.has("x"));
    numpack::Store c;
    c = std::move(b);
    CHECK(c.capi() == raw && !b);
    c = std::move(c);  // self-move keeps the handle
    CHECK(c.capi() == raw);

    // Move-assigning over a live handle closes the old one.
    numpack::Store d(dir + "/moves2", NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
    d = std::move(c);
    CHECK(d.capi() == raw && d.has("x"));

    // release() gives up ownership; the C handle is then the caller's.
    npk_store* released = d.release();
    CHECK(!d && released == raw);
    CHECK(npk_store_close(released) == NPK_STATUS_OK);
    // A stale handle adopted again is detected by the library.
    numpack::Store stale(released);
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, stale.sync());
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, stale.close());
    CHECK(!stale);

    numpack::Store s(dir + "/moves", 0);
    numpack::View v1 = s.view("x");
    const void* data = v1.layout().data;
    numpack::View v2(std::move(v1));
    CHECK(!v1 && v2 && v2.layout().data == data);
    numpack::View v3;
    v3 = std::move(v2);
    CHECK(v3.rows<float>()[2][1] == 201.0f);
    npk_view* rv = v3.release();
    CHECK(!v3 && rv != nullptr);
    npk_view_free(rv);

    numpack::Stream st1 = s.stream("x", 2);
    numpack::Stream st2;
    st2 = std::move(st1);
    std::vector<float> batch;
    CHECK(!st1 && st2.next(batch) && batch.size() == 4);
    numpack::Names n1 = s.list();
    numpack::Names n2(std::move(n1));
    CHECK(!n1 && n2.size() == 1 && std::string(n2[0]) == "x");
    CHECK(n1.size() == 0 && n1[0] == nullptr);
    // Store handles outlive nothing: a view stays valid after its store is closed.
    numpack::View late = s.view("x");
    s.close();
    CHECK(late.rows<float>()[1][0] == 100.0f);
}

void test_typed(const std::string& dir) {
    numpack::Store s(dir + "/typed", NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
    s.save("f", iota_rows(0, 10, 3), {10, 3});
    s.append("f", iota_rows(10, 5, 3), {5, 3});
    numpack::Array<float> all = s.load<float>("f");
    CHECK((all.shape == std::vector<uint64_t>{15, 3}));
    CHECK(all.data.size() == 45 && all.row_count() == 15 && all.row_size() == 3);
    CHECK(all.row(14)[2] == 1402.0f);
    uint64_t r = 0;
    bool rows_ok = true;
    for (numpack::Span<float> row : all.rows()) {
        rows_ok = rows_ok && row.size() == 3 && row[0] == static_cast<float>(r * 100);
        ++r;
    }
    CHECK(rows_ok && r == 15);
    auto rr = all.rows();
    CHECK(rr.end() - rr.begin() == 15 && (*(rr.begin() + 3))[0] == 300.0f);

    numpack::Array<float> picked = s.read_rows<float>("f", {-1, 0, 0});
    CHECK((picked.shape == std::vector<uint64_t>{3, 3}) && picked.row(0)[0] == 1400.0f &&
          picked.row(2)[1] == 1.0f);
    numpack::Array<float> range = s.read_range<float>("f", 4, 6);
    CHECK(range.row_count() == 2 && range.row(1)[0] == 500.0f);
    numpack::Array<float> none = s.read_range<float>("f", 3, 3);
    CHECK(none.row_count() == 0 && none.data.empty());

    s.replace_rows("f", {0}, std::vector<float>{-1, -2, -3});
    s.replace_range("f", 1, 1, std::vector<float>{-4, -5, -6});
    CHECK(s.read_range<float>("f", 0, 2).data == (std::vector<float>{-1, -2, -3, -4, -5, -6}));

    // Other element types.
    std::vector<std::complex<double>> cz{{1, 2}, {3, 4}};
    s.save("c", cz, {2});
    CHECK(s.load<std::complex<double>>("c").data == cz);
    s.save("i", std::vector<int64_t>{-5, 6, 7, 8}, {2, 2});
    CHECK(s.load<int64_t>("i").row(0)[0] == -5);
    bool flags[3] = {true, false, true};
    s.save("b", flags, 3, {3});
    CHECK(s.info("b").dtype == NPK_DTYPE_BOOL);
    bool back[3] = {false, false, false};
    s.load_bytes("b", back, sizeof back);
    CHECK(back[0] && !back[1] && back[2]);
    CHECK(s.view("b").data<bool>()[2]);

    // Delete, view with holes, compact.
    s.delete_rows("f", {1, 3});
    numpack::ArrayInfo info = s.info("f");
    CHECK(info.shape[0] == 13 && info.physical_rows == 15 && info.row_bytes() == 12);
    {
        numpack::View v = s.view("f");
        CHECK(v.has_holes() && v.row_count() == 13 && v.physical_shape()[0] == 15);
        CHECK((v.shape() == std::vector<uint64_t>{13, 3}));
        auto rows = v.rows<float>();
        CHECK(rows[0][0] == -1.0f && rows[1][0] == 200.0f && rows[2][0] == 400.0f);
        CHECK(rows.at(12)[0] == 1400.0f);
        // Iterators do not depend on the Rows object they came from.
        auto it = v.rows<float>().begin();
        auto end = v.rows<float>().end();
        CHECK(end - it == 13 && (*++it)[0] == 200.0f && it[1][0] == 400.0f);
        EXPECT_ERROR(NPK_STATUS_INDEX_OUT_OF_RANGE, (void)rows.at(13));
        CHECK(s.load<float>("f").row(2)[0] == 400.0f);
    }
    numpack::View before = s.view("f");
    s.compact("f");
    CHECK(s.info("f").physical_rows == 13);
    // A view made before keeps its mapping: same logical rows as the compacted array.
    {
        numpack::Array<float> after = s.load<float>("f");
        std::vector<float> old_rows;
        for (numpack::Span<const float> row : before.rows<float>())
            old_rows.insert(old_rows.end(), row.begin(), row.end());
        CHECK(old_rows == after.data);
    }
    CHECK(!s.view("f").has_holes());

    // Writable view.
    {
        numpack::View w = s.view("f", NPK_VIEW_WRITABLE);
        CHECK(w.writable());
        w.writable_rows<float>()[0][0] = 42.0f;
        w.flush();
    }
    CHECK(s.read_rows<float>("f", {0}).data[0] == 42.0f);

    // Stream.
    numpack::Stream st = s.stream("f", 4);
    std::vector<float> batch;
    uint64_t total = 0, batches = 0;
    while (st.next(batch)) {
        total += batch.size() / 3;
        ++batches;
    }
    CHECK(total == 13 && batches == 4 && st.batch_rows() == 4 && st.row_bytes() == 12);

    // Names, clone, rename, drop, reset.
    s.clone("f", "g");
    s.rename("g", "h");
    CHECK((s.names() == std::vector<std::string>{"b", "c", "f", "h", "i"}));
    std::size_t n = 0;
    for (const char* name : s.list()) n += std::strlen(name);
    CHECK(n == 5);
    s.drop("h");
    CHECK(!s.has("h") && s.has("f"));
    s.sync();
    s.refresh();
    CHECK(!s.read_only());
    s.reset();
    CHECK(s.names().empty() && s.list().empty());
    s.close();
}

// -- vector search: a brute-force reference in double precision ----------------------------

uint64_t rng_state = 0x9E3779B97F4A7C15ull;
uint64_t next_u64() {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
double uniform(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(next_u64() >> 11) / 9007199254740992.0;
}

// n random elements of T: in [-1, 1) (every value for integers), or positive for kl/js.
template <class T>
std::vector<T> random_vectors(std::size_t n, bool positive) {
    std::vector<T> v(n);
    for (T& x : v) {
        if (std::is_integral<T>::value) {
            int lo = positive ? 1 : static_cast<int>(std::numeric_limits<T>::min());
            int hi = static_cast<int>(std::numeric_limits<T>::max());
            x = static_cast<T>(lo + static_cast<int>(next_u64() % static_cast<uint64_t>(hi - lo + 1)));
        } else {
            x = static_cast<T>(positive ? uniform(0.05, 1.0) : uniform(-1.0, 1.0));
        }
    }
    return v;
}

// A random normal IEEE half in +-[0.25, 4), as its bits, and its value.
uint16_t random_half() {
    return static_cast<uint16_t>((next_u64() & 1) << 15 | (13 + next_u64() % 4) << 10 | (next_u64() & 1023));
}
double half_value(uint16_t h) {
    double v = std::ldexp(1024.0 + (h & 1023), ((h >> 10) & 31) - 25);
    return (h & 0x8000) ? -v : v;
}

double ref_kl(const std::vector<double>& p, const std::vector<double>& q) {
    double s = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (p[i] > 0) s += p[i] * std::log(p[i] / q[i]);
    }
    return s;
}

int popcount8(unsigned x) {
    int n = 0;
    for (; x; x &= x - 1) ++n;
    return n;
}

// The metric between two vectors, as numpack.h defines it.
double ref_metric(npk_metric m, const std::vector<double>& a, const std::vector<double>& b) {
    double dot = 0, na = 0, nb = 0, l2sq = 0;
    int diff = 0, both = 0, either = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        dot += a[i] * b[i];
        na += a[i] * a[i];
        nb += b[i] * b[i];
        l2sq += (a[i] - b[i]) * (a[i] - b[i]);
        unsigned x = static_cast<unsigned>(a[i]), y = static_cast<unsigned>(b[i]);
        diff += popcount8(x ^ y);
        both += popcount8(x & y);
        either += popcount8(x | y);
    }
    switch (m) {
        case NPK_METRIC_DOT:
        case NPK_METRIC_INNER: return dot;
        case NPK_METRIC_COSINE: return na == 0 || nb == 0 ? 0.0 : dot / (std::sqrt(na) * std::sqrt(nb));
        case NPK_METRIC_L2: return std::sqrt(l2sq);
        case NPK_METRIC_L2SQ: return l2sq;
        case NPK_METRIC_HAMMING: return diff;
        case NPK_METRIC_JACCARD: return either == 0 ? 0.0 : 1.0 - static_cast<double>(both) / either;
        case NPK_METRIC_KL: return ref_kl(a, b);
        case NPK_METRIC_JS: {
            std::vector<double> mid(a.size());
            for (std::size_t i = 0; i < a.size(); ++i) mid[i] = (a[i] + b[i]) / 2;
            return 0.5 * ref_kl(a, mid) + 0.5 * ref_kl(b, mid);
        }
    }
    return NAN;
}

// Row r of a row-major matrix, as doubles (value(i) reads element i).
template <class F>
std::vector<double> row_values(F value, std::size_t r, std::size_t dim) {
    std::vector<double> v(dim);
    for (std::size_t i = 0; i < dim; ++i) v[i] = value(r * dim + i);
    return v;
}

// The reference scores, values[q * N + c].
template <class FQ, class FC>
std::vector<double> ref_scores(npk_metric m, FQ q, std::size_t nq, FC c, std::size_t nc, std::size_t dim) {
    std::vector<double> out(nq * nc);
    for (std::size_t i = 0; i < nq; ++i) {
        std::vector<double> a = row_values(q, i, dim);
        for (std::size_t j = 0; j < nc; ++j) out[i * nc + j] = ref_metric(m, a, row_values(c, j, dim));
    }
    return out;
}

// All candidates best first: NaN last, ties by index.
std::vector<uint64_t> ref_order(npk_metric m, const double* s, std::size_t n) {
    std::vector<uint64_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    bool sim = numpack::is_similarity(m);
    std::sort(order.begin(), order.end(), [&](uint64_t a, uint64_t b) {
        double x = s[a], y = s[b];
        if (std::isnan(x) != std::isnan(y)) return std::isnan(y);
        if (!std::isnan(x) && x != y) return sim ? x > y : x < y;
        return a < b;
    });
    return order;
}

bool close_to(double got, double want, double tol) {
    if (std::isnan(want)) return std::isnan(got);
    if (std::isinf(want)) return got == want;
    return std::fabs(got - want) <= tol * std::max(1.0, std::fabs(want));
}

// Does one query's result match the reference scores `want` of its n candidates?
// `exact`: indices must be the reference's; else they may differ only between equal scores.
bool top_k_ok(npk_metric m, const double* want, std::size_t n, numpack::Span<const uint64_t> idx,
              numpack::Span<const double> sc, double tol, bool exact) {
    std::vector<uint64_t> order = ref_order(m, want, n);
    std::vector<bool> seen(n);
    for (std::size_t j = 0; j < idx.size(); ++j) {
        uint64_t i = idx[j], r = order[j];
        if (i >= n || seen[i]) return false;
        seen[i] = true;
        if (!close_to(sc[j], want[i], tol) || !close_to(want[i], want[r], tol) || (exact && i != r)) {
            std::cerr << "  entry " << j << ": index " << i << " score " << sc[j] << ", want index " << r
                      << " score " << want[r] << "\n";
            return false;
        }
    }
    return true;
}

// Scores and top-k of nq queries against nc candidates (dim elements) against the reference.
template <class FQ, class FC>
void check_search(const char* what, npk_metric m, const numpack::VectorsRef& q, FQ qv,
                  const numpack::VectorsRef& c, FC cv, double tol, bool exact) {
    std::size_t nq = q.rows(), nc = c.rows(), dim = c.dim();
    std::vector<double> want = ref_scores(m, qv, nq, cv, nc, dim);
    numpack::Scores s = numpack::scores(m, q, c);
    bool ok = s.queries == nq && s.candidates == nc && s.values.size() == nq * nc;
    for (std::size_t i = 0; ok && i < want.size(); ++i) ok = close_to(s.values[i], want[i], tol);
    if (!ok) std::cerr << "  " << what << " " << numpack::metric_name(m) << ": scores\n";
    CHECK(ok);
    CHECK(close_to(numpack::distance(m, q.row(1), c.row(2)), s(1, 2), 0));
    for (uint64_t k : {uint64_t(0), uint64_t(1), uint64_t(5), uint64_t(nc), uint64_t(nc + 7)}) {
        numpack::TopK r = numpack::top_k(m, q, c, k);
        std::size_t kk = std::min<std::size_t>(k, nc);
        CHECK(r.queries == nq && r.k == kk && r.indices.size() == nq * kk && r.scores.size() == nq * kk);
        for (std::size_t i = 0; i < nq; ++i) {
            bool good = top_k_ok(m, want.data() + i * nc, nc, r.indices_of(i), r.scores_of(i), tol, exact);
            if (!good) std::cerr << "  " << what << " " << numpack::metric_name(m) << ": query " << i << " k " << k << "\n";
            CHECK(good);
        }
        // One query alone gives exactly its row of the many-query result.
        numpack::TopK one = numpack::top_k(m, q.row(nq - 1), c, k);
        CHECK(one.queries == 1 && one.k == kk && one.indices_of(0).to_vector() == r.indices_of(nq - 1).to_vector() &&
              one.scores_of(0).to_vector() == r.scores_of(nq - 1).to_vector());
    }
}

template <class T>
void check_type(const char* what, double tol) {
    const std::size_t nq = 9, nc = 131, dim = 17;  // 9 queries: the blocked path for floats
    for (npk_metric m : {NPK_METRIC_DOT, NPK_METRIC_INNER, NPK_METRIC_COSINE, NPK_METRIC_L2, NPK_METRIC_L2SQ,
                         NPK_METRIC_KL, NPK_METRIC_JS}) {
        bool positive = m == NPK_METRIC_KL || m == NPK_METRIC_JS;
        std::vector<T> q = random_vectors<T>(nq * dim, positive), c = random_vectors<T>(nc * dim, positive);
        auto qv = [&](std::size_t i) { return static_cast<double>(q[i]); };
        auto cv = [&](std::size_t i) { return static_cast<double>(c[i]); };
        // Integer dot and l2sq are whole numbers: ties are exact and so must the indices be.
        bool exact = std::is_integral<T>::value && (m == NPK_METRIC_DOT || m == NPK_METRIC_INNER || m == NPK_METRIC_L2SQ);
        check_search(what, m, numpack::VectorsRef(q, dim), qv, numpack::VectorsRef(c, dim), cv, tol, exact);
    }
}

void test_vector_metrics() {
    for (uint32_t code = 0; code < 9; ++code) {
        npk_metric m = static_cast<npk_metric>(code);
        std::string name = numpack::metric_name(m), upper = name;
        std::transform(upper.begin(), upper.end(), upper.begin(), [](char ch) { return static_cast<char>(std::toupper(ch)); });
        CHECK(!name.empty() && numpack::parse_metric(name) == m && numpack::parse_metric(upper) == m);
        CHECK(numpack::is_similarity(m) == (code <= NPK_METRIC_COSINE));
    }
    CHECK(numpack::metric_name(NPK_METRIC_L2SQ) == "l2sq");
    CHECK(numpack::parse_metric("Euclidean") == NPK_METRIC_L2);
    CHECK(numpack::parse_metric("cos") == NPK_METRIC_COSINE);
    CHECK(numpack::parse_metric("L2_Squared") == NPK_METRIC_L2SQ);
    CHECK(numpack::parse_metric("dot_product") == NPK_METRIC_DOT);
    CHECK(numpack::parse_metric("kl_divergence") == NPK_METRIC_KL);
    CHECK(numpack::metric_name(static_cast<npk_metric>(9)).empty());
    CHECK(!numpack::is_similarity(static_cast<npk_metric>(9)));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, numpack::parse_metric("manhattan"));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, numpack::parse_metric(""));
    try {
        numpack::parse_metric("manhattan");
    } catch (const numpack::Error& e) {
        CHECK(e.message().find("manhattan") != std::string::npos && e.message().find("cosine") != std::string::npos);
    }
    CHECK(numpack::vector_capabilities().find("kernels") != std::string::npos);
}

void test_vector_search() {
    check_type<float>("float32", 1e-4);
    check_type<double>("float64", 1e-10);
    check_type<int8_t>("int8", 1e-10);
    check_type<uint8_t>("uint8", 1e-10);

    // float16 through the untyped descriptor.
    {
        const std::size_t nq = 9, nc = 64, dim = 10;
        std::vector<uint16_t> q(nq * dim), c(nc * dim);
        for (uint16_t& h : q) h = random_half();
        for (uint16_t& h : c) h = random_half();
        numpack::VectorsRef qr(q.data(), NPK_DTYPE_FLOAT16, nq, dim), cr(c.data(), NPK_DTYPE_FLOAT16, nc, dim);
        auto qv = [&](std::size_t i) { return half_value(q[i]); };
        auto cv = [&](std::size_t i) { return half_value(c[i]); };
        for (npk_metric m : {NPK_METRIC_DOT, NPK_METRIC_COSINE, NPK_METRIC_L2SQ}) check_search("float16", m, qr, qv, cr, cv, 1e-4, false);
    }

    // Packed bits.
    {
        const std::size_t nq = 3, nc = 150, dim = 16;
        std::vector<uint8_t> q = random_vectors<uint8_t>(nq * dim, false), c = random_vectors<uint8_t>(nc * dim, false);
        auto qv = [&](std::size_t i) { return static_cast<double>(q[i]); };
        auto cv = [&](std::size_t i) { return static_cast<double>(c[i]); };
        check_search("bits", NPK_METRIC_HAMMING, numpack::VectorsRef(q, dim), qv, numpack::VectorsRef(c, dim), cv, 0, true);
        check_search("bits", NPK_METRIC_JACCARD, numpack::VectorsRef(q, dim), qv, numpack::VectorsRef(c, dim), cv, 1e-12, false);
        std::vector<uint8_t> a = {0xF0, 0x01}, b = {0xFF, 0x00};
        CHECK(numpack::distance(NPK_METRIC_HAMMING, numpack::VectorsRef(a), numpack::VectorsRef(b)) == 5);
        std::vector<float> f = {1, 2};
        EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH,
                     numpack::distance(NPK_METRIC_HAMMING, numpack::VectorsRef(f), numpack::VectorsRef(f)));
    }

    // Mixed types: a double query is rounded to float candidates; int8 candidates need int8.
    {
        std::vector<double> q = random_vectors<double>(2 * 8, false);
        std::vector<float> c = random_vectors<float>(40 * 8, false);
        auto qv = [&](std::size_t i) { return static_cast<double>(static_cast<float>(q[i])); };
        auto cv = [&](std::size_t i) { return static_cast<double>(c[i]); };
        check_search("double query, float candidates", NPK_METRIC_COSINE, numpack::VectorsRef(q, 8), qv,
                     numpack::VectorsRef(c, 8), cv, 1e-4, false);
        std::vector<int8_t> c8 = random_vectors<int8_t>(5 * 8, false);
        std::vector<float> one(8, 1.0f);
        EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH,
                     numpack::top_k(NPK_METRIC_DOT, numpack::VectorsRef(one), numpack::VectorsRef(c8, 8), 2));
    }

    // Equal scores by lower index, NaN last; cosine with a zero vector is 0.
    {
        std::vector<float> c = {1, 0, 0, 1, 1, 0, NAN, 0, 1, 0}, q = {1, 0}, zero = {0, 0};
        for (npk_metric m : {NPK_METRIC_DOT, NPK_METRIC_L2SQ}) {
            numpack::TopK r = numpack::top_k(m, numpack::VectorsRef(q), numpack::VectorsRef(c, 2), 5);
            CHECK((r.indices == std::vector<uint64_t>{0, 2, 4, 1, 3}) && std::isnan(r.scores[4]));
        }
        CHECK(numpack::distance(NPK_METRIC_COSINE, numpack::VectorsRef(zero), numpack::VectorsRef(q)) == 0);
    }

    // Shapes, k and errors.
    {
        std::vector<float> c = random_vectors<float>(10 * 4, false), q5(5, 1.0f), q4(4, 1.0f);
        numpack::VectorsRef cr(c, 4);
        CHECK(cr.rows() == 10 && cr.dim() == 4 && cr.dtype() == NPK_DTYPE_FLOAT32);
        numpack::TopK r = numpack::top_k(NPK_METRIC_L2, numpack::VectorsRef(q4), cr, 0);
        CHECK(r.queries == 1 && r.k == 0 && r.indices.empty());
        r = numpack::top_k(NPK_METRIC_L2, numpack::VectorsRef(c, 4), cr, 1000);
        CHECK(r.queries == 10 && r.k == 10);
        for (std::size_t i = 0; i < 10; ++i) CHECK(r.indices_of(i)[0] == i);  // each finds itself
        std::vector<float> none;
        r = numpack::top_k(NPK_METRIC_DOT, numpack::VectorsRef(q4), numpack::VectorsRef(none, 4), 3);
        CHECK(r.k == 0 && r.indices.empty());
        CHECK(numpack::scores(NPK_METRIC_DOT, numpack::VectorsRef(q4), numpack::VectorsRef(none, 4)).values.empty());
        EXPECT_ERROR(NPK_STATUS_SHAPE_MISMATCH, numpack::top_k(NPK_METRIC_DOT, numpack::VectorsRef(q5), cr, 3));
        EXPECT_ERROR(NPK_STATUS_SHAPE_MISMATCH, numpack::scores(NPK_METRIC_DOT, numpack::VectorsRef(q5), cr));
        EXPECT_ERROR(NPK_STATUS_SHAPE_MISMATCH,
                     numpack::distance(NPK_METRIC_DOT, numpack::VectorsRef(q5), numpack::VectorsRef(q4)));
        EXPECT_ERROR(NPK_STATUS_SHAPE_MISMATCH, numpack::distance(NPK_METRIC_DOT, cr, cr));  // not one row each
        EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT,
                     numpack::top_k(static_cast<npk_metric>(42), numpack::VectorsRef(q4), cr, 3));
        EXPECT_ERROR(NPK_STATUS_BUFFER_SIZE, numpack::VectorsRef(c, 3));
        EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, numpack::VectorsRef(c, 0));
        EXPECT_ERROR(NPK_STATUS_INDEX_OUT_OF_RANGE, cr.row(10));
        EXPECT_ERROR(NPK_STATUS_INDEX_OUT_OF_RANGE, r.indices_of(1));
        std::vector<float> f(4);
        EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH,  // int32 is not a vector element type
                     numpack::distance(NPK_METRIC_DOT, numpack::VectorsRef(f.data(), NPK_DTYPE_INT32, 1, 4),
                                       numpack::VectorsRef(q4)));
    }
}

void test_store_vector_search(const std::string& dir) {
    const std::size_t rows = 60, dim = 8;
    numpack::Store s(dir + "/vectors", NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
    std::vector<float> full = random_vectors<float>(rows * dim, false);
    std::vector<float> extra = random_vectors<float>(4 * dim, false);
    s.save("emb", full, {rows, dim});
    s.delete_rows("emb", {5, 20, 59});
    s.append("emb", extra, {4, dim});
    numpack::Array<float> live = s.load<float>("emb");
    CHECK(live.row_count() == rows - 3 + 4);
    std::vector<float> q = random_vectors<float>(9 * dim, false);
    numpack::VectorsRef qr(q, dim), lr(live);
    for (npk_metric m : {NPK_METRIC_DOT, NPK_METRIC_COSINE, NPK_METRIC_L2SQ, NPK_METRIC_L2}) {
        for (uint64_t k : {uint64_t(0), uint64_t(6), uint64_t(1000)}) {
            numpack::TopK a = s.top_k("emb", m, qr, k), b = numpack::top_k(m, qr, lr, k);
            CHECK(a.queries == 9 && a.k == b.k && a.indices == b.indices && a.scores == b.scores);
        }
        numpack::Scores a = s.scores("emb", m, qr), b = numpack::scores(m, qr, lr);
        CHECK(a.queries == 9 && a.candidates == live.row_count() && a.values == b.values);
    }
    // Logical rows: stored row 21 is logical 19 (5 and 20 deleted before it); the deleted
    // row 20 is not found; the appended rows come after the 57 kept ones.
    numpack::TopK r = s.top_k("emb", NPK_METRIC_L2SQ, numpack::VectorsRef(full.data() + 21 * dim, 1, dim), 1);
    CHECK(r.indices == std::vector<uint64_t>{19} && r.scores[0] == 0);
    r = s.top_k("emb", NPK_METRIC_L2SQ, numpack::VectorsRef(full.data() + 20 * dim, 1, dim), 1);
    CHECK(r.k == 1 && r.scores[0] > 0);
    r = s.top_k("emb", NPK_METRIC_L2SQ, numpack::VectorsRef(extra.data() + 2 * dim, 1, dim), 1);
    CHECK(r.indices == std::vector<uint64_t>{57 + 2});

    // An array with every row deleted.
    s.save("gone", std::vector<float>(2 * dim), {2, dim});
    s.delete_rows("gone", {0, 1});
    CHECK(s.top_k("gone", NPK_METRIC_DOT, qr, 5).k == 0);
    numpack::Scores none = s.scores("gone", NPK_METRIC_DOT, qr);
    CHECK(none.candidates == 0 && none.values.empty());

    EXPECT_ERROR(NPK_STATUS_NOT_FOUND, s.top_k("missing", NPK_METRIC_DOT, qr, 3));
    EXPECT_ERROR(NPK_STATUS_NOT_FOUND, s.scores("missing", NPK_METRIC_DOT, qr));
    EXPECT_ERROR(NPK_STATUS_SHAPE_MISMATCH, s.top_k("emb", NPK_METRIC_DOT, numpack::VectorsRef(q, 3), 3));
    s.save("ints", std::vector<int32_t>{1, 2, 3, 4}, {2, 2});
    std::vector<float> q2(2, 1.0f);
    EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH, s.top_k("ints", NPK_METRIC_DOT, numpack::VectorsRef(q2), 1));
    numpack::Store empty;
    EXPECT_ERROR(NPK_STATUS_NULL_ARGUMENT, empty.top_k("emb", NPK_METRIC_DOT, qr, 3));
    EXPECT_ERROR(NPK_STATUS_NULL_ARGUMENT, empty.scores("emb", NPK_METRIC_DOT, qr));
    s.close();
}

// --- packages (.npkg) -------------------------------------------------------------------
void test_packages(const std::string& dir) {
    namespace pkg = numpack::package;
    const std::string src = dir + "/pkg_src", file = dir + "/pkg.npkg", out = dir + "/pkg_out";
    {
        numpack::Store s(src, NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
        s.save("x", iota_rows(0, 2000, 4), {2000, 4});
        s.save("ids", std::vector<int64_t>{5, 6, 7, 8}, {4});
        s.delete_rows("x", {0, 7});
        std::vector<std::pair<uint64_t, uint64_t>> calls;
        pkg::Info packed = pkg::pack(s, file, NPK_PACK_COMPRESS, [&](uint64_t d, uint64_t t) {
            calls.emplace_back(d, t);
            return true;
        });
        CHECK(packed.version == 2 && packed.compression == 1);
        CHECK(packed.entries.size() == 4);  // data_ids, data_x, deleted_x, metadata
        CHECK(packed.entries[1].name == "data_x.npkd" && packed.entries[1].original_size == 2000 * 4 * 4);
        CHECK(packed.entries[1].stored_size > 0 && packed.entries[1].has_crc32);
        CHECK(!calls.empty() && calls.front().first == 0 && calls.back().first == calls.back().second);
        CHECK(calls.back().second == packed.total_original_size);
        EXPECT_ERROR(NPK_STATUS_ALREADY_EXISTS, pkg::pack(s, file));
        // Cancelled by the callback: the old package stays.
        EXPECT_ERROR(NPK_STATUS_CANCELLED,
                     pkg::pack(s, file, NPK_PACK_OVERWRITE, [](uint64_t, uint64_t) { return false; }));
        // An exception from the callback cancels and comes out as it is.
        bool caught = false;
        try {
            pkg::pack(s, file, NPK_PACK_OVERWRITE, [](uint64_t, uint64_t) -> bool { throw std::logic_error("stop"); });
        } catch (const std::logic_error& e) {
            caught = std::string(e.what()) == "stop";
        }
        CHECK(caught);
        CHECK(pkg::info(file).compression == 1);
        numpack::Store empty;
        EXPECT_ERROR(NPK_STATUS_NULL_ARGUMENT, pkg::pack(empty, dir + "/never.npkg"));
        EXPECT_ERROR(NPK_STATUS_IO, pkg::info(dir + "/never.npkg"));  // nothing was written
    }
    pkg::Info described = pkg::info(file);
    CHECK(described.entries.size() == 4 && !described.entries[0].has_crc32);
    CHECK(described.total_stored_size < described.total_original_size);

    pkg::Info unpacked = pkg::unpack(file, out, NPK_UNPACK_VERIFY | NPK_UNPACK_OVERWRITE);
    CHECK(unpacked.entries.size() == 4 && unpacked.entries[1].has_crc32);
    {
        numpack::Store s(out, NPK_OPEN_READ_ONLY);
        numpack::Array<float> x = s.load<float>("x");
        CHECK(x.shape == std::vector<uint64_t>({1998, 4}));
        CHECK(x.data[0] == 100.0f && x.data[4 * 6] == 800.0f);  // rows 0 and 7 were deleted
        CHECK(s.load<int64_t>("ids").data == std::vector<int64_t>({5, 6, 7, 8}));
    }
    EXPECT_ERROR(NPK_STATUS_ALREADY_EXISTS, pkg::unpack(file, out));
    EXPECT_ERROR(NPK_STATUS_CANCELLED, pkg::unpack(file, dir + "/pkg_cancel", NPK_UNPACK_VERIFY,
                                                   [](uint64_t d, uint64_t) { return d == 0; }));
    EXPECT_ERROR(NPK_STATUS_STORE_NOT_FOUND, numpack::Store(dir + "/pkg_cancel", 0));  // no target
    EXPECT_ERROR(NPK_STATUS_IO, pkg::info(dir + "/missing.npkg"));
    EXPECT_ERROR(NPK_STATUS_CORRUPT, pkg::info(src + "/metadata.npkm"));  // a file, not a package
    EXPECT_ERROR(NPK_STATUS_IO, pkg::unpack(dir + "/missing.npkg", dir + "/pkg_none"));
}
// --- end packages (.npkg) ---
// --- .npy interop ---
void test_npy(const std::string& dir) {
    namespace npy = numpack::npy;
    numpack::Store s(dir + "/npy-store", NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
    std::vector<float> rows = iota_rows(0, 5, 3);
    s.save("a", rows, {5, 3});
    s.delete_rows("a", {1});
    const std::string file = dir + "/a.npy";
    std::remove(file.c_str());
    npy::export_file(s, "a", file);
    npy::FileInfo fi = npy::info(file);
    CHECK(fi.dtype == NPK_DTYPE_FLOAT32 && (fi.shape == std::vector<uint64_t>{4, 3}));
    CHECK(fi.appendable && fi.complete() && !fi.big_endian && !fi.fortran_order && fi.version_major == 1);
    EXPECT_ERROR(NPK_STATUS_ALREADY_EXISTS, npy::export_file(s, "a", file));
    npy::export_file(s, "a", file, true);

    // Append in place, then import back.
    std::vector<float> more = iota_rows(7, 2, 3);
    CHECK(npy::append(file, more, {3}) == 6);
    CHECK(npy::append(file, more.data(), 3, {3}, NPK_NPY_SYNC) == 7);
    EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH, npy::append(file, std::vector<double>(3), {3}));
    EXPECT_ERROR(NPK_STATUS_SHAPE_MISMATCH, npy::append(file, std::vector<float>(4), {4}));
    npy::import_file(s, "back", file);
    numpack::Array<float> back = s.load<float>("back");
    CHECK((back.shape == std::vector<uint64_t>{7, 3}));
    CHECK(back.row(0)[0] == 0.0f && back.row(1)[0] == 200.0f && back.row(4)[2] == 702.0f &&
          back.row(6)[0] == 700.0f);
    EXPECT_ERROR(NPK_STATUS_ALREADY_EXISTS, npy::import_file(s, "back", file));
    npy::import_file(s, "back", file, true);
    EXPECT_ERROR(NPK_STATUS_NOT_FOUND, npy::info(dir + "/missing.npy"));
    EXPECT_ERROR(NPK_STATUS_CORRUPT, npy::import_npz(s, file));

    // create_appendable, a crashed append, recover.
    const std::string g = dir + "/g.npy";
    std::remove(g.c_str());
    npy::create_appendable<int16_t>(g, {2});
    EXPECT_ERROR(NPK_STATUS_ALREADY_EXISTS, npy::create_appendable<int16_t>(g, {2}));
    CHECK(!npy::make_appendable(g));
    CHECK(npy::append(g, std::vector<int16_t>{1, 2, 3, 4}, {2}) == 2);
    CHECK(npy::recover(g).clean());
    {
        std::FILE* f = std::fopen(g.c_str(), "ab");
        std::fputc(9, f);
        std::fclose(f);
    }
    CHECK(!npy::info(g).complete());
    EXPECT_ERROR(NPK_STATUS_NEEDS_RECOVERY, npy::append(g, std::vector<int16_t>{5, 6}, {2}));
    npy::Recovery r = npy::recover(g, true);
    CHECK(r.header_rows == 2 && r.rows == 3 && r.zero_filled_bytes == 3 && !r.clean());
    CHECK(npy::info(g).complete());
    const std::string h = dir + "/h.npy";
    std::remove(h.c_str());
    CHECK(npy::append_bytes(h, NPK_DTYPE_UINT8, {}, "abc", 3, NPK_NPY_CREATE) == 3);
    const std::string h2 = dir + "/h2.npy";
    std::remove(h2.c_str());
    CHECK(npy::append_file(h2, h, NPK_NPY_CREATE) == 3);
    CHECK(npy::append_file(h2, h) == 6);
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, npy::append_file(h2, h2));
    EXPECT_ERROR(NPK_STATUS_NOT_FOUND, npy::append_file(h2, dir + "/missing.npy"));

    // Progress: start, blocks, end; false cancels leaving nothing; an exception comes back.
    {
        std::vector<double> big(static_cast<std::size_t>(10) << 17);  // 10 MiB
        for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<double>(i);
        s.save("big", big, {big.size() / 8, 8});
        const uint64_t total = big.size() * sizeof(double);
        const std::string bf = dir + "/big.npy";
        std::remove(bf.c_str());
        std::vector<std::pair<uint64_t, uint64_t>> calls;
        auto record = [&](uint64_t done, uint64_t all) { calls.emplace_back(done, all); return true; };
        npy::export_file(s, "big", bf, false, record);
        CHECK(calls.size() >= 4 && calls.front().first == 0 && calls.back().first == total &&
              calls.back().second == total);
        for (std::size_t i = 1; i < calls.size(); ++i) CHECK(calls[i - 1].first <= calls[i].first);
        int n = 0;
        EXPECT_ERROR(NPK_STATUS_CANCELLED,
                     npy::import_file(s, "big2", bf, false, [&](uint64_t, uint64_t) { return ++n < 2; }));
        CHECK(n == 2 && !s.has("big2"));
        bool thrown = false;
        try {
            npy::import_file(s, "big2", bf, false, [](uint64_t done, uint64_t) -> bool {
                if (done > 0) throw std::runtime_error("from the callback");
                return true;
            });
        } catch (const std::runtime_error& e) {
            thrown = std::string(e.what()) == "from the callback";
        }
        CHECK(thrown && !s.has("big2"));
        const uint64_t before = npy::info(h2).file_size;
        EXPECT_ERROR(NPK_STATUS_DTYPE_MISMATCH, npy::append_file(h2, bf, 0, record));
        CHECK(npy::info(h2).file_size == before);
        const std::string grow = dir + "/grow.npy";
        std::remove(grow.c_str());
        npy::create_appendable<double>(grow, {8});
        EXPECT_ERROR(NPK_STATUS_CANCELLED,
                     npy::append_file(grow, bf, 0, [](uint64_t done, uint64_t) { return done == 0; }));
        CHECK(npy::info(grow).shape[0] == 0 && npy::info(grow).complete());
        calls.clear();
        CHECK(npy::append_file(grow, bf, 0, record) == big.size() / 8);
        CHECK(calls.back().first == total);
    }
    s.close();
}
// --- end ---
// check (cli branch): a sound store has no findings, damage is listed, no store throws.
void test_check(const std::string& dir) {
    const std::string path = dir + "/check.npk";
    {
        numpack::Store s(path, NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
        s.save("x", iota_rows(0, 6, 2), {6, 2});
        s.save("y", std::vector<int32_t>{1, 2, 3}, {3});
        s.close();
    }
    CHECK(numpack::check(path).empty());
    // Truncate y's data file to 1 element: one error naming the file and the array.
    std::vector<int32_t> one{1};
    {
        std::string f = path + "/data_y.npkd";
        std::FILE* fp = std::fopen(f.c_str(), "wb");
        CHECK(fp != nullptr);
        if (fp) {
            std::fwrite(one.data(), sizeof(int32_t), 1, fp);
            std::fclose(fp);
        }
    }
    std::vector<numpack::Finding> fs = numpack::check(path);
    CHECK(fs.size() == 1);
    if (fs.size() == 1) {
        CHECK(fs[0].id == "data-size-mismatch");
        CHECK(fs[0].is_error());
        CHECK(std::string(fs[0].severity_name()) == "error");
        CHECK(fs[0].file && *fs[0].file == "data_y.npkd");
        CHECK(fs[0].array && *fs[0].array == "y");
        CHECK(fs[0].message.find("data_y.npkd") != std::string::npos);
    }
    EXPECT_ERROR(NPK_STATUS_STORE_NOT_FOUND, numpack::check(dir + "/no-such-store"));
}
// Compressed arrays: save_with, compression(), and typed reads of a compressed array.
void test_compression(const std::string& dir) {
    numpack::Store s(dir + "/compressed", NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
    const uint64_t rows = 30000;
    std::vector<int64_t> v(rows * 2);
    for (uint64_t r = 0; r < rows; ++r) {
        v[r * 2] = static_cast<int64_t>(r);
        v[r * 2 + 1] = static_cast<int64_t>(r / 3);
    }
    s.save_with("z", v, {rows, 2}, numpack::SaveOptions::zstd(7));
    s.save_with("p", v, {rows, 2}, numpack::SaveOptions());
    numpack::CompressionInfo c = s.compression("z");
    CHECK(c.compressed() && c.level == 7 && c.raw_bytes == rows * 16);
    CHECK(c.chunks == (rows + c.rows_per_chunk - 1) / c.rows_per_chunk && c.chunks > 1);
    CHECK(c.ratio() > 4.0);
    CHECK(!s.compression("p").compressed() && s.compression("p").ratio() == 0.0);
    numpack::Array<int64_t> all = s.load<int64_t>("z");
    CHECK(all.data == v);
    numpack::Array<int64_t> some = s.read_rows<int64_t>("z", {29999, 0, 16385});
    CHECK(some.data == (std::vector<int64_t>{29999, 9999, 0, 0, 16385, 5461}));
    std::vector<int64_t> more{-1, -1};
    s.append("z", more.data(), more.size(), {1, 2});
    CHECK(s.info("z").shape[0] == rows + 1);
    numpack::Array<int64_t> last = s.read_range<int64_t>("z", rows, rows + 1);
    CHECK(last.data == more);
    // A compressed array reloaded as Array<T> and saved again keeps its options only if
    // asked: save_with(Array) with zstd.
    s.save_with("z2", all, numpack::SaveOptions::zstd());
    CHECK(s.compression("z2").level == 3);
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, s.save_with("bad", v, {rows, 2}, numpack::SaveOptions::zstd(40)));
    EXPECT_ERROR(NPK_STATUS_NOT_FOUND, s.compression("missing"));
    EXPECT_ERROR(NPK_STATUS_UNSUPPORTED, s.view("z", NPK_VIEW_WRITABLE));
    s.close();
}

void test_safetensors(const std::string& dir) {
    namespace st = numpack::safetensors;
    numpack::Store s(dir + "/st-store", NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
    s.save("w", iota_rows(0, 4, 3), {4, 3});
    s.delete_rows("w", {0});
    s.save("ids", std::vector<int64_t>{7, 8}, {2});
    const std::string file = dir + "/m.safetensors";
    std::remove(file.c_str());
    uint64_t last = 0;
    st::export_file(s, file, {}, {{"format", "pt"}}, false, [&](uint64_t done, uint64_t) {
        last = done;
        return true;
    });
    CHECK(last == 3 * 3 * 4 + 2 * 8);
    EXPECT_ERROR(NPK_STATUS_ALREADY_EXISTS, st::export_file(s, file));
    st::Header h = st::read_header(file);
    CHECK(h.tensors.size() == 2 && h.metadata.size() == 1);
    CHECK(h.metadata[0].first == "format" && h.metadata[0].second == "pt");
    CHECK(h.tensors[0].name == "ids" && h.tensors[0].dtype_name == "I64");  // larger elements first
    CHECK(h.tensors[1].name == "w" && h.tensors[1].shape == std::vector<uint64_t>({3, 3}));
    CHECK(h.tensors[1].dtype && *h.tensors[1].dtype == NPK_DTYPE_FLOAT32);
    CHECK(h.data_offset == 8 + h.header_len && h.file_size == h.data_offset + 52);

    numpack::Store t(dir + "/st-back", NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
    CHECK(st::import_file(t, file, {"w"}) == std::vector<std::string>({"w"}));
    CHECK(t.load<float>("w").data == iota_rows(1, 3, 3));
    EXPECT_ERROR(NPK_STATUS_ALREADY_EXISTS, st::import_file(t, file));
    EXPECT_ERROR(NPK_STATUS_CANCELLED, st::import_file(t, file, {"ids"}, false, [](uint64_t d, uint64_t) { return d == 0; }));
    CHECK(!t.has("ids"));
    CHECK(st::import_file(t, file, {}, true).size() == 2);
    EXPECT_ERROR(NPK_STATUS_NOT_FOUND, st::import_file(t, file, {"nope"}));
    EXPECT_ERROR(NPK_STATUS_NOT_FOUND, st::read_header(dir + "/missing.safetensors"));
    s.save("c", std::vector<std::complex<double>>{{1, 2}}, {1});
    EXPECT_ERROR(NPK_STATUS_UNSUPPORTED, st::export_file(s, dir + "/c.safetensors", {"c"}));
}

// Strings with an embedded NUL never reach the library: C would read "x\0y" as "x".
void test_embedded_nul(const std::string& dir) {
    numpack::Store s(dir + "/nul-store", NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);
    s.save("x", std::vector<int32_t>{1}, {1});
    const std::string bad("x\0y", 3);
    try {
        s.save(bad, std::vector<int32_t>{2}, {1});
        CHECK(false);
    } catch (const numpack::Error& e) {
        CHECK(e.code() == NPK_STATUS_INVALID_ARGUMENT);
        CHECK(e.message().find("x\\0y") != std::string::npos);
        CHECK(e.message().find("`name`") != std::string::npos);
    }
    CHECK(s.load<int32_t>("x").data == std::vector<int32_t>({1}));  // "x" was not overwritten
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, s.drop(bad));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, s.info(bad));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, s.rename("x", bad));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, s.clone("x", bad));
    CHECK(s.names() == std::vector<std::string>({"x"}));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, numpack::Store(dir + std::string("/a\0b", 4), NPK_OPEN_CREATE));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, numpack::npy::export_file(s, "x", dir + std::string("/x\0.npy", 8)));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, numpack::safetensors::export_file(s, dir + "/n.safetensors", {bad}));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT,
                 numpack::safetensors::export_file(s, dir + "/n.safetensors", {}, {{bad, "v"}}));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, numpack::safetensors::import_file(s, dir + "/n.safetensors", {bad}));
    EXPECT_ERROR(NPK_STATUS_INVALID_ARGUMENT, numpack::package::pack(s, dir + std::string("/p\0.npkg", 9)));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " <scratch-dir>\n";
        return 2;
    }
    std::string dir = argv[1];
    try {
        test_dtypes();
        test_errors(dir);
        test_moves(dir);
        test_typed(dir);
        test_vector_metrics();
        test_vector_search();
        test_store_vector_search(dir);
        test_packages(dir);  // packages (.npkg)
        test_npy(dir);  // .npy interop
        test_check(dir);  // check (cli branch)
        test_compression(dir);  // compressed arrays
        test_safetensors(dir);
        test_embedded_nul(dir);
    } catch (const std::exception& e) {
        ++failed;
        std::cerr << "FAIL: unexpected exception: " << e.what() << "\n";
    }
    std::cout << passed << " passed, " << failed << " failed\n";
    return failed == 0 ? 0 : 1;
}
