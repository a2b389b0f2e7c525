// numpack.hpp: a header-only C++17 wrapper over the C API in numpack.h.
//
// - Handles are move-only RAII classes: numpack::Store, numpack::View, numpack::Stream,
//   numpack::Names. Their destructors release the C handle (never throw); capi() gives
//   the raw pointer, release() gives up ownership of it.
// - Every failing status becomes a numpack::Error carrying the npk_status code and the
//   library's message (npk_last_error_message(), read on the failing thread).
// - Typed access: numpack::dtype_of<T> maps float, int32_t, std::complex<double>, ... to
//   NPK_DTYPE_*; Store::load<T>, read_rows<T>, read_range<T> return numpack::Array<T> (a
//   std::vector<T> plus the shape) and throw Error(NPK_STATUS_DTYPE_MISMATCH) when T is
//   not the array's element type. bool arrays are read through the untyped *_bytes calls
//   or View::data<bool>() (std::vector<bool> cannot hold them).
// - Rows: Array<T>::rows() and View::rows<T>() are ranges of numpack::Span<T> (one span
//   per logical row); a View's rows skip deleted rows through its row map, zero-copy.
// - Vector search: numpack::top_k, scores and distance over numpack::VectorsRef (a
//   borrowed row-major matrix of vectors, npk_vectors), and Store::top_k / Store::scores
//   over a stored array's live rows. Metrics are the C enum npk_metric (NPK_METRIC_COSINE,
//   ...); parse_metric("cos") reads a name. Results: numpack::TopK and numpack::Scores.
// - Packages (.npkg): numpack::package::pack / unpack / info (at the end of this file).
// - safetensors files: numpack::safetensors::read_header / import_file / export_file.
// - Every std::string passed to the library is checked for an embedded '\0' first
//   (detail::cstr): C would silently cut "x\0y" to "x"; it throws Error instead.
//
// Thread safety is that of the C API (see numpack.h): a Store may be shared between
// threads; a Stream may not.
#ifndef NUMPACK_HPP
#define NUMPACK_HPP

#include "numpack.h"

#include <algorithm>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>     // check (cli branch)
#include <optional>   // check (cli branch)
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace numpack {

// ---------------------------------------------------------------------------------------
// Errors

/// A failed call: the npk_status code and the library's message.
class Error : public std::runtime_error {
public:
    Error(npk_status code, const std::string& message)
        : std::runtime_error(std::string(npk_status_name(static_cast<uint32_t>(code))) + ": " +
                             message),
          code_(code), message_(message) {}

    /// The status code (compare with NPK_STATUS_*).
    npk_status code() const noexcept { return code_; }
    /// The identifier of the code, e.g. "NOT_FOUND".
    const char* status_name() const noexcept {
        return npk_status_name(static_cast<uint32_t>(code_));
    }
    /// The library's message alone (what() is "NAME: message").
    const std::string& message() const noexcept { return message_; }

private:
    npk_status code_;
    std::string message_;
};

namespace detail {
/// Throws Error when `status` is not NPK_STATUS_OK. Must be called right after the C call
/// on the same thread (the message is per thread).
inline void check(npk_status status) {
    if (status != NPK_STATUS_OK) throw Error(status, npk_last_error_message());
}

/// `s` as a C string for argument `what`. A std::string may hold '\0', where the C
/// string would silently end ("x\0y" would name array "x"): that throws
/// Error(NPK_STATUS_INVALID_ARGUMENT) naming the argument and the string instead.
inline const char* cstr(const std::string& s, const char* what) {
    const std::size_t nul = s.find('\0');
    if (nul != std::string::npos) {
        std::string shown;
        for (char c : s) shown += c == '\0' ? std::string("\\0") : std::string(1, c);
        throw Error(NPK_STATUS_INVALID_ARGUMENT, std::string("argument `") + what + "` (\"" + shown +
                                                     "\") contains a NUL byte at position " +
                                                     std::to_string(nul) + "; C strings cannot hold it");
    }
    return s.c_str();
}
}  // namespace detail

/// The library's version string (compare with NPK_VERSION_STRING, the header's).
inline std::string version() { return npk_version(); }

// ---------------------------------------------------------------------------------------
// Dtypes

/// dtype_of<T>::value is the NPK_DTYPE_* code of element type T. Undefined for other T.
template <class T>
struct dtype_of;

#define NUMPACK_DTYPE_OF_(type, code)                                  \
    template <>                                                        \
    struct dtype_of<type> {                                            \
        static constexpr uint32_t value = static_cast<uint32_t>(code); \
    }
NUMPACK_DTYPE_OF_(bool, NPK_DTYPE_BOOL);
NUMPACK_DTYPE_OF_(uint8_t, NPK_DTYPE_UINT8);
NUMPACK_DTYPE_OF_(uint16_t, NPK_DTYPE_UINT16);
NUMPACK_DTYPE_OF_(uint32_t, NPK_DTYPE_UINT32);
NUMPACK_DTYPE_OF_(uint64_t, NPK_DTYPE_UINT64);
NUMPACK_DTYPE_OF_(int8_t, NPK_DTYPE_INT8);
NUMPACK_DTYPE_OF_(int16_t, NPK_DTYPE_INT16);
NUMPACK_DTYPE_OF_(int32_t, NPK_DTYPE_INT32);
NUMPACK_DTYPE_OF_(int64_t, NPK_DTYPE_INT64);
NUMPACK_DTYPE_OF_(float, NPK_DTYPE_FLOAT32);
NUMPACK_DTYPE_OF_(double, NPK_DTYPE_FLOAT64);
NUMPACK_DTYPE_OF_(std::complex<float>, NPK_DTYPE_COMPLEX64);
NUMPACK_DTYPE_OF_(std::complex<double>, NPK_DTYPE_COMPLEX128);
#undef NUMPACK_DTYPE_OF_
// float16 has no standard C++17 type: use the *_bytes calls (2 bytes per element).

template <class T>
inline constexpr uint32_t dtype_v = dtype_of<std::remove_const_t<T>>::value;

/// Bytes per element of a dtype code (0 for an unknown code).
inline std::size_t dtype_size(uint32_t dtype) noexcept { return npk_dtype_size(dtype); }
/// NumPy name of a dtype code ("float32"), or "" for an unknown code.
inline std::string dtype_name(uint32_t dtype) {
    const char* n = npk_dtype_name(dtype);
    return n ? n : "";
}

namespace detail {
template <class T>
void check_dtype(uint32_t actual, const std::string& name) {
    if (actual != dtype_v<T>) {
        throw Error(NPK_STATUS_DTYPE_MISMATCH, "array '" + name + "' holds " + dtype_name(actual) +
                                                   ", not " + dtype_name(dtype_v<T>));
    }
}
inline uint64_t product(const uint64_t* b, const uint64_t* e) {
    uint64_t n = 1;
    for (; b != e; ++b) n *= *b;
    return n;
}
}  // namespace detail

// ---------------------------------------------------------------------------------------
// Spans and row ranges

/// A contiguous run of elements (std::span is C++20).
template <class T>
class Span {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using iterator = T*;

    constexpr Span() noexcept = default;
    constexpr Span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}

    constexpr T* data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T& operator[](std::size_t i) const noexcept { return data_[i]; }
    constexpr T* begin() const noexcept { return data_; }
    constexpr T* end() const noexcept { return data_ + size_; }
    std::vector<value_type> to_vector() const { return {begin(), end()}; }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

/// The logical rows of C-order data, one Span<T> each. With a row map (a View over an
/// array with deleted rows), logical row i is physical row map[i].
template <class T>
class Rows {
public:
    class iterator {
    public:
        using iterator_category = std::random_access_iterator_tag;
        using value_type = Span<T>;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = Span<T>;

        iterator() = default;
        iterator(const Rows& rows, std::size_t i)
            : base_(rows.base_), row_map_(rows.row_map_), row_elems_(rows.row_elems_), i_(i) {}
        Span<T> operator*() const { return at(i_); }
        Span<T> operator[](difference_type n) const { return at(i_ + n); }
        iterator& operator++() { ++i_; return *this; }
        iterator operator++(int) { iterator t = *this; ++i_; return t; }
        iterator& operator--() { --i_; return *this; }
        iterator operator--(int) { iterator t = *this; --i_; return t; }
        iterator& operator+=(difference_type n) { i_ += n; return *this; }
        iterator& operator-=(difference_type n) { i_ -= n; return *this; }
        friend iterator operator+(iterator it, difference_type n) { return it += n; }
        friend iterator operator+(difference_type n, iterator it) { return it += n; }
        friend iterator operator-(iterator it, difference_type n) { return it -= n; }
        friend difference_type operator-(const iterator& a, const iterator& b) {
            return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
        }
        friend bool operator==(const iterator& a, const iterator& b) { return a.i_ == b.i_; }
        friend bool operator!=(const iterator& a, const iterator& b) { return a.i_ != b.i_; }
        friend bool operator<(const iterator& a, const iterator& b) { return a.i_ < b.i_; }
        friend bool operator>(const iterator& a, const iterator& b) { return a.i_ > b.i_; }
        friend bool operator<=(const iterator& a, const iterator& b) { return a.i_ <= b.i_; }
        friend bool operator>=(const iterator& a, const iterator& b) { return a.i_ >= b.i_; }

    private:
        Span<T> at(std::size_t i) const {
            std::size_t phys = row_map_ ? static_cast<std::size_t>(row_map_[i]) : i;
            return Span<T>(base_ + phys * row_elems_, row_elems_);
        }
        // Copies of the range's fields: iterators outlive the Rows they came from.
        T* base_ = nullptr;
        const uint64_t* row_map_ = nullptr;
        std::size_t row_elems_ = 0;
        std::size_t i_ = 0;
    };

    Rows() = default;
    Rows(T* base, std::size_t count, std::size_t row_elems, const uint64_t* row_map = nullptr)
        : base_(base), count_(count), row_elems_(row_elems), row_map_(row_map) {}

    std::size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    /// Elements per row.
    std::size_t row_size() const noexcept { return row_elems_; }
    Span<T> operator[](std::size_t i) const {
        std::size_t phys = row_map_ ? static_cast<std::size_t>(row_map_[i]) : i;
        return Span<T>(base_ + phys * row_elems_, row_elems_);
    }
    /// Like operator[], but throws Error(NPK_STATUS_INDEX_OUT_OF_RANGE).
    Span<T> at(std::size_t i) const {
        if (i >= count_) {
            throw Error(NPK_STATUS_INDEX_OUT_OF_RANGE,
                        "row " + std::to_string(i) + " of " + std::to_string(count_));
        }
        return (*this)[i];
    }
    iterator begin() const { return iterator(*this, 0); }
    iterator end() const { return iterator(*this, count_); }

private:
    T* base_ = nullptr;
    std::size_t count_ = 0;
    std::size_t row_elems_ = 0;
    const uint64_t* row_map_ = nullptr;
};

/// Elements copied out of a store: C-order data and its shape.
template <class T>
struct Array {
    static_assert(!std::is_same<T, bool>::value,
                  "std::vector<bool> cannot hold a bool array: use Store::load_bytes");
    std::vector<T> data;
    std::vector<uint64_t> shape;

    /// Rows (shape[0]); 1 for a 0-d array.
    std::size_t row_count() const noexcept {
        return shape.empty() ? 1 : static_cast<std::size_t>(shape[0]);
    }
    /// Elements per row.
    std::size_t row_size() const noexcept {
        return shape.empty() ? 1
                             : static_cast<std::size_t>(
                                   detail::product(shape.data() + 1, shape.data() + shape.size()));
    }
    Rows<T> rows() { return Rows<T>(data.data(), row_count(), row_size()); }
    Rows<const T> rows() const { return Rows<const T>(data.data(), row_count(), row_size()); }
    Span<T> row(std::size_t i) { return rows().at(i); }
    Span<const T> row(std::size_t i) const { return rows().at(i); }
};

/// What Store::info reports about an array.
struct ArrayInfo {
    uint32_t dtype = 0;
    std::vector<uint64_t> shape;  ///< logical: shape[0] counts live rows
    uint64_t physical_rows = 0;   ///< rows in the data file, deleted ones included
    uint64_t modified_us = 0;     ///< last change, microseconds since the Unix epoch

    std::size_t ndim() const noexcept { return shape.size(); }
    /// Elements per row (1 for 0-d arrays).
    uint64_t row_size() const noexcept {
        return shape.empty() ? 1 : detail::product(shape.data() + 1, shape.data() + shape.size());
    }
    /// Bytes per row.
    std::size_t row_bytes() const noexcept {
        return static_cast<std::size_t>(row_size()) * dtype_size(dtype);
    }
    /// Elements in all live rows.
    uint64_t size() const noexcept { return detail::product(shape.data(), shape.data() + shape.size()); }
};

// --- compressed arrays ----------------------------------------------------------------

/// How Store::save_with stores an array (npk_save_options). Default: plain (.npkd).
struct SaveOptions {
    uint32_t compression = NPK_COMPRESSION_NONE;  ///< NPK_COMPRESSION_NONE or _ZSTD
    int32_t level = 0;  ///< zstd level 1..22 (or -7..-1); 0: the default, 3

    /// zstd-compressed chunks (data_<name>.npkz, not readable by NumPack).
    static SaveOptions zstd(int32_t level = 0) {
        SaveOptions o;
        o.compression = NPK_COMPRESSION_ZSTD;
        o.level = level;
        return o;
    }
    npk_save_options capi() const noexcept {
        npk_save_options o;
        o.compression = compression;
        o.level = level;
        return o;
    }
};

/// What Store::compression reports (npk_compression_info).
struct CompressionInfo {
    uint32_t compression = NPK_COMPRESSION_NONE;
    int32_t level = 0;
    uint64_t chunks = 0;
    uint64_t rows_per_chunk = 0;
    uint64_t stored_bytes = 0;  ///< the .npkz file, superseded chunks included
    uint64_t raw_bytes = 0;     ///< all physical rows uncompressed

    bool compressed() const noexcept { return compression != NPK_COMPRESSION_NONE; }
    /// raw_bytes / stored_bytes (0 for a plain array).
    double ratio() const noexcept {
        return stored_bytes ? static_cast<double>(raw_bytes) / static_cast<double>(stored_bytes) : 0.0;
    }
};

// --- end compressed arrays ------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// Names

/// A list of array names (npk_names). Move-only.
class Names {
public:
    Names() noexcept = default;
    /// Adopts a list made by npk_store_list.
    explicit Names(npk_names* adopt) noexcept : h_(adopt) {}
    Names(Names&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Names& operator=(Names&& o) noexcept {
        if (this != &o) {
            npk_names_free(h_);
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    Names(const Names&) = delete;
    Names& operator=(const Names&) = delete;
    ~Names() { npk_names_free(h_); }

    std::size_t size() const noexcept { return npk_names_count(h_); }
    bool empty() const noexcept { return size() == 0; }
    /// The name at i; valid while this list lives. nullptr when out of range.
    const char* operator[](std::size_t i) const noexcept { return npk_names_get(h_, i); }
    std::vector<std::string> to_vector() const {
        std::vector<std::string> v;
        for (std::size_t i = 0, n = size(); i < n; ++i) v.emplace_back((*this)[i]);
        return v;
    }

    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = const char*;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = const char*;
        iterator() = default;
        iterator(const Names* n, std::size_t i) : n_(n), i_(i) {}
        const char* operator*() const { return (*n_)[i_]; }
        iterator& operator++() { ++i_; return *this; }
        iterator operator++(int) { iterator t = *this; ++i_; return t; }
        friend bool operator==(const iterator& a, const iterator& b) { return a.i_ == b.i_; }
        friend bool operator!=(const iterator& a, const iterator& b) { return a.i_ != b.i_; }

    private:
        const Names* n_ = nullptr;
        std::size_t i_ = 0;
    };
    iterator begin() const { return iterator(this, 0); }
    iterator end() const { return iterator(this, size()); }

    npk_names* capi() const noexcept { return h_; }
    npk_names* release() noexcept { return std::exchange(h_, nullptr); }
    explicit operator bool() const noexcept { return h_ != nullptr; }

private:
    npk_names* h_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// View

/// A memory map of one array's data file (npk_view). Move-only. Independent of the Store
/// it came from; the spans it gives are valid until it is destroyed.
class View {
public:
    View() noexcept = default;
    /// Adopts a view made by npk_store_view (reads its layout; frees it on failure).
    explicit View(npk_view* adopt) : h_(adopt) {
        if (h_) {
            npk_status st = npk_view_info(h_, &layout_);
            if (st != NPK_STATUS_OK) {
                Error e(st, npk_last_error_message());
                npk_view_free(std::exchange(h_, nullptr));
                throw e;
            }
        }
    }
    View(View&& o) noexcept : h_(std::exchange(o.h_, nullptr)), layout_(o.layout_) {}
    View& operator=(View&& o) noexcept {
        if (this != &o) {
            npk_view_free(h_);
            h_ = std::exchange(o.h_, nullptr);
            layout_ = o.layout_;
        }
        return *this;
    }
    View(const View&) = delete;
    View& operator=(const View&) = delete;
    ~View() { npk_view_free(h_); }

    const npk_view_layout& layout() const noexcept { return layout_; }
    uint32_t dtype() const noexcept { return layout_.dtype; }
    std::size_t ndim() const noexcept { return layout_.ndim; }
    /// Physical shape (deleted rows included).
    std::vector<uint64_t> physical_shape() const {
        return {layout_.shape, layout_.shape + layout_.ndim};
    }
    /// Logical shape (live rows only).
    std::vector<uint64_t> shape() const {
        std::vector<uint64_t> s = physical_shape();
        if (!s.empty()) s[0] = layout_.rows;
        return s;
    }
    /// Live rows.
    std::size_t row_count() const noexcept { return static_cast<std::size_t>(layout_.rows); }
    /// Elements per row.
    std::size_t row_size() const noexcept {
        return layout_.ndim == 0 ? 1
                                 : static_cast<std::size_t>(detail::product(
                                       layout_.shape + 1, layout_.shape + layout_.ndim));
    }
    bool writable() const noexcept { return layout_.writable_data != nullptr; }
    /// True when some rows are deleted (logical rows then go through the row map).
    bool has_holes() const noexcept { return layout_.row_map != nullptr; }

    /// All physical rows as elements of T (throws on a dtype mismatch).
    template <class T>
    Span<const T> data() const {
        detail::check_dtype<T>(layout_.dtype, "view");
        return Span<const T>(static_cast<const T*>(layout_.data), layout_.nbytes / sizeof(T));
    }
    /// The logical rows, zero-copy (throws on a dtype mismatch).
    template <class T>
    Rows<const T> rows() const {
        detail::check_dtype<T>(layout_.dtype, "view");
        return Rows<const T>(static_cast<const T*>(layout_.data), row_count(), row_size(),
                             layout_.row_map);
    }
    /// The logical rows, writable (view made with NPK_VIEW_WRITABLE; else throws READ_ONLY).
    template <class T>
    Rows<T> writable_rows() const {
        detail::check_dtype<T>(layout_.dtype, "view");
        if (!writable() && layout_.nbytes != 0) {
            throw Error(NPK_STATUS_READ_ONLY, "view was not made with NPK_VIEW_WRITABLE");
        }
        return Rows<T>(static_cast<T*>(layout_.writable_data), row_count(), row_size(),
                       layout_.row_map);
    }
    /// Writes a writable view's changes to the data file.
    void flush() const { detail::check(npk_view_flush(h_)); }

    npk_view* capi() const noexcept { return h_; }
    npk_view* release() noexcept {
        layout_ = npk_view_layout{};
        return std::exchange(h_, nullptr);
    }
    explicit operator bool() const noexcept { return h_ != nullptr; }

private:
    npk_view* h_ = nullptr;
    npk_view_layout layout_{};
};

// ---------------------------------------------------------------------------------------
// Stream

/// Reads one array's live rows in batches (npk_stream). Move-only; not thread-safe.
class Stream {
public:
    Stream() noexcept = default;
    /// Adopts a stream made by npk_store_stream over rows of `row_bytes` bytes of `dtype`.
    Stream(npk_stream* adopt, uint64_t batch_rows, uint32_t dtype, std::size_t row_bytes) noexcept
        : h_(adopt), batch_rows_(batch_rows), dtype_(dtype), row_bytes_(row_bytes) {}
    Stream(Stream&& o) noexcept
        : h_(std::exchange(o.h_, nullptr)), batch_rows_(o.batch_rows_), dtype_(o.dtype_),
          row_bytes_(o.row_bytes_) {}
    Stream& operator=(Stream&& o) noexcept {
        if (this != &o) {
            npk_stream_free(h_);
            h_ = std::exchange(o.h_, nullptr);
            batch_rows_ = o.batch_rows_;
            dtype_ = o.dtype_;
            row_bytes_ = o.row_bytes_;
        }
        return *this;
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    ~Stream() { npk_stream_free(h_); }

    uint64_t batch_rows() const noexcept { return batch_rows_; }
    uint32_t dtype() const noexcept { return dtype_; }
    /// Bytes per row.
    std::size_t row_bytes() const noexcept { return row_bytes_; }

    /// Reads the next batch into `buf` (at least batch_rows() rows); returns the rows
    /// read, 0 at the end.
    uint64_t next_bytes(void* buf, std::size_t buf_len) {
        uint64_t rows = 0;
        detail::check(npk_stream_next(h_, buf, buf_len, &rows));
        return rows;
    }
    /// Reads the next batch into `out` (resized to the rows read); false at the end.
    template <class T>
    bool next(std::vector<T>& out) {
        static_assert(!std::is_same<T, bool>::value, "use next_bytes for bool arrays");
        detail::check_dtype<T>(dtype_, "stream");
        std::size_t row_elems = row_bytes_ / sizeof(T);
        out.resize(static_cast<std::size_t>(batch_rows_) * row_elems);
        uint64_t rows = next_bytes(out.data(), out.size() * sizeof(T));
        out.resize(static_cast<std::size_t>(rows) * row_elems);
        return rows != 0;
    }

    npk_stream* capi() const noexcept { return h_; }
    npk_stream* release() noexcept { return std::exchange(h_, nullptr); }
    explicit operator bool() const noexcept { return h_ != nullptr; }

private:
    npk_stream* h_ = nullptr;
    uint64_t batch_rows_ = 0;
    uint32_t dtype_ = 0;
    std::size_t row_bytes_ = 0;
};

// ---------------------------------------------------------------------------------------
// Vector search (exact top-k; the rules are npk_vector_top_k's in numpack.h)

/// The canonical name of metric `m` ("cosine"), or "" for a value that is not a metric.
inline std::string metric_name(npk_metric m) {
    const char* n = npk_metric_name(static_cast<uint32_t>(m));
    return n ? n : "";
}
/// The metric named `name`: a canonical name or an alias ("cos", "euclidean",
/// "l2_squared", ...), in any letter case. Throws Error(NPK_STATUS_INVALID_ARGUMENT) for
/// an unknown name (the message lists the valid ones).
inline npk_metric parse_metric(const std::string& name) {
    uint32_t out = 0;
    detail::check(npk_metric_parse(detail::cstr(name, "name"), &out));
    return static_cast<npk_metric>(out);
}
/// True for the similarities (dot, inner, cosine: higher ranks first); false for the
/// distances and for a value that is not a metric.
inline bool is_similarity(npk_metric m) noexcept {
    return npk_metric_is_similarity(static_cast<uint32_t>(m));
}
/// The instruction sets the kernels use, e.g. "x86_64: AVX2, FMA, F16C (kernels: avx2)".
inline std::string vector_capabilities() { return npk_vector_capabilities(); }

/// is_vector_element<T>: the element types VectorsRef takes typed (float16 has no C++17
/// type: use VectorsRef's untyped constructor with NPK_DTYPE_FLOAT16).
template <class T>
struct is_vector_element : std::false_type {};
template <>
struct is_vector_element<float> : std::true_type {};
template <>
struct is_vector_element<double> : std::true_type {};
template <>
struct is_vector_element<int8_t> : std::true_type {};
template <>
struct is_vector_element<uint8_t> : std::true_type {};

/// A borrowed row-major matrix of `rows()` vectors of `dim()` elements (npk_vectors). It
/// points into the caller's memory, which must stay alive and unchanged while a call
/// that was given it runs; the library only reads it.
class VectorsRef {
public:
    /// `rows` vectors of `dim` elements of T at `data` (T: float, double, int8_t, uint8_t).
    template <class T>
    VectorsRef(const T* data, uint64_t rows, uint64_t dim) noexcept
        : v_{data, dtype_v<T>, rows, dim} {
        static_assert(is_vector_element<T>::value,
                      "vector search takes float, double, int8_t or uint8_t elements");
    }
    /// The elements of `data` as vectors of `dim` elements. Throws
    /// Error(NPK_STATUS_INVALID_ARGUMENT) when dim is 0, Error(NPK_STATUS_BUFFER_SIZE) when
    /// data.size() is not a multiple of dim.
    template <class T>
    VectorsRef(const std::vector<T>& data, uint64_t dim)
        : VectorsRef(data.data(), rows_of(data.size(), dim), dim) {}
    /// One vector: all of `one`.
    template <class T>
    explicit VectorsRef(const std::vector<T>& one) : VectorsRef(one.data(), 1, one.size()) {}
    /// The rows of a loaded array: Array::row_count() vectors of Array::row_size().
    template <class T>
    explicit VectorsRef(const Array<T>& a) : VectorsRef(a.data.data(), a.row_count(), a.row_size()) {}
    /// Untyped: `rows` vectors of `dim` elements of dtype code `dtype` at `data`, e.g.
    /// NPK_DTYPE_FLOAT16 with 2-byte IEEE half elements.
    VectorsRef(const void* data, uint32_t dtype, uint64_t rows, uint64_t dim) noexcept
        : v_{data, dtype, rows, dim} {}

    uint64_t rows() const noexcept { return v_.rows; }
    uint64_t dim() const noexcept { return v_.dim; }
    uint32_t dtype() const noexcept { return v_.dtype; }
    /// Vector `i` alone; throws Error(NPK_STATUS_INDEX_OUT_OF_RANGE) past the last.
    VectorsRef row(uint64_t i) const {
        if (i >= v_.rows) {
            throw Error(NPK_STATUS_INDEX_OUT_OF_RANGE,
                        "vector " + std::to_string(i) + " of " + std::to_string(v_.rows));
        }
        const char* base = static_cast<const char*>(v_.data);
        return VectorsRef(base + i * v_.dim * dtype_size(v_.dtype), v_.dtype, 1, v_.dim);
    }
    const npk_vectors* capi() const noexcept { return &v_; }

private:
    static uint64_t rows_of(std::size_t size, uint64_t dim) {
        if (dim == 0) {
            throw Error(NPK_STATUS_INVALID_ARGUMENT, "vectors need at least one element (dim is 0)");
        }
        if (size % dim != 0) {
            throw Error(NPK_STATUS_BUFFER_SIZE, std::to_string(size) + " elements are not a whole number of " +
                                                    std::to_string(dim) + "-element vectors");
        }
        return size / dim;
    }
    npk_vectors v_;
};

/// Top-k results: `queries` rows of `k` entries each (k = min(requested k, candidates)),
/// best first (similarities descending, distances ascending, equal scores by lower
/// index, NaN last). Entry j of query q is at q * k + j.
struct TopK {
    std::size_t queries = 0;
    std::size_t k = 0;
    std::vector<uint64_t> indices;  ///< candidate rows (logical rows of a stored array)
    std::vector<double> scores;

    /// Query q's candidate rows, best first; throws Error(INDEX_OUT_OF_RANGE) past the last.
    Span<const uint64_t> indices_of(std::size_t q) const {
        check_query(q);
        return Span<const uint64_t>(indices.data() + q * k, k);
    }
    /// Query q's scores, best first.
    Span<const double> scores_of(std::size_t q) const {
        check_query(q);
        return Span<const double>(scores.data() + q * k, k);
    }

private:
    void check_query(std::size_t q) const {
        if (q >= queries) {
            throw Error(NPK_STATUS_INDEX_OUT_OF_RANGE,
                        "query " + std::to_string(q) + " of " + std::to_string(queries));
        }
    }
};

/// The metric between every query and every candidate: values[q * candidates + c].
struct Scores {
    std::size_t queries = 0;
    std::size_t candidates = 0;  ///< for a stored array: its live rows
    std::vector<double> values;

    double operator()(std::size_t q, std::size_t c) const { return values[q * candidates + c]; }
    /// Query q's scores against every candidate; throws Error(INDEX_OUT_OF_RANGE) past the last.
    Span<const double> row(std::size_t q) const {
        if (q >= queries) {
            throw Error(NPK_STATUS_INDEX_OUT_OF_RANGE,
                        "query " + std::to_string(q) + " of " + std::to_string(queries));
        }
        return Span<const double>(values.data() + q * candidates, candidates);
    }
};

/// The metric between vectors `a` and `b` (one row each, equal dim). Throws Error:
/// SHAPE_MISMATCH (dims differ, not one row each), DTYPE_MISMATCH, INVALID_ARGUMENT.
inline double distance(npk_metric m, const VectorsRef& a, const VectorsRef& b) {
    double out = 0;
    detail::check(npk_vector_distance(static_cast<uint32_t>(m), a.capi(), b.capi(), &out));
    return out;
}

/// The metric between every query and every candidate (npk_vector_scores).
inline Scores scores(npk_metric m, const VectorsRef& queries, const VectorsRef& candidates) {
    Scores s;
    s.queries = static_cast<std::size_t>(queries.rows());
    s.candidates = static_cast<std::size_t>(candidates.rows());
    s.values.resize(s.queries * s.candidates);
    detail::check(npk_vector_scores(static_cast<uint32_t>(m), queries.capi(), candidates.capi(),
                                    s.values.data(), s.values.size()));
    return s;
}

/// The k best candidates of each query (npk_vector_top_k); k larger than the candidates
/// gives them all, k = 0 none.
inline TopK top_k(npk_metric m, const VectorsRef& queries, const VectorsRef& candidates, uint64_t k) {
    TopK r;
    r.queries = static_cast<std::size_t>(queries.rows());
    std::size_t len = r.queries * static_cast<std::size_t>(std::min(k, candidates.rows()));
    r.indices.resize(len);
    r.scores.resize(len);
    uint64_t kk = 0;
    detail::check(npk_vector_top_k(static_cast<uint32_t>(m), queries.capi(), candidates.capi(), k,
                                   r.indices.data(), r.scores.data(), len, &kk));
    r.k = static_cast<std::size_t>(kk);
    return r;
}

// ---------------------------------------------------------------------------------------
// Store

/// An open store (npk_store). Move-only; may be used from many threads at once.
class Store {
public:
    /// An empty handle (every call on it throws NULL_ARGUMENT).
    Store() noexcept = default;
    /// Adopts a handle made by npk_store_open.
    explicit Store(npk_store* adopt) noexcept : h_(adopt) {}
    /// Opens the store at `path`; flags are NPK_OPEN_* (default: create if missing).
    explicit Store(const std::string& path, uint32_t flags = NPK_OPEN_CREATE) {
        detail::check(npk_store_open(detail::cstr(path, "path"), flags, &h_));
    }
    static Store open(const std::string& path, uint32_t flags = NPK_OPEN_CREATE) {
        return Store(path, flags);
    }
    Store(Store&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Store& operator=(Store&& o) noexcept {
        if (this != &o) {
            npk_store_close(h_);
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;
    /// Closes the handle, ignoring errors: call close() to see them.
    ~Store() { npk_store_close(h_); }

    /// Folds pending changes into the metadata and releases the handle (released even
    /// when this throws). Closing an empty Store does nothing.
    void close() { detail::check(npk_store_close(std::exchange(h_, nullptr))); }

    npk_store* capi() const noexcept { return h_; }
    npk_store* release() noexcept { return std::exchange(h_, nullptr); }
    explicit operator bool() const noexcept { return h_ != nullptr; }

    void sync() const { detail::check(npk_store_sync(h_)); }
    void refresh() const { detail::check(npk_store_refresh(h_)); }
    bool read_only() const {
        bool out = false;
        detail::check(npk_store_is_read_only(h_, &out));
        return out;
    }

    Names list() const {
        npk_names* out = nullptr;
        detail::check(npk_store_list(h_, &out));
        return Names(out);
    }
    std::vector<std::string> names() const { return list().to_vector(); }
    bool has(const std::string& name) const {
        bool out = false;
        detail::check(npk_store_has(h_, detail::cstr(name, "name"), &out));
        return out;
    }
    ArrayInfo info(const std::string& name) const {
        npk_array_info raw{};
        detail::check(npk_store_info(h_, detail::cstr(name, "name"), &raw));
        ArrayInfo info;
        info.dtype = raw.dtype;
        info.shape.assign(raw.shape, raw.shape + raw.ndim);
        info.physical_rows = raw.physical_rows;
        info.modified_us = raw.modified_us;
        return info;
    }

    // -- writing ---------------------------------------------------------------------

    /// Creates or replaces `name` with raw bytes of `dtype` and `shape`.
    void save_bytes(const std::string& name, uint32_t dtype, const std::vector<uint64_t>& shape,
                    const void* data, std::size_t nbytes) const {
        detail::check(npk_store_save(h_, detail::cstr(name, "name"), dtype, shape.size(), shape.data(), data,
                                     nbytes));
    }
    /// Creates or replaces `name` with `count` elements of T at `data`, of shape `shape`.
    template <class T>
    void save(const std::string& name, const T* data, std::size_t count,
              const std::vector<uint64_t>& shape) const {
        save_bytes(name, dtype_v<T>, shape, data, count * sizeof(T));
    }
    template <class T>
    void save(const std::string& name, const std::vector<T>& data,
              const std::vector<uint64_t>& shape) const {
        save(name, data.data(), data.size(), shape);
    }
    template <class T>
    void save(const std::string& name, const Array<T>& a) const {
        save(name, a.data, a.shape);
    }

    // -- compressed arrays -----------------------------------------------------------

    /// save_bytes with options (npk_store_save_with): SaveOptions::zstd(level) stores
    /// the array compressed.
    void save_bytes_with(const std::string& name, uint32_t dtype, const std::vector<uint64_t>& shape,
                         const void* data, std::size_t nbytes, const SaveOptions& opts) const {
        npk_save_options o = opts.capi();
        detail::check(npk_store_save_with(h_, detail::cstr(name, "name"), dtype, shape.size(), shape.data(),
                                          data, nbytes, &o));
    }
    template <class T>
    void save_with(const std::string& name, const std::vector<T>& data,
                   const std::vector<uint64_t>& shape, const SaveOptions& opts) const {
        save_bytes_with(name, dtype_v<T>, shape, data.data(), data.size() * sizeof(T), opts);
    }
    template <class T>
    void save_with(const std::string& name, const Array<T>& a, const SaveOptions& opts) const {
        save_with(name, a.data, a.shape, opts);
    }
    /// How `name` is stored (npk_store_compression); compressed() is false for a plain
    /// array.
    CompressionInfo compression(const std::string& name) const {
        npk_compression_info raw;
        detail::check(npk_store_compression(h_, detail::cstr(name, "name"), &raw));
        CompressionInfo c;
        c.compression = raw.compression;
        c.level = raw.level;
        c.chunks = raw.chunks;
        c.rows_per_chunk = raw.rows_per_chunk;
        c.stored_bytes = raw.stored_bytes;
        c.raw_bytes = raw.raw_bytes;
        return c;
    }

    // -- end compressed arrays -------------------------------------------------------

    /// Appends rows: `shape` describes `data` (shape[0] rows, the array's trailing dims).
    template <class T>
    void append(const std::string& name, const T* data, std::size_t count,
                const std::vector<uint64_t>& shape) const {
        detail::check(npk_store_append(h_, detail::cstr(name, "name"), dtype_v<T>, shape.size(), shape.data(),
                                       data, count * sizeof(T)));
    }
    template <class T>
    void append(const std::string& name, const std::vector<T>& data,
                const std::vector<uint64_t>& shape) const {
        append(name, data.data(), data.size(), shape);
    }
    template <class T>
    void append(const std::string& name, const Array<T>& a) const {
        append(name, a.data, a.shape);
    }

    /// Overwrites the rows at logical indices `idx` with the rows of `data`, in order.
    template <class T>
    void replace_rows(const std::string& name, const std::vector<int64_t>& idx,
                      const std::vector<T>& data) const {
        detail::check(npk_store_replace_rows(h_, detail::cstr(name, "name"), dtype_v<T>, idx.data(), idx.size(),
                                             data.data(), data.size() * sizeof(T)));
    }
    /// Overwrites `rows` rows from `start` with `data`.
    template <class T>
    void replace_range(const std::string& name, uint64_t start, uint64_t rows,
                       const std::vector<T>& data) const {
        detail::check(npk_store_replace_range(h_, detail::cstr(name, "name"), dtype_v<T>, start, rows,
                                              data.data(), data.size() * sizeof(T)));
    }
    /// Deletes rows (logical indices; negative count from the end) until compact().
    void delete_rows(const std::string& name, const std::vector<int64_t>& idx) const {
        detail::check(npk_store_delete_rows(h_, detail::cstr(name, "name"), idx.data(), idx.size()));
    }
    void drop(const std::string& name) const { detail::check(npk_store_drop(h_, detail::cstr(name, "name"))); }
    void compact(const std::string& name) const {
        detail::check(npk_store_compact(h_, detail::cstr(name, "name")));
    }
    void clone(const std::string& src, const std::string& dst) const {
        detail::check(npk_store_clone(h_, detail::cstr(src, "src"), detail::cstr(dst, "dst")));
    }
    void rename(const std::string& from, const std::string& to) const {
        detail::check(npk_store_rename(h_, detail::cstr(from, "from"), detail::cstr(to, "to")));
    }
    void reset() const { detail::check(npk_store_reset(h_)); }

    // -- reading ---------------------------------------------------------------------

    /// Copies all live rows into `buf` (exactly the array's logical size in bytes).
    void load_bytes(const std::string& name, void* buf, std::size_t nbytes) const {
        detail::check(npk_store_load(h_, detail::cstr(name, "name"), buf, nbytes));
    }
    /// All live rows; throws Error(DTYPE_MISMATCH) unless T is the array's element type.
    template <class T>
    Array<T> load(const std::string& name) const {
        ArrayInfo in = info(name);
        detail::check_dtype<T>(in.dtype, name);
        Array<T> a;
        a.data.resize(static_cast<std::size_t>(in.size()));
        load_bytes(name, a.data.data(), a.data.size() * sizeof(T));
        a.shape = std::move(in.shape);
        return a;
    }
    /// Rows at logical indices `idx` (negative count from the end), in order.
    template <class T>
    Array<T> read_rows(const std::string& name, const std::vector<int64_t>& idx) const {
        ArrayInfo in = info(name);
        detail::check_dtype<T>(in.dtype, name);
        if (in.shape.empty()) throw Error(NPK_STATUS_SHAPE_MISMATCH, "0-d array '" + name + "'");
        Array<T> a;
        a.data.resize(idx.size() * static_cast<std::size_t>(in.row_size()));
        detail::check(npk_store_read_rows(h_, detail::cstr(name, "name"), idx.data(), idx.size(), a.data.data(),
                                          a.data.size() * sizeof(T)));
        a.shape = std::move(in.shape);
        a.shape[0] = idx.size();
        return a;
    }
    /// Logical rows [start, stop).
    template <class T>
    Array<T> read_range(const std::string& name, uint64_t start, uint64_t stop) const {
        ArrayInfo in = info(name);
        detail::check_dtype<T>(in.dtype, name);
        if (in.shape.empty()) throw Error(NPK_STATUS_SHAPE_MISMATCH, "0-d array '" + name + "'");
        uint64_t n = stop >= start ? stop - start : 0;
        Array<T> a;
        a.data.resize(static_cast<std::size_t>(n * in.row_size()));
        detail::check(npk_store_read_range(h_, detail::cstr(name, "name"), start, stop, a.data.data(),
                                           a.data.size() * sizeof(T)));
        a.shape = std::move(in.shape);
        a.shape[0] = n;
        return a;
    }

    /// A zero-copy map of the array (flags: 0 or NPK_VIEW_WRITABLE).
    View view(const std::string& name, uint32_t flags = 0) const {
        npk_view* out = nullptr;
        detail::check(npk_store_view(h_, detail::cstr(name, "name"), flags, &out));
        return View(out);
    }
    /// Reads the array's live rows in batches of `batch_rows`.
    Stream stream(const std::string& name, uint64_t batch_rows) const {
        ArrayInfo in = info(name);
        npk_stream* out = nullptr;
        detail::check(npk_store_stream(h_, detail::cstr(name, "name"), batch_rows, &out));
        return Stream(out, batch_rows, in.dtype, in.row_bytes());
    }

    // -- vector search ---------------------------------------------------------------

    /// top_k over the live rows of array `name`, read in place through its memory map
    /// (npk_store_top_k): indices are logical rows, deleted rows skipped. A 1-d array is
    /// vectors of one element; an N-d array's vectors are its rows.
    TopK top_k(const std::string& name, npk_metric m, const VectorsRef& queries, uint64_t k) const {
        uint64_t n = live_rows(name);
        TopK r;
        r.queries = static_cast<std::size_t>(queries.rows());
        std::size_t len = r.queries * static_cast<std::size_t>(std::min(k, n));
        r.indices.resize(len);
        r.scores.resize(len);
        uint64_t kk = 0;
        detail::check(npk_store_top_k(h_, detail::cstr(name, "name"), static_cast<uint32_t>(m), queries.capi(), k,
                                      r.indices.data(), r.scores.data(), len, &kk));
        r.k = static_cast<std::size_t>(kk);
        // Fewer rows than sized for if some were deleted meanwhile (the layout is compact).
        r.indices.resize(r.queries * r.k);
        r.scores.resize(r.queries * r.k);
        return r;
    }
    /// scores against the live rows of array `name` (npk_store_scores):
    /// Scores::candidates is the number of live rows.
    Scores scores(const std::string& name, npk_metric m, const VectorsRef& queries) const {
        uint64_t n = live_rows(name);
        Scores s;
        s.queries = static_cast<std::size_t>(queries.rows());
        s.values.resize(s.queries * static_cast<std::size_t>(n));
        uint64_t n_out = 0;
        detail::check(npk_store_scores(h_, detail::cstr(name, "name"), static_cast<uint32_t>(m), queries.capi(),
                                       s.values.data(), s.values.size(), &n_out));
        s.candidates = static_cast<std::size_t>(n_out);
        s.values.resize(s.queries * s.candidates);
        return s;
    }

private:
    // Live rows now, to size the outputs (0 for a 0-d array, which the search rejects).
    uint64_t live_rows(const std::string& name) const {
        ArrayInfo in = info(name);
        return in.shape.empty() ? 0 : in.shape[0];
    }

    npk_store* h_ = nullptr;
};

// --- .npy interop ---
// ---------------------------------------------------------------------------------------
// .npy / .npz files (npk_npy_*, npk_npz_import)

/// NumPy .npy / .npz interop: import into a Store, export from it, append rows to a .npy
/// in place (safe with concurrent appenders), make legacy files appendable, recover files
/// left by a crashed appender. Import and export are streamed; export is atomic.
}  // namespace numpack
#include <exception>   // Progress
#include <functional>  // Progress
namespace numpack {

/// Progress callback of the long operations (.npy import, export and append; package
/// pack and unpack): (bytes done, bytes in all). Return false to cancel: the call then
/// throws Error(NPK_STATUS_CANCELLED) and leaves nothing half-done. An exception it
/// throws also cancels the call and is rethrown as it is.
using Progress = std::function<bool(uint64_t done, uint64_t total)>;

namespace detail {
/// Carries a std::function through the C callback; never lets an exception cross it.
struct ProgressTrampoline {
    const Progress* fn;
    std::exception_ptr error;
    static bool call(uint64_t done, uint64_t total, void* self) noexcept {
        auto* t = static_cast<ProgressTrampoline*>(self);
        try {
            return (*t->fn)(done, total);
        } catch (...) {
            t->error = std::current_exception();
            return false;
        }
    }
};

/// Runs `call(progress_fn, user_data)`, which returns a status; rethrows the callback's
/// exception, or throws the status's Error (its message read before anything else runs).
template <class Call>
void run_with_progress(const Progress& progress, Call&& call) {
    ProgressTrampoline t{&progress, nullptr};
    npk_status st = progress ? call(&ProgressTrampoline::call, static_cast<void*>(&t))
                             : call(nullptr, nullptr);
    if (t.error) std::rethrow_exception(t.error);
    check(st);
}
}  // namespace detail

namespace npy {

/// What a .npy header says (npk_npy_file_info).
struct FileInfo {
    uint32_t dtype = 0;           ///< an npk_dtype value
    std::vector<uint64_t> shape;  ///< empty for a 0-d array
    uint32_t version_major = 1, version_minor = 0;
    bool big_endian = false, fortran_order = false;
    bool appendable = false;      ///< append() works without make_appendable()
    uint64_t header_len = 0, data_offset = 0, file_size = 0;

    /// The file holds exactly the data its shape calls for (else: recover()).
    bool complete() const noexcept {
        return file_size == data_offset + detail::product(shape.data(), shape.data() + shape.size()) *
                                              dtype_size(dtype);
    }
};

/// What recover() did (npk_npy_recovery).
struct Recovery {
    uint64_t header_rows = 0, rows = 0, dropped_bytes = 0, zero_filled_bytes = 0;
    bool rewritten = false;
    bool clean() const noexcept {
        return header_rows == rows && dropped_bytes == 0 && zero_filled_bytes == 0 && !rewritten;
    }
};

/// Progress callback of import_file, import_npz, export_file and append_file: (bytes of
/// data done, bytes in all), called at the start, after every block of a few MB and at
/// the end. Return false to cancel: the call then throws Error(NPK_STATUS_CANCELLED)
/// and leaves nothing half-done (no array; the old target file; the old rows). An
/// exception it throws also cancels the call and is rethrown as it is.
using Progress = numpack::Progress;

/// The header of the .npy file at `path`.
inline FileInfo info(const std::string& path) {
    npk_npy_file_info raw{};
    detail::check(npk_npy_info(detail::cstr(path, "path"), &raw));
    FileInfo fi;
    fi.dtype = raw.dtype;
    fi.shape.assign(raw.shape, raw.shape + raw.ndim);
    fi.version_major = raw.version_major;
    fi.version_minor = raw.version_minor;
    fi.big_endian = raw.big_endian;
    fi.fortran_order = raw.fortran_order;
    fi.appendable = raw.appendable;
    fi.header_len = raw.header_len;
    fi.data_offset = raw.data_offset;
    fi.file_size = raw.file_size;
    return fi;
}

/// Imports the .npy at `path` into array `name` (converted to C order, native bytes).
inline void import_file(const Store& store, const std::string& name, const std::string& path,
                        bool overwrite = false, const Progress& progress = {}) {
    detail::run_with_progress(progress, [&](npk_progress_fn fn, void* ud) {
        return npk_npy_import(store.capi(), detail::cstr(name, "name"), detail::cstr(path, "path"), overwrite ? NPK_NPY_OVERWRITE : 0,
                              fn, ud);
    });
}

/// Imports every member of the .npz at `path`; returns the array names, in archive order.
inline std::vector<std::string> import_npz(const Store& store, const std::string& path,
                                           bool overwrite = false, const Progress& progress = {}) {
    npk_names* out = nullptr;
    detail::run_with_progress(progress, [&](npk_progress_fn fn, void* ud) {
        return npk_npz_import(store.capi(), detail::cstr(path, "path"), overwrite ? NPK_NPY_OVERWRITE : 0, fn, ud, &out);
    });
    return Names(out).to_vector();
}

/// Exports array `name` to a .npy at `path` (deleted rows left out; atomic; appendable).
inline void export_file(const Store& store, const std::string& name, const std::string& path,
                        bool overwrite = false, const Progress& progress = {}) {
    detail::run_with_progress(progress, [&](npk_progress_fn fn, void* ud) {
        return npk_npy_export(store.capi(), detail::cstr(name, "name"), detail::cstr(path, "path"), overwrite ? NPK_NPY_OVERWRITE : 0,
                              fn, ud);
    });
}

/// Creates an empty appendable .npy of shape (0, *row_shape).
inline void create_appendable(const std::string& path, uint32_t dtype,
                              const std::vector<uint64_t>& row_shape) {
    detail::check(npk_npy_create_appendable(detail::cstr(path, "path"), dtype,
                                            static_cast<uint32_t>(row_shape.size()), row_shape.data()));
}
template <class T>
void create_appendable(const std::string& path, const std::vector<uint64_t>& row_shape) {
    create_appendable(path, dtype_v<T>, row_shape);
}

/// Appends `nbytes` of rows of `dtype` shaped `row_shape`; returns the file's row count.
/// `flags`: NPK_NPY_SYNC, NPK_NPY_CREATE.
inline uint64_t append_bytes(const std::string& path, uint32_t dtype,
                             const std::vector<uint64_t>& row_shape, const void* data,
                             std::size_t nbytes, uint32_t flags = 0) {
    uint64_t rows = 0;
    detail::check(npk_npy_append(detail::cstr(path, "path"), dtype, static_cast<uint32_t>(row_shape.size()),
                                 row_shape.data(), data, nbytes, flags, &rows));
    return rows;
}
/// Appends `count` elements of T (whole rows of shape `row_shape`).
template <class T>
uint64_t append(const std::string& path, const T* data, std::size_t count,
                const std::vector<uint64_t>& row_shape, uint32_t flags = 0) {
    return append_bytes(path, dtype_v<T>, row_shape, data, count * sizeof(T), flags);
}
template <class T>
uint64_t append(const std::string& path, const std::vector<T>& data,
                const std::vector<uint64_t>& row_shape, uint32_t flags = 0) {
    return append(path, data.data(), data.size(), row_shape, flags);
}

/// Appends every row of the .npy at `src` to the .npy at `path` (streamed, under one lock);
/// returns the row count. `flags`: NPK_NPY_SYNC, NPK_NPY_CREATE.
inline uint64_t append_file(const std::string& path, const std::string& src, uint32_t flags = 0,
                            const Progress& progress = {}) {
    uint64_t rows = 0;
    detail::run_with_progress(progress, [&](npk_progress_fn fn, void* ud) {
        return npk_npy_append_file(detail::cstr(path, "path"), detail::cstr(src, "src"), flags, fn, ud, &rows);
    });
    return rows;
}

/// Rewrites the file if it cannot grow in place; returns whether it did.
inline bool make_appendable(const std::string& path) {
    bool rewritten = false;
    detail::check(npk_npy_make_appendable(detail::cstr(path, "path"), &rewritten));
    return rewritten;
}

/// Repairs a file left by a crashed appender (drops, or zero-fills, a partial last row).
inline Recovery recover(const std::string& path, bool zero_fill = false) {
    npk_npy_recovery raw{};
    detail::check(npk_npy_recover(detail::cstr(path, "path"), zero_fill ? NPK_NPY_ZERO_FILL : 0, &raw));
    Recovery r;
    r.header_rows = raw.header_rows;
    r.rows = raw.rows;
    r.dropped_bytes = raw.dropped_bytes;
    r.zero_filled_bytes = raw.zero_filled_bytes;
    r.rewritten = raw.rewritten;
    return r;
}

}  // namespace npy

namespace safetensors {

/// One tensor of a .safetensors header (npk_safetensors_tensor).
struct Tensor {
    std::string name;
    std::string dtype_name;         ///< as written: "F32", "BF16", ...
    std::optional<uint32_t> dtype;  ///< the npk_dtype, if numpack holds this one
    std::vector<uint64_t> shape;    ///< empty for a 0-d tensor
    uint64_t begin = 0, end = 0;    ///< byte range, relative to data_offset
};

/// A .safetensors header: tensors in buffer order and the __metadata__ entries.
struct Header {
    std::vector<Tensor> tensors;
    std::vector<std::pair<std::string, std::string>> metadata;
    uint64_t header_len = 0, data_offset = 0, file_size = 0;
};

/// Progress callback of import_file and export_file: as npy::Progress.
using Progress = numpack::Progress;

namespace detail {
/// C string pointers of `v` (each checked for NUL); they live as long as `v`.
inline std::vector<const char*> cstrs(const std::vector<std::string>& v, const char* what) {
    std::vector<const char*> out;
    out.reserve(v.size());
    for (const std::string& s : v) out.push_back(numpack::detail::cstr(s, what));
    return out;
}
}  // namespace detail

/// Reads and checks the header of the .safetensors file at `path` (not its data).
inline Header read_header(const std::string& path) {
    npk_safetensors_header* h = nullptr;
    numpack::detail::check(npk_safetensors_read_header(numpack::detail::cstr(path, "path"), &h));
    std::unique_ptr<npk_safetensors_header, void (*)(npk_safetensors_header*)> owned(h, npk_safetensors_header_free);
    npk_safetensors_summary sum{};
    numpack::detail::check(npk_safetensors_header_summary(h, &sum));
    Header out;
    out.header_len = sum.header_len;
    out.data_offset = sum.data_offset;
    out.file_size = sum.file_size;
    for (uint64_t i = 0; i < sum.tensor_count; ++i) {
        npk_safetensors_tensor t{};
        numpack::detail::check(npk_safetensors_header_get_tensor(h, static_cast<std::size_t>(i), &t));
        Tensor x;
        x.name = t.name;
        x.dtype_name = t.dtype_name;
        if (t.npk_dtype != NPK_SAFETENSORS_NO_DTYPE) x.dtype = t.npk_dtype;
        x.shape.assign(t.shape, t.shape + t.ndim);
        x.begin = t.data_begin;
        x.end = t.data_end;
        out.tensors.push_back(std::move(x));
    }
    for (uint64_t i = 0; i < sum.metadata_count; ++i) {
        const char* k = nullptr;
        const char* v = nullptr;
        numpack::detail::check(npk_safetensors_header_get_metadata(h, static_cast<std::size_t>(i), &k, &v));
        out.metadata.emplace_back(k, v);
    }
    return out;
}

/// Imports the tensors `names` (all when empty) of the .safetensors at `path` into arrays
/// named by their keys; all or nothing. Returns the names imported, in order.
inline std::vector<std::string> import_file(const Store& store, const std::string& path,
                                            const std::vector<std::string>& names = {},
                                            bool overwrite = false, const Progress& progress = {}) {
    const char* p = numpack::detail::cstr(path, "path");
    std::vector<const char*> n = detail::cstrs(names, "names");
    npk_names* out = nullptr;
    numpack::detail::run_with_progress(progress, [&](npk_progress_fn fn, void* ud) {
        return npk_safetensors_import(store.capi(), p, n.data(), n.size(),
                                      overwrite ? NPK_SAFETENSORS_OVERWRITE : 0, fn, ud, &out);
    });
    return Names(out).to_vector();
}

/// Exports the arrays `names` (all when empty) to a .safetensors at `path` with
/// `metadata` as its __metadata__ (deleted rows left out; atomic).
inline void export_file(const Store& store, const std::string& path, const std::vector<std::string>& names = {},
                        const std::vector<std::pair<std::string, std::string>>& metadata = {},
                        bool overwrite = false, const Progress& progress = {}) {
    const char* p = numpack::detail::cstr(path, "path");
    std::vector<const char*> n = detail::cstrs(names, "names");
    std::vector<const char*> keys, values;
    for (const auto& kv : metadata) {
        keys.push_back(numpack::detail::cstr(kv.first, "metadata key"));
        values.push_back(numpack::detail::cstr(kv.second, "metadata value"));
    }
    numpack::detail::run_with_progress(progress, [&](npk_progress_fn fn, void* ud) {
        return npk_safetensors_export(store.capi(), p, n.data(), n.size(), keys.data(), values.data(), keys.size(),
                                      overwrite ? NPK_SAFETENSORS_OVERWRITE : 0, fn, ud);
    });
}

}  // namespace safetensors
// --- end ---

// ---------------------------------------------------------------------------------------
// Check (cli branch)

/// One finding of check(), with copies of the library's strings.
struct Finding {
    /// NPK_SEVERITY_INFO, NPK_SEVERITY_WARNING or NPK_SEVERITY_ERROR.
    uint32_t severity = NPK_SEVERITY_INFO;
    /// Stable identifier, e.g. "data-size-mismatch".
    std::string id;
    /// The file concerned (relative to the store directory), if any.
    std::optional<std::string> file;
    /// The array concerned, if any.
    std::optional<std::string> array;
    /// What is wrong and what to do about it.
    std::string message;

    bool is_error() const noexcept { return severity == NPK_SEVERITY_ERROR; }
    /// "info", "warning" or "error".
    const char* severity_name() const noexcept {
        return severity == NPK_SEVERITY_ERROR ? "error" : severity == NPK_SEVERITY_WARNING ? "warning" : "info";
    }
};

/// Verifies the store at `path` without changing it (npk_store_check) and returns every
/// finding, in the order found; empty for a sound store. Throws Error for no store at
/// `path` (NPK_STATUS_STORE_NOT_FOUND) or an unreadable directory, never for damage.
inline std::vector<Finding> check(const std::string& path) {
    npk_check_report* raw = nullptr;
    detail::check(npk_store_check(detail::cstr(path, "path"), &raw));
    std::unique_ptr<npk_check_report, void (*)(npk_check_report*)> report(raw, npk_check_report_free);
    std::vector<Finding> out;
    for (std::size_t i = 0, n = npk_check_report_len(raw); i < n; ++i) {
        npk_check_finding f;
        detail::check(npk_check_report_get(raw, i, &f));
        Finding g;
        g.severity = f.severity;
        g.id = f.id;
        if (f.file) g.file = std::string(f.file);
        if (f.array) g.array = std::string(f.array);
        g.message = f.message;
        out.push_back(std::move(g));
    }
    return out;
}

}  // namespace numpack

// --- packages (.npkg) -------------------------------------------------------------------
// numpack::package::pack / unpack / info over npk_package_*: NumPack's .npkg files (a
// whole store in one file), streamed in constant memory, CRC32-checked, atomic on disk.

namespace numpack {
namespace package {

/// One file of a package (npk_package_entry).
struct Entry {
    std::string name;            ///< file name in the store: metadata.npkm, data_<a>.npkd, ...
    uint64_t original_size = 0;  ///< its size in the store
    uint64_t stored_size = 0;    ///< compressed size in the package; 0 = stored raw
    uint32_t crc32 = 0;          ///< CRC32 of its bytes, when has_crc32
    bool has_crc32 = false;      ///< true from pack/unpack, false from info (nothing decoded)
};

/// What a package holds (npk_package_summary and its entries).
struct Info {
    uint32_t version = 0;      ///< format version, 1 or 2
    uint32_t compression = 0;  ///< 0 none, 1 zstd (or NumPack's zlib fallback)
    uint64_t total_original_size = 0;
    uint64_t total_stored_size = 0;
    std::vector<Entry> entries;  ///< in package order (sorted by name)
};

/// Progress callback: (bytes done, bytes total); return false to cancel (the call then
/// throws Error(NPK_STATUS_CANCELLED) and leaves no target). An exception it throws also
/// cancels the call and is rethrown as it is.
using Progress = numpack::Progress;

namespace detail {
struct InfoHandle {
    npk_package_info* h = nullptr;
    ~InfoHandle() { npk_package_info_free(h); }
};

inline Info read(const npk_package_info* h) {
    npk_package_summary s{};
    numpack::detail::check(npk_package_get_summary(h, &s));
    Info info;
    info.version = s.version;
    info.compression = s.compression;
    info.total_original_size = s.total_original_size;
    info.total_stored_size = s.total_stored_size;
    info.entries.reserve(static_cast<std::size_t>(s.entry_count));
    for (uint64_t i = 0; i < s.entry_count; ++i) {
        npk_package_entry e{};
        numpack::detail::check(npk_package_get_entry(h, static_cast<std::size_t>(i), &e));
        info.entries.push_back(Entry{e.name, e.original_size, e.stored_size, e.crc32, e.has_crc32});
    }
    return info;
}

/// Runs `call(progress_fn, user_data, &handle)`; rethrows the callback's exception, or
/// throws the status's Error (its message read before anything else runs).
template <class Call>
Info run(const Progress& progress, Call&& call) {
    InfoHandle out;
    numpack::detail::run_with_progress(
        progress, [&](npk_progress_fn fn, void* ud) { return call(fn, ud, &out.h); });
    return read(out.h);
}
}  // namespace detail

/// Packs `store` into the package file `target` (npk_package_pack). `flags`:
/// NPK_PACK_COMPRESS (default) and/or NPK_PACK_OVERWRITE. Returns the package's
/// description with every file's CRC32. Throws Error (ALREADY_EXISTS, CANCELLED, IO, ...).
inline Info pack(const Store& store, const std::string& target, uint32_t flags = NPK_PACK_COMPRESS,
                 const Progress& progress = {}) {
    return detail::run(progress, [&](npk_progress_fn fn, void* ud, npk_package_info** out) {
        return npk_package_pack(store.capi(), numpack::detail::cstr(target, "target"), flags, fn, ud, out);
    });
}

/// Unpacks the package `package_path` into the store directory `target_dir`
/// (npk_package_unpack). `flags`: NPK_UNPACK_VERIFY (default) and/or
/// NPK_UNPACK_OVERWRITE. A failure leaves the target as it was. Throws Error (CORRUPT
/// naming the damaged file, ALREADY_EXISTS, CANCELLED, ...).
inline Info unpack(const std::string& package_path, const std::string& target_dir,
                   uint32_t flags = NPK_UNPACK_VERIFY, const Progress& progress = {}) {
    return detail::run(progress, [&](npk_progress_fn fn, void* ud, npk_package_info** out) {
        return npk_package_unpack(numpack::detail::cstr(package_path, "package_path"), numpack::detail::cstr(target_dir, "target_dir"), flags, fn, ud, out);
    });
}

/// Describes a package from its headers (npk_package_read_info); entries carry no CRC32.
inline Info info(const std::string& package_path) {
    detail::InfoHandle out;
    numpack::detail::check(npk_package_read_info(numpack::detail::cstr(package_path, "package_path"), &out.h));
    return detail::read(out.h);
}

}  // namespace package
}  // namespace numpack
// --- end packages (.npkg) ---

#endif  // NUMPACK_HPP
