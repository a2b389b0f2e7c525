// numpack from C++ through numpack.hpp: the same steps as example.c, with RAII handles,
// exceptions and typed access. Usage: example_cpp <store-dir>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "numpack.hpp"

namespace {

constexpr uint64_t kDim = 4;

void expect(bool ok, const char* what) {
    if (!ok) {
        std::cerr << "example_cpp: expected " << what << "\n";
        std::exit(1);
    }
}

// Row r holds r*10 + c.
std::vector<float> rows_from(uint64_t first, uint64_t n) {
    std::vector<float> v(n * kDim);
    for (uint64_t r = 0; r < n; ++r)
        for (uint64_t c = 0; c < kDim; ++c) v[r * kDim + c] = static_cast<float>((first + r) * 10 + c);
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " <store-dir>\n";
        return 2;
    }
    try {
        std::cout << "numpack " << numpack::version() << " (header " << NPK_VERSION_STRING << ")\n";
        numpack::Store store(argv[1], NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS);

        store.save("x", rows_from(0, 100), {100, kDim});
        store.append("x", rows_from(100, 20), {20, kDim});

        numpack::ArrayInfo info = store.info("x");
        expect(info.dtype == NPK_DTYPE_FLOAT32 && info.shape == std::vector<uint64_t>{120, kDim},
               "x is float32 120 x 4");

        // Typed reads: Array<float> holds a std::vector<float> and the shape.
        numpack::Array<float> picked = store.read_rows<float>("x", {5, 110, -1});
        expect(picked.row(0)[0] == 50.0f && picked.row(1)[0] == 1100.0f &&
                   picked.row(2)[3] == 1193.0f,
               "rows 5, 110, -1");
        numpack::Array<float> range = store.read_range<float>("x", 95, 105);
        float first_col = 0;
        for (numpack::Span<float> row : range.rows()) first_col += row[0];
        expect(first_col == 9950.0f, "rows 95..105");

        // The dtype is checked: reading float32 as double throws.
        try {
            (void)store.load<double>("x");
            expect(false, "a dtype mismatch");
        } catch (const numpack::Error& e) {
            expect(e.code() == NPK_STATUS_DTYPE_MISMATCH, "DTYPE_MISMATCH");
            std::cout << "expected error: " << e.what() << "\n";
        }

        store.delete_rows("x", {0, 2, 4, 6, 8});
        expect(store.info("x").shape[0] == 115, "115 live rows");

        {
            // A lazy, zero-copy view; rows() skips the deleted rows.
            numpack::View view = store.view("x");
            double sum = 0;
            for (numpack::Span<const float> row : view.rows<float>()) sum += row[0];
            expect(view.row_count() == 115 && view.rows<float>()[0][0] == 10.0f, "view rows");
            std::cout << "view: " << view.row_count() << " live rows, first column sums to "
                      << sum << "\n";
        }

        store.compact("x");
        expect(store.info("x").physical_rows == 115, "compacted");

        numpack::Stream stream = store.stream("x", 32);
        std::vector<float> batch;
        std::size_t total = 0;
        while (stream.next(batch)) total += batch.size() / kDim;
        expect(total == 115, "streamed 115 rows");

        // Exact vector search over the stored rows: the 2 nearest to a copy of row 42, as
        // logical rows (row 42 is logical 37; rows 41 and 43 tie at 20: lower index first).
        std::vector<float> query = rows_from(42, 1);
        numpack::TopK near =
            store.top_k("x", numpack::parse_metric("euclidean"), numpack::VectorsRef(query), 2);
        expect(near.k == 2 && near.indices == std::vector<uint64_t>{37, 36} && near.scores[1] == 20.0,
               "the nearest rows");
        std::cout << "nearest to row 42: logical rows " << near.indices[0] << " and "
                  << near.indices[1] << "\n";

        try {
            (void)store.info("missing");
            expect(false, "NOT_FOUND");
        } catch (const numpack::Error& e) {
            expect(e.code() == NPK_STATUS_NOT_FOUND, "NOT_FOUND");
            std::cout << "expected error: " << e.status_name() << ": " << e.message() << "\n";
        }

        for (const char* name : store.list()) std::cout << "arrays: " << name << "\n";
        store.close();
    } catch (const numpack::Error& e) {
        std::cerr << "example_cpp: " << e.what() << "\n";
        return 1;
    }
    std::cout << "example_cpp: ok\n";
    return 0;
}
