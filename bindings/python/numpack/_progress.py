"""The ``progress=`` callbacks of long library calls (packages, .npy files)."""

from ._native import ffi


class Progress:
    """A cffi ``npk_progress_fn`` around the user's ``progress(done_bytes, total_bytes)``.
    Returning ``False`` cancels the call (``numpack.CancelledError``); an exception raised
    by the callback cancels it too and is re-raised unchanged after the call.
    ``raise_status(status)`` raises the exception of a failed call."""

    def __init__(self, progress, raise_status):
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be callable, not {type(progress).__name__}")
        self.user = progress
        self.error = None
        self.raise_status = raise_status
        self.cb = ffi.NULL if progress is None else ffi.callback("npk_progress_fn", self._call)

    def _call(self, done, total, _user_data):
        try:
            return self.user(int(done), int(total)) is not False
        except BaseException as e:  # noqa: BLE001 - re-raised after the call
            self.error = e
            return False

    def check(self, status):
        """After the call: re-raises the callback's exception, else raises for `status`."""
        if self.error is not None:
            err, self.error = self.error, None
            raise err
        if status != 0:
            self.raise_status(status)
