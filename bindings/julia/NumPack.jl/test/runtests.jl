# Run with: NUMPACK_LIB=/path/to/libnumpack.so julia --project=bindings/julia/NumPack.jl -e 'using Pkg; Pkg.test()'
using Test
using NumPack
const L = NumPack.LibNumPack

# -- vector search: a brute-force reference in Float64 and deterministic test data ------

const SIMILARITIES = ("dot", "inner", "cosine")
ref_kl(p, q) = sum(p[i] > 0 ? p[i] * log(p[i] / q[i]) : 0.0 for i in eachindex(p))

"The metric between two vectors, in Float64, as the documentation defines it."
function ref_metric(m::String, a, b)
    if m in ("hamming", "jaccard")
        x, y = UInt8.(a), UInt8.(b)
        m == "hamming" && return Float64(sum(count_ones.(x .⊻ y)))
        union = sum(count_ones.(x .| y))
        return union == 0 ? 0.0 : 1.0 - sum(count_ones.(x .& y)) / union
    end
    x, y = Float64.(a), Float64.(b)
    m in ("dot", "inner") && return sum(x .* y)
    if m == "cosine"
        na, nb = sqrt(sum(abs2, x)), sqrt(sum(abs2, y))
        return na == 0 || nb == 0 ? 0.0 : sum(x .* y) / (na * nb)
    end
    m == "l2sq" && return sum(abs2, x .- y)
    m == "l2" && return sqrt(sum(abs2, x .- y))
    m == "kl" && return ref_kl(x, y)
    mid = (x .+ y) ./ 2
    return 0.5 * ref_kl(x, mid) + 0.5 * ref_kl(y, mid)
end

"Candidate numbers (1-based) best first: NaN last, -0.0 tied with 0.0, ties by index."
function ref_order(m::String, s::Vector{Float64})
    sim = m in SIMILARITIES
    key(i) = isnan(s[i]) ? (true, 0.0, i) : (false, (sim ? -s[i] : s[i]) + 0.0, i)
    return sort(collect(1:length(s)); by=key)
end

"""
Does one query's top-k (`idx`, `sc`) match the reference scores `want` of all candidates?
`exact`: the indices must be the reference's (whole-number scores, exact ties); otherwise
an index may differ only where the scores agree within `tol`.
"""
function topk_ok(m, want, idx, sc, k; tol, exact=false)
    order = ref_order(m, want)
    kk = min(k, length(want))
    (length(idx) == kk && length(sc) == kk && allunique(idx)) || return false
    for j in 1:kk
        i, r = idx[j], order[j]
        isapprox(sc[j], want[i]; rtol=tol, atol=tol, nans=true) || return false
        isapprox(want[i], want[r]; rtol=tol, atol=tol, nans=true) || return false
        exact && i != r && return false
    end
    return true
end

const RNG_STATE = Ref(0x9E3779B97F4A7C15)
function next_u64()
    x = RNG_STATE[]
    x ⊻= x << 13
    x ⊻= x >> 7
    x ⊻= x << 17
    RNG_STATE[] = x
    return x
end
uniform(lo, hi) = lo + (hi - lo) * ((next_u64() >> 11) / 2.0^53)

"A `d × n` matrix of `T`: in [-1, 1) (the full range for integers), or positive for kl/js."
function testdata(::Type{T}, d, n; positive=false) where {T}
    if T <: Integer
        lo, hi = positive ? (1, Int(typemax(T))) : (Int(typemin(T)), Int(typemax(T)))
        return T[T(lo + Int(next_u64() % UInt64(hi - lo + 1))) for i in 1:d, j in 1:n]
    end
    return T[T(positive ? uniform(0.05, 1.0) : uniform(-1.0, 1.0)) for i in 1:d, j in 1:n]
end


@testset "NumPack.jl" begin
    @test L.is_loaded()
    @test NumPack.library_version() == VersionNumber(L.NPK_VERSION_STRING)
    dir = mktempdir()

    @testset "errors" begin
        err = try
            NumPackStore(joinpath(dir, "none"); create=false)
        catch e
            e
        end
        @test err isa NumPackError
        @test err.code == L.NPK_STATUS_STORE_NOT_FOUND
        @test err.name == "STORE_NOT_FOUND"
        @test !isempty(err.message)
        open(NumPackStore, joinpath(dir, "e"); drop=true) do s
            @test_throws NumPackError s["missing"]
            e = try s["missing"] catch e; e end
            @test e.code == L.NPK_STATUS_NOT_FOUND
            @test_throws NumPackError haskey(s, "a/b")
            s["x"] = Float32[1 2; 3 4]
            e = try append!(s, "x", Float64[1 2; 3 4]) catch e; e end
            @test e.code == L.NPK_STATUS_DTYPE_MISMATCH
            @test_throws BoundsError s["x", 3]
            @test_throws BoundsError s["x", 0]
        end
    end

    @testset "read, write, append, rows" begin
        s = NumPackStore(joinpath(dir, "s"); drop=true)
        a = Float32[10c + r for c in 0:3, r in 0:99]  # 4 × 100: 100 rows of 4
        write(s, "x", a)
        @test keys(s) == ["x"]
        @test haskey(s, "x") && !haskey(s, "y")
        @test size(s, "x") == (4, 100)
        @test NumPack.shape(s, "x") == (100, 4)
        @test eltype(s, "x") == Float32
        @test read(s, "x") == a
        @test read(s, "x"; rowmajor=true) == permutedims(a)
        @test s["x", 1] == a[:, 1]
        @test s["x", 5:7] == a[:, 5:7]
        @test s["x", [100, 1]] == a[:, [100, 1]]
        append!(s, "x", Float32[1 2; 3 4; 5 6; 7 8])
        @test size(s, "x") == (4, 102)
        @test s["x", 102] == Float32[2, 4, 6, 8]
        s["x", 1:1] = Float32[-1, -2, -3, -4]
        @test s["x", 1] == Float32[-1, -2, -3, -4]
        s["x", [2]] = Float32[-5, -6, -7, -8]
        @test s["x", 2] == Float32[-5, -6, -7, -8]
        write(s, "r", Int16[1 2 3; 4 5 6]; rowmajor=true)
        @test NumPack.shape(s, "r") == (2, 3)
        @test read(s, "r"; rowmajor=true) == Int16[1 2 3; 4 5 6]
        for T in (Bool, UInt8, Int64, Float64, ComplexF32, ComplexF64, Float16)
            v = T[one(T), zero(T), one(T)]
            s["t"] = v
            @test s["t"] == v
        end
        close(s)
        @test !isopen(s)
        close(s)  # twice is fine
    end

    @testset "delete, lazy, compact" begin
        open(NumPackStore, joinpath(dir, "s")) do s
            deleteat!(s, "x", [1, 3])
            @test size(s, "x") == (4, 100)
            z = lazy(s, "x")
            @test size(z) == (4, 100)
            @test z == read(s, "x")
            compact!(s, "x")
            z2 = lazy(s, "x")
            @test z2 isa Matrix{Float32}
            @test z2 == read(s, "x")
            GC.gc()
            @test z == z2  # the first map is still alive
            w = lazy(s, "x"; writable=true)
            w[1, 1] = 42
            w = nothing
            GC.gc()
            @test s["x", 1][1] == 42
        end
    end

    @testset "streams, names, finalizers" begin
        open(NumPackStore, joinpath(dir, "s")) do s
            total = 0
            for b in NumPack.eachbatch(s, "x", 32)
                @test size(b, 1) == 4
                total += size(b, 2)
            end
            @test total == 100
            copy!(s, "y", "x")
            rename!(s, "y", "z")
            @test keys(s) == ["r", "t", "x", "z"]
            delete!(s, "z")
            @test length(s) == 3
            NumPack.sync(s)
            refresh(s)
            @test !isreadonly(s)
        end
        let s = NumPackStore(joinpath(dir, "s"); readonly=true)
            @test isreadonly(s)
            s = nothing
        end
        GC.gc()
        NumPack.drain_pending()
        open(NumPackStore, joinpath(dir, "s")) do s
            empty!(s)
            @test isempty(keys(s))
        end
    end

    @testset "vector search: metrics" begin
        @test occursin("kernels", NumPack.vector_capabilities())
        @test NumPack.metrics() == ["dot", "inner", "cosine", "l2", "l2sq", "hamming", "jaccard", "kl", "js"]
        for (i, name) in enumerate(NumPack.metrics())
            @test NumPack.metric_code(name) == i - 1
            @test NumPack.metric_code(Symbol(uppercase(name))) == i - 1
            @test NumPack.metric_name(i - 1) == name
            @test NumPack.is_similarity(name) == (name in SIMILARITIES)
        end
        @test NumPack.metric_code(:Euclidean) == L.NPK_METRIC_L2
        @test NumPack.metric_code("KL_Divergence") == L.NPK_METRIC_KL
        @test NumPack.metric_name("COS") == "cosine"
        @test NumPack.metric_name(:l2_squared) == "l2sq"
        @test NumPack.metric_name(L.NPK_METRIC_JS) == "js"
        e = try NumPack.metric_code("manhattan") catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_INVALID_ARGUMENT
        @test occursin("manhattan", e.message) && occursin("cosine", e.message)
        @test_throws NumPackError NumPack.metric_code(9)
        @test_throws NumPackError NumPack.metric_code(-1)
        @test_throws NumPackError NumPack.metric_code("")
    end

    @testset "vector search: every metric and element type against the reference" begin
        for T in (Float32, Float64, Float16, Int8, UInt8)
            tol = T === Float32 ? 1e-4 : T === Float16 ? 1e-3 : 1e-9
            for m in ("dot", "inner", "cosine", "l2", "l2sq", "kl", "js")
                pos = m in ("kl", "js")
                C = testdata(T, 19, 257; positive=pos)  # 257 candidates of 19 elements
                Q = testdata(T, 19, 9; positive=pos)    # 9 queries: the blocked path for floats
                want = [ref_metric(m, Q[:, j], C[:, i]) for i in 1:257, j in 1:9]
                S = NumPack.scores(m, Q, C)
                @test size(S) == (257, 9) && eltype(S) == Float64
                @test all(isapprox.(S, want; rtol=tol, atol=tol))
                @test NumPack.scores(m, Q[:, 2], C) == S[:, 2]
                @test isapprox(NumPack.distance(m, Q[:, 3], C[:, 5]), want[5, 3]; rtol=tol, atol=tol)
                # Whole-number scores (integer dot and l2sq) tie exactly: indices must match.
                exact = T <: Integer && m in ("dot", "inner", "l2sq")
                for k in (0, 1, 7, 257, 300)
                    idx, sc = topk(m, Q, C, k)
                    kk = min(k, 257)
                    @test size(idx) == (kk, 9) && size(sc) == (kk, 9)
                    @test eltype(idx) == Int && eltype(sc) == Float64
                    @test all(j -> topk_ok(m, want[:, j], idx[:, j], sc[:, j], k; tol=tol, exact=exact), 1:9)
                    # One query alone gives exactly its column of the many-query result.
                    single = topk(m, Q[:, 4], C, k)
                    @test single.indices == idx[:, 4] && single.scores == sc[:, 4]
                end
            end
        end
    end

    @testset "vector search: bits, ties, NaN, edges, errors" begin
        C = testdata(UInt8, 16, 200)  # 128 packed bits per vector
        q = testdata(UInt8, 16, 1)[:, 1]
        for m in ("hamming", "jaccard")
            want = [ref_metric(m, q, C[:, i]) for i in 1:200]
            idx, sc = topk(m, q, C, 12)
            @test topk_ok(m, want, idx, sc, 12; tol=1e-12, exact=(m == "hamming"))
            e = try topk(m, Float32.(q), Float32.(C), 3) catch e; e end
            @test e isa NumPackError && e.code == L.NPK_STATUS_DTYPE_MISMATCH
        end
        @test NumPack.distance(:hamming, UInt8[0xF0, 0x01], UInt8[0xFF, 0x00]) == 5
        @test NumPack.distance(:jaccard, UInt8[0xF0, 0x01], UInt8[0xFF, 0x00]) ≈ 1 - 4 / 9
        @test NumPack.distance(:jaccard, UInt8[0, 0], UInt8[0, 0]) == 0

        # Columns [1,0] [0,1] [1,0] [NaN,0] [1,0]: equal scores by index, NaN last.
        C = Float32[1 0 1 NaN 1; 0 1 0 0 0]
        q = Float32[1, 0]
        idx, sc = topk(:dot, q, C, 5)
        @test idx == [1, 3, 5, 2, 4]
        @test sc[1:4] == [1, 1, 1, 0] && isnan(sc[5])
        @test topk("L2SQ", q, C, 5).indices == [1, 3, 5, 2, 4]
        @test NumPack.distance(:cosine, zeros(Float32, 2), q) == 0
        @test NumPack.distance(:kl, [0.5, 0.5], [1.0, 0.0]) == Inf
        @test NumPack.distance(:js, [1.0, 0.0], [0.0, 1.0]) ≈ log(2)

        C = testdata(Float32, 4, 10)
        q = testdata(Float32, 4, 1)[:, 1]
        idx, sc = topk(:dot, q, C, 0)
        @test idx == Int[] && sc == Float64[]
        @test sort(topk(:dot, q, C, 50).indices) == 1:10
        @test size(topk(:l2, hcat(q, q), C, 50).indices) == (10, 2)
        @test size(topk(:l2, hcat(q, q), C, 0).indices) == (0, 2)
        @test isempty(topk(:cosine, q, zeros(Float32, 4, 0), 5).indices)
        @test NumPack.scores(:l2, q, zeros(Float32, 4, 0)) == Float64[]

        e = try topk(:dot, ones(Float32, 5), C, 3) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_SHAPE_MISMATCH
        e = try NumPack.distance(:dot, ones(5), ones(4)) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_SHAPE_MISMATCH
        e = try topk(:dot, ones(Float32, 4), testdata(Int8, 4, 5), 2) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_DTYPE_MISMATCH  # Int8 needs an Int8 query
        @test_throws NumPackError topk(:manhattan, q, C, 1)
        @test_throws ArgumentError topk(:dot, q, C, -1)
        @test_throws ArgumentError topk(:dot, ComplexF32.(q), C, 1)
        @test_throws ArgumentError NumPack.distance(:dot, [true, false], [true, true])

        # A Float64 query is rounded to Float32 candidates; other integers search as Float64;
        # views and other non-Array inputs are copied.
        C = testdata(Float32, 8, 50)
        q64 = testdata(Float64, 8, 1)[:, 1]
        want = [ref_metric("cosine", Float32.(q64), C[:, i]) for i in 1:50]
        r = topk("COSINE_similarity", q64, C, 5)
        @test topk_ok("cosine", want, r.indices, r.scores, 5; tol=1e-4)
        ints = Int32.(testdata(Int8, 8, 50))
        @test topk(:euclidean, ints[:, 1], ints, 3).indices[1] == 1
        @test topk(:l2, C[:, 7], view(C, :, 1:2:50), 1).indices == [4]
        @test topk(:dot, view(C, :, 3), C, 2) == topk(:dot, C[:, 3], C, 2)
    end

    @testset "vector search over a store: logical rows" begin
        open(NumPackStore, joinpath(dir, "vec"); drop=true) do s
            full = testdata(Float32, 16, 400)
            s["emb"] = full
            deleteat!(s, "emb", [4, 51, 400])
            append!(s, "emb", full[:, 1:20] .* 2)
            live = read(s, "emb")
            @test size(live) == (16, 417)
            Q = testdata(Float32, 16, 3)
            for m in (:dot, :cosine, :l2sq, :l2)
                r = topk(s, "emb", m, Q[:, 1], 10)
                @test r == topk(m, Q[:, 1], live, 10)
                @test s["emb", r.indices[1]] == live[:, r.indices[1]]
                R = topk(s, "emb", m, Q, 10)
                @test size(R.indices) == (10, 3) && R == topk(m, Q, live, 10)
                S = NumPack.scores(s, "emb", m, Q)
                @test size(S) == (417, 3) && S == NumPack.scores(m, Q, live)
                @test NumPack.scores(s, "emb", m, Q[:, 2]) == S[:, 2]
            end
            # Stored column 52 is logical row 50 (4 and 51 were deleted before it); the
            # deleted column 51 is not found; appended rows follow the 397 kept ones.
            r = topk(s, "emb", :l2sq, full[:, 52], 1)
            @test r.indices == [50] && r.scores == [0.0]
            @test topk(s, "emb", :l2sq, full[:, 51], 1).scores[1] > 0
            @test topk(s, "emb", :l2sq, full[:, 3] .* 2, 1).indices == [400]
            @test size(topk(s, "emb", :dot, Q, 0).indices) == (0, 3)
            @test length(topk(s, "emb", :dot, Q[:, 1], 1000).indices) == 417
            # A 1-d array is vectors of one element.
            flat = Float64.(full[1, :])
            s["flat"] = flat
            @test topk(s, "flat", :l2, [0.25], 4) == topk(:l2, [0.25], reshape(flat, 1, :), 4)
            # Errors.
            e = try topk(s, "missing", :dot, Q, 3) catch e; e end
            @test e isa NumPackError && e.code == L.NPK_STATUS_NOT_FOUND
            e = try topk(s, "emb", :dot, ones(Float32, 15), 3) catch e; e end
            @test e isa NumPackError && e.code == L.NPK_STATUS_SHAPE_MISMATCH
            e = try NumPack.scores(s, "emb", :nope, Q) catch e; e end
            @test e isa NumPackError && e.code == L.NPK_STATUS_INVALID_ARGUMENT
            s["ints"] = Int32[1 2; 3 4]
            e = try topk(s, "ints", :dot, Int32[1, 2], 1) catch e; e end
            @test e isa NumPackError && e.code == L.NPK_STATUS_DTYPE_MISMATCH
        end
    end
    # -- packages (.npkg) --------------------------------------------------------------------
    @testset "packages (.npkg)" begin
        src = joinpath(dir, "pkg_src")
        x = Float32[10c + r for c in 0:3, r in 0:1999]  # 2000 rows of 4: compresses
        open(NumPackStore, src; drop=true) do s
            s["x"] = x
            s["ids"] = Int64[5, 6, 7, 8]
            deleteat!(s, "x", [1, 8])  # rows 1 and 8 (1-based)
        end
        want = x[:, [2:7; 9:2000]]
        file = joinpath(dir, "p.npkg")
        calls = Tuple{Int,Int}[]
        info = NumPack.pack(src, file; progress=(d, t) -> (push!(calls, (d, t)); true))
        @test info.version == 2 && info.compression == 1
        @test [e.name for e in info.entries] == ["data_ids.npkd", "data_x.npkd", "deleted_x.npkb", "metadata.npkm"]
        @test info.entries[2].original_size == 2000 * 4 * 4 && 0 < info.entries[2].stored_size < 2000 * 4 * 4
        @test all(e.crc32 isa UInt32 for e in info.entries)
        @test first(calls) == (0, Int(info.total_original_size)) && last(calls)[1] == last(calls)[2]
        @test issorted(first.(calls))

        d = NumPack.package_info(file)
        @test [e.name for e in d.entries] == [e.name for e in info.entries]
        @test all(e.crc32 === nothing for e in d.entries)
        @test d.total_stored_size == info.total_stored_size < d.total_original_size

        out = joinpath(dir, "pkg_out")
        u = NumPack.unpack(file, out)
        @test [e.crc32 for e in u.entries] == [e.crc32 for e in info.entries]
        open(NumPackStore, out; readonly=true) do s
            @test s["x"] == want
            @test s["ids"] == Int64[5, 6, 7, 8]
        end

        # Existing targets, raw packages, overwrite.
        e = try NumPack.pack(src, file) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_ALREADY_EXISTS
        open(NumPackStore, src) do s
            @test NumPack.pack(s, file; compress=false, overwrite=true).compression == 0
        end
        e = try NumPack.unpack(file, out) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_ALREADY_EXISTS
        @test NumPack.unpack(file, out; overwrite=true).compression == 0

        # Cancel, and an exception in the callback: nothing written, the exception as it was.
        e = try NumPack.unpack(file, joinpath(dir, "pkg_c"); progress=(d, t) -> false) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_CANCELLED
        @test !ispath(joinpath(dir, "pkg_c"))
        @test_throws DomainError NumPack.unpack(file, joinpath(dir, "pkg_c"); progress=(d, t) -> throw(DomainError(d)))
        @test !ispath(joinpath(dir, "pkg_c"))

        # Damage: a flipped byte in a raw payload fails the footer check; the old store stays.
        bytes = read(file)
        bytes[end - 100] ⊻= 0x01  # inside metadata.npkm's payload (the last file)
        bad = joinpath(dir, "bad.npkg")
        write(bad, bytes)
        e = try NumPack.unpack(bad, out; overwrite=true) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_CORRUPT
        open(NumPackStore, out; readonly=true) do s
            @test s["x"] == want
        end
        e = try NumPack.package_info(joinpath(dir, "missing.npkg")) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_IO
        # An entry that would escape the target.
        name = b"../escape.npkd"
        evil = vcat(b"NPKG", reinterpret(UInt8, [UInt32(2)]), UInt8[0], reinterpret(UInt8, [UInt32(1)]),
                    reinterpret(UInt8, [UInt32(length(name))]), name, reinterpret(UInt8, [UInt64(3), UInt64(0)]),
                    b"abc", zeros(UInt8, 4))
        write(joinpath(dir, "evil.npkg"), evil)
        e = try NumPack.unpack(joinpath(dir, "evil.npkg"), joinpath(dir, "pkg_e")) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_CORRUPT && occursin("escape", e.message)
        @test !ispath(joinpath(dir, "escape.npkd")) && !ispath(joinpath(dir, "pkg_e"))
    end
    # -- end packages (.npkg) ----------------------------------------------------------------

    # --- .npy interop ---
    @testset ".npy / .npz interop" begin
        s = NumPackStore(joinpath(dir, "npy"); drop=true)
        a = Float32[10r + c for c in 0:2, r in 0:4]  # 5 rows of 3
        s["a"] = a
        f = joinpath(dir, "a.npy")
        export_npy(s, "a", f; overwrite=true)
        i = npy_info(f)
        @test i.eltype == Float32 && i.shape == [5, 3] && i.appendable && NumPack.iscomplete(i)
        @test i.version == (1, 0) && !i.big_endian && !i.fortran_order && i.data_offset % 64 == 0
        e = try export_npy(s, "a", f) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_ALREADY_EXISTS
        # Append in place, then import back.
        @test append_npy(f, Float32[100, 101, 102]) == 6
        @test append_npy(f, Float32[200 300; 201 301; 202 302]; sync=true) == 8
        e = try append_npy(f, Float64[1, 2, 3]) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_DTYPE_MISMATCH
        @test import_npy(s, f; name="back") == "back"
        b = s["back"]
        @test size(b) == (3, 8) && b[:, 1:5] == a && b[:, 6] == Float32[100, 101, 102] && b[:, 8] == Float32[300, 301, 302]
        e = try import_npy(s, f; name="back") catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_ALREADY_EXISTS
        import_npy(s, f; name="back", overwrite=true)
        e = try import_npy(s, f) catch e; e end  # the name defaults to the stem, "a", which exists
        @test e isa NumPackError && e.code == L.NPK_STATUS_ALREADY_EXISTS
        e = try npy_info(joinpath(dir, "missing.npy")) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_NOT_FOUND
        e = try import_npz(s, f) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_CORRUPT
        # create, a crashed append, recover.
        g = joinpath(dir, "g.npy")
        isfile(g) && rm(g)
        create_appendable_npy(g, Int16, (2,))
        @test !make_appendable(g)
        @test append_npy(g, Int16[1 3; 2 4]) == 2
        open(g, "a") do io
            write(io, UInt8(9))
        end
        @test !NumPack.iscomplete(npy_info(g))
        e = try append_npy(g, Int16[5, 6]) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_NEEDS_RECOVERY
        r = recover_npy(g; zero_fill=true)
        @test r.header_rows == 2 && r.rows == 3 && r.zero_filled_bytes == 3 && !r.rewritten
        @test recover_npy(g).dropped_bytes == 0
        h = joinpath(dir, "h.npy")
        isfile(h) && rm(h)
        @test append_npy_file(h, g) == 3
        @test append_npy_file(h, g; sync=true, create=false) == 6
        e = try append_npy_file(h, h) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_INVALID_ARGUMENT
        # Progress: start, every block, end; false cancels leaving nothing; an exception
        # in the callback comes back as it was.
        big = Float64.(reshape(0:(10 * 2^20 ÷ 8 - 1), 8, :))  # 10 MiB, rows of 8
        s["big"] = big
        bf = joinpath(dir, "big.npy")
        calls = Tuple{Int,Int}[]
        export_npy(s, "big", bf; overwrite=true, progress=(d, t) -> (push!(calls, (d, t)); true))
        @test length(calls) >= 4 && first(calls) == (0, sizeof(big)) && last(calls) == (sizeof(big), sizeof(big))
        @test issorted(first.(calls))
        e = try import_npy(s, bf; name="big2", progress=(d, t) -> d == 0) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_CANCELLED
        @test !haskey(s, "big2")
        @test_throws DomainError import_npy(s, bf; name="big2", progress=(d, t) -> d > 0 ? throw(DomainError(d)) : true)
        @test !haskey(s, "big2")
        calls = Tuple{Int,Int}[]
        grow = joinpath(dir, "grow.npy")
        isfile(grow) && rm(grow)
        create_appendable_npy(grow, Float64, (8,))
        e = try append_npy_file(grow, bf; progress=(d, t) -> d == 0) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_CANCELLED
        @test npy_info(grow).shape == [0, 8] && NumPack.iscomplete(npy_info(grow))
        @test append_npy_file(grow, bf; progress=(d, t) -> (push!(calls, (d, t)); true)) == size(big, 2)
        @test last(calls) == (sizeof(big), sizeof(big))
        close(s)
    end
    # --- end ---

    @testset "safetensors" begin
        s = NumPackStore(joinpath(dir, "st"); drop=true)
        a = Float32[10r + c for c in 0:2, r in 0:4]  # 5 rows of 3
        s["a"] = a
        s["ids"] = Int64[7, 8]
        f = joinpath(dir, "m.safetensors")
        isfile(f) && rm(f)
        calls = Tuple{Int,Int}[]
        export_safetensors(s, f; metadata=Dict("format" => "pt"), progress=(d, t) -> (push!(calls, (d, t)); true))
        @test last(calls) == (sizeof(a) + 16, sizeof(a) + 16)
        e = try export_safetensors(s, f) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_ALREADY_EXISTS
        h = safetensors_header(f)
        @test [t.name for t in h.tensors] == ["ids", "a"]  # larger elements first
        @test h.tensors[2].eltype == Float32 && h.tensors[2].shape == [5, 3] && h.tensors[2].dtype_name == "F32"
        @test h.metadata == ["format" => "pt"] && h.data_offset == 8 + h.header_len
        t = NumPackStore(joinpath(dir, "st2"); drop=true)
        @test import_safetensors(t, f; names=["a"]) == ["a"]
        @test t["a"] == a
        e = try import_safetensors(t, f) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_ALREADY_EXISTS
        e = try import_safetensors(t, f; names=["ids"], progress=(d, t) -> d == 0) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_CANCELLED
        @test !haskey(t, "ids")
        @test sort(import_safetensors(t, f; overwrite=true)) == ["a", "ids"]
        e = try safetensors_header(joinpath(dir, "missing.safetensors")) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_NOT_FOUND
        s["z"] = ComplexF64[1 + 2im]
        e = try export_safetensors(s, joinpath(dir, "z.safetensors"); names=["z"]) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_UNSUPPORTED
        close(s)
        close(t)
    end

    # check (cli branch)
    @testset "check_store" begin
        p = joinpath(dir, "chk")
        open(NumPackStore, p; drop=true) do s
            s["x"] = Float32[1 2; 3 4]
            s["y"] = Int64[1, 2, 3]
        end
        @test isempty(check_store(p))
        write(joinpath(p, "data_y.npkd"), Int64[1])  # 8 of its 24 bytes
        fs = check_store(p)
        @test length(fs) == 1
        f = only(fs)
        @test f isa CheckFinding
        @test (f.severity, f.id, f.file, f.array) == (:error, "data-size-mismatch", "data_y.npkd", "y")
        @test occursin("data_y.npkd", f.message)
        write(joinpath(p, "metadata.npkm"), "garbage!garbage!")
        fs = check_store(p)
        @test [x.id for x in fs] == ["catalogue-bad-magic"]
        @test fs[1].array === nothing
        e = try check_store(joinpath(dir, "no-such-store")) catch e; e end
        @test e isa NumPackError && e.code == L.NPK_STATUS_STORE_NOT_FOUND

    # compressed arrays
    @testset "compressed arrays" begin
        open(NumPackStore, joinpath(dir, "z"); drop=true) do s
            m = Int64[r ÷ c for c in 1:4, r in 1:30000]  # 30000 rows of 4
            write(s, "z", m; compression=(:zstd, 5))
            write(s, "p", m)
            @test compression(s, "p") === nothing
            c = compression(s, "z")
            @test c.codec === :zstd && c.level == 5 && c.raw_bytes == sizeof(m)
            @test c.chunks == cld(30000, c.rows_per_chunk) && c.stored_bytes < sizeof(m) ÷ 4
            @test read(s, "z") == m
            append!(s, "z", m[:, 1:3])
            @test shape(s, "z") == (30003, 4)
            write(s, "d", m; compression=:zstd)
            @test compression(s, "d").level == 3
            @test_throws ArgumentError write(s, "bad", m; compression=:gzip)
            @test_throws ArgumentError write(s, "bad", m; compression=(:zstd, 99))
            e = try compression(s, "missing") catch e; e end
            @test e isa NumPackError && e.code == L.NPK_STATUS_NOT_FOUND
        end
    end
end
