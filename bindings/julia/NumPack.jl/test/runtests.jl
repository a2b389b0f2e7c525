# Run with: NUMPACK_LIB=/path/to/libnumpack.so julia --project=bindings/julia/NumPack.jl -e 'using Pkg; Pkg.test()'
using Test
using NumPack
const L = NumPack.LibNumPack

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
end
