# Verifying a store without changing it: `check_store` over `npk_store_check`.

"""
    CheckFinding

One finding of [`check_store`]: `severity` is `:error` (the store cannot be used as it
is), `:warning` (harmless, but to clean up) or `:info`; `id` a stable identifier such as
`"data-size-mismatch"`; `file` the file concerned (relative to the store directory) and
`array` the array concerned, each `nothing` when none; `message` says what to do.
"""
struct CheckFinding
    severity::Symbol
    id::String
    file::Union{Nothing,String}
    array::Union{Nothing,String}
    message::String
end

const SEVERITIES = Dict(L.NPK_SEVERITY_INFO => :info, L.NPK_SEVERITY_WARNING => :warning,
                        L.NPK_SEVERITY_ERROR => :error)

_maybe_string(p::Ptr{UInt8}) = p == C_NULL ? nothing : unsafe_string(p)

"""
    check_store(path) -> Vector{CheckFinding}

Verifies the store at `path` without changing it (no file is created or written; a store
left by a killed writer is reported as `"needs-recovery"`, not recovered) and returns every
finding, in the order found: empty for a sound store. Throws `NumPackError` when there is
no store at `path` (`NPK_STATUS_STORE_NOT_FOUND`) or it cannot be read, never for damage.
"""
function check_store(path::AbstractString)
    out = Ref{Ptr{L.npk_check_report}}(C_NULL)
    check(L.npk_store_check(path, out))
    report = out[]
    try
        n = Int(L.npk_check_report_len(report))
        findings = Vector{CheckFinding}(undef, n)
        f = Ref(L.npk_check_finding())
        for i in 0:n-1
            check(L.npk_check_report_get(report, i, f))
            x = f[]
            findings[i+1] = CheckFinding(get(SEVERITIES, x.severity, :unknown), unsafe_string(x.id),
                                         _maybe_string(x.file), _maybe_string(x.array),
                                         unsafe_string(x.message))
        end
        return findings
    finally
        L.npk_check_report_free(report)
    end
end
