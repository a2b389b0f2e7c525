# Exact vector search over the library's kernels: npk_metric_*, npk_vector_*,
# npk_store_top_k and npk_store_scores. Included into module NumPack, whose docstring
# describes the layout and conventions (section "Vector search").

const VectorElement = Union{Float32,Float64,Float16,Int8,UInt8}

"""
    vector_capabilities() -> String

The instruction sets the search kernels use on this machine, e.g.
`"x86_64: AVX2, FMA, F16C (kernels: avx2)"`.
"""
vector_capabilities() = (ensure_loaded(); unsafe_string(L.npk_vector_capabilities()))

"""
    metric_code(metric) -> UInt32

The `npk_metric` code of `metric`: a name or alias as a `String` or `Symbol`, in any
letter case (`:cosine`, `"COS"`, `:euclidean`, `"dot_product"`, ...), or a code (checked).
An unknown metric throws `NumPackError` `INVALID_ARGUMENT`, whose message lists the names.
"""
function metric_code(metric::Union{AbstractString,Symbol})
    ensure_loaded()
    out = Ref{UInt32}(0)
    check(L.npk_metric_parse(String(metric), out))
    return out[]
end
function metric_code(metric::Integer)
    ensure_loaded()
    if !(0 <= metric <= typemax(UInt32)) || L.npk_metric_name(UInt32(metric)) == C_NULL
        throw(NumPackError(L.NPK_STATUS_INVALID_ARGUMENT, "INVALID_ARGUMENT", "$metric is not a metric code"))
    end
    return UInt32(metric)
end

"""
    metric_name(metric) -> String

The canonical name of `metric` (anything [`metric_code`](@ref) takes): `metric_name(:cos)
== "cosine"`.
"""
metric_name(metric) = unsafe_string(L.npk_metric_name(metric_code(metric)))

"""
    metrics() -> Vector{String}

The canonical names of every metric, in code order.
"""
function metrics()
    ensure_loaded()
    names = String[]
    while (p = L.npk_metric_name(UInt32(length(names)))) != C_NULL
        push!(names, unsafe_string(p))
    end
    return names
end

"""
    is_similarity(metric) -> Bool

Whether higher scores rank first (`dot`, `inner`, `cosine`) rather than lower (distances).
"""
is_similarity(metric) = L.npk_metric_is_similarity(metric_code(metric))

# A dense Array of an element type the kernels take (the argument itself when it is one).
function dense_vectors(a::AbstractVecOrMat, what::AbstractString)
    T = eltype(a)
    if T <: VectorElement
        return a isa Array ? a : Array{T}(a)
    elseif T <: Union{AbstractFloat,Integer} && T !== Bool
        return Array{Float64}(a)
    end
    throw(ArgumentError("$what: vector search takes real numbers (Float32, Float64, Float16, Int8 and " *
                        "UInt8 as they are, other integer and float types as Float64), not $T"))
end

# (number of vectors, elements per vector) of a dense vector or matrix.
vector_shape(a::Vector) = (1, length(a))
vector_shape(a::Matrix) = (size(a, 2), size(a, 1))

# The C descriptor of `a`; the caller keeps `a` alive (GC.@preserve) while it is used.
function descriptor(a::Array{T}) where {T<:VectorElement}
    rows, dim = vector_shape(a)
    return Ref(L.npk_vectors(Ptr{Cvoid}(pointer(a)), dtype_code(T), UInt64(rows), UInt64(dim)))
end

function check_k(k::Integer)
    k >= 0 || throw(ArgumentError("k must be >= 0, got $k"))
    return UInt64(k)
end

# The library's compact Q × kk results as 1-based Julia results (see the Vector search docs).
function top_k_result(single::Bool, idx::Vector{UInt64}, sc::Vector{Float64}, nq::Int, kk::Int)
    n = nq * kk
    indices = Int[Int(idx[i]) + 1 for i in 1:n]
    length(sc) == n || (sc = sc[1:n])
    single && return (indices=indices, scores=sc)
    return (indices=reshape(indices, kk, nq), scores=reshape(sc, kk, nq))
end

"""
    distance(metric, a::AbstractVector, b::AbstractVector) -> Float64

The metric between two vectors of the same length (a similarity for `dot`, `inner` and
`cosine`; cosine with a zero vector is 0). See the Vector search section of the module's
documentation (`?NumPack`) for types and errors.
"""
function distance(metric, a::AbstractVector, b::AbstractVector)
    code = metric_code(metric)
    x = dense_vectors(a, "a")
    y = dense_vectors(b, "b")
    out = Ref{Float64}(0)
    GC.@preserve x y check(L.npk_vector_distance(code, descriptor(x), descriptor(y), out))
    return out[]
end

"""
    scores(metric, queries, candidates::AbstractMatrix) -> Matrix{Float64} or Vector{Float64}

The metric between every query and every candidate: for a `d × q` matrix of queries and
a `d × n` matrix of candidates, the `n × q` matrix `S` with `S[i, j]` = metric(query `j`,
candidate `i`); for one query vector, the `n` scores.
"""
function scores(metric, queries::AbstractVecOrMat, candidates::AbstractMatrix)
    code = metric_code(metric)
    q = dense_vectors(queries, "queries")
    c = dense_vectors(candidates, "candidates")
    nq, _ = vector_shape(q)
    nc, _ = vector_shape(c)
    out = Matrix{Float64}(undef, nc, nq)
    GC.@preserve q c out check(L.npk_vector_scores(code, descriptor(q), descriptor(c), pointer(out), length(out)))
    return q isa Vector ? vec(out) : out
end

"""
    topk(metric, queries, candidates::AbstractMatrix, k) -> (indices, scores)

The `k` best candidates (columns of the `d × n` matrix `candidates`) for each query, best
first: similarities descending, distances ascending, equal scores by lower index, NaN
last. For one query vector, `indices` (1-based) and `scores` are vectors of
`kk = min(k, n)` entries; for a `d × q` matrix of queries they are `kk × q` matrices
(column `j` for query `j`). `k = 0` gives empty results.
"""
function topk(metric, queries::AbstractVecOrMat, candidates::AbstractMatrix, k::Integer)
    k64 = check_k(k)
    code = metric_code(metric)
    q = dense_vectors(queries, "queries")
    c = dense_vectors(candidates, "candidates")
    nq, _ = vector_shape(q)
    nc, _ = vector_shape(c)
    len = nq * Int(min(k64, UInt64(nc)))
    idx = Vector{UInt64}(undef, len)
    sc = Vector{Float64}(undef, len)
    kk = Ref{UInt64}(0)
    GC.@preserve q c idx sc check(L.npk_vector_top_k(code, descriptor(q), descriptor(c), k64,
                                                     pointer(idx), pointer(sc), len, kk))
    return top_k_result(q isa Vector, idx, sc, nq, Int(kk[]))
end

# Live rows of a stored array (0 for a 0-d array, which the library then rejects).
stored_rows(s::NumPackStore, name::AbstractString) = (i = info(s, name); isempty(i.shape) ? 0 : i.shape[1])

"""
    topk(store, name, metric, queries, k) -> (indices, scores)

[`topk`](@ref) over the live rows of array `name` of `store`, read through its memory map
in blocks (never loaded whole). Indices are 1-based logical row numbers: deleted rows are
skipped, as `store[name, i]` counts them. A float query is converted to the stored float
type.
"""
function topk(s::NumPackStore, name::AbstractString, metric, queries::AbstractVecOrMat, k::Integer)
    k64 = check_k(k)
    code = metric_code(metric)
    q = dense_vectors(queries, "queries")
    nq, _ = vector_shape(q)
    # Sized for the rows now; if rows are appended before the search, BUFFER_SIZE says so.
    len = nq * Int(min(k64, UInt64(stored_rows(s, name))))
    idx = Vector{UInt64}(undef, len)
    sc = Vector{Float64}(undef, len)
    kk = Ref{UInt64}(0)
    GC.@preserve s q idx sc check(L.npk_store_top_k(handle(s), String(name), code, descriptor(q), k64,
                                                    pointer(idx), pointer(sc), len, kk))
    return top_k_result(q isa Vector, idx, sc, nq, Int(kk[]))
end

"""
    scores(store, name, metric, queries) -> Matrix{Float64} or Vector{Float64}

[`scores`](@ref) against the live rows of array `name`: `S[i, j]` for logical row `i`
(1-based) and query `j`; a vector for one query.
"""
function scores(s::NumPackStore, name::AbstractString, metric, queries::AbstractVecOrMat)
    code = metric_code(metric)
    q = dense_vectors(queries, "queries")
    nq, _ = vector_shape(q)
    rows = stored_rows(s, name)
    out = Vector{Float64}(undef, nq * rows)
    n = Ref{UInt64}(0)
    GC.@preserve s q out check(L.npk_store_scores(handle(s), String(name), code, descriptor(q),
                                                  pointer(out), length(out), n))
    m = Int(n[])  # fewer than `rows` if rows were deleted meanwhile
    res = reshape(m == rows ? out : out[1:nq*m], m, nq)
    return q isa Vector ? vec(res) : res
end
