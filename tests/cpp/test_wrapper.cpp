// Tests of numpack.hpp: errors, move semantics, typed access, views, streams, names.
// Usage: test_wrapper <scratch-dir>. Prints "N passed, M failed" last; exits 1 on failure.
#include <complex>
#include <cstdint>
#include <cstring>
#include <iostream>
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
    } catch (const std::exception& e) {
        ++failed;
        std::cerr << "FAIL: unexpected exception: " << e.what() << "\n";
    }
    std::cout << passed << " passed, " << failed << " failed\n";
    return failed == 0 ? 0 : 1;
}
