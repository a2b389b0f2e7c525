"""``numpack.check(path)``: verify a store without changing it (``npk_store_check``)."""

import os
from dataclasses import dataclass
from typing import List, Optional

from ._native import MACROS, check as _check_status, ffi, lib

_SEVERITY = {
    MACROS["NPK_SEVERITY_INFO"]: "info",
    MACROS["NPK_SEVERITY_WARNING"]: "warning",
    MACROS["NPK_SEVERITY_ERROR"]: "error",
}


@dataclass(frozen=True)
class Finding:
    """One finding of :func:`check`.

    ``severity`` is ``"error"`` (the store cannot be used as it is), ``"warning"``
    (harmless, but something to clean up) or ``"info"``; ``id`` a stable identifier such
    as ``"data-size-mismatch"`` (listed in the README); ``file`` the file concerned,
    relative to the store directory, and ``array`` the array concerned (``None`` when
    none); ``message`` says what is wrong and what to do.
    """

    severity: str
    id: str
    file: Optional[str]
    array: Optional[str]
    message: str

    def as_dict(self):
        return {"severity": self.severity, "id": self.id, "file": self.file, "array": self.array,
                "message": self.message}


def _str(p):
    return None if p == ffi.NULL else ffi.string(p).decode("utf-8", "replace")


def check(path) -> List[Finding]:
    """Verify the store at ``path`` and return every problem found (an empty list for a
    sound store). Changes nothing: no file is created or written, and a store left by a
    killed writer is reported (``id == "needs-recovery"``), not recovered.

    Raises ``StoreNotFoundError`` when there is no store at ``path``, ``InvalidArgumentError``
    for a file, an ``IoError`` when the directory cannot be read. Damage is never raised:
    it is what the list reports.
    """
    out = ffi.new("npk_check_report **")
    _check_status(lib.npk_store_check(os.fsencode(os.fspath(path)), out))
    report = out[0]
    try:
        findings = []
        f = ffi.new("npk_check_finding *")
        for i in range(lib.npk_check_report_len(report)):
            _check_status(lib.npk_check_report_get(report, i, f))
            findings.append(Finding(
                severity=_SEVERITY.get(f.severity, str(f.severity)),
                id=_str(f.id),
                file=_str(f.file),
                array=_str(f.array),
                message=_str(f.message),
            ))
        return findings
    finally:
        lib.npk_check_report_free(report)
