"""from_tensor / to_tensor / from_pt / to_pt against real torch files. Skipped when
torch is absent: bindings/python/run_torch_tests.sh installs torch into its own venv
and runs this module."""

import pickle
import warnings

import numpy as np
import pytest
from conftest import DTYPES, sample

import numpack
from numpack.io import from_pt, from_tensor, to_pt, to_tensor

torch = pytest.importorskip(
    "torch", reason="torch is not installed: bindings/python/run_torch_tests.sh runs these tests")


def _arrays(path):
    with numpack.NumPack(path, warn_no_context=False) as npk:
        return {n: npk.load(n) for n in npk.get_member_list()}


def _store(path, **arrays):
    with numpack.NumPack(path, warn_no_context=False) as npk:
        npk.save(arrays)


class _Recorder:
    def __init__(self, cancel_at=None):
        self.calls, self.cancel_at = [], cancel_at

    def __call__(self, done, total):
        self.calls.append((done, total))
        return not (self.cancel_at is not None and len(self.calls) - 1 == self.cancel_at)


class Opaque:
    """Not a tensor: pickled as a class reference."""


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_round_trip_every_dtype(tmp_path, dtype):
    arr = sample(dtype, (40, 3, 2))
    t = torch.from_numpy(arr.copy())
    from_tensor(t, tmp_path / "s", chunk_size=100)
    got = _arrays(tmp_path / "s")
    assert list(got) == ["data"] and got["data"].dtype == arr.dtype
    assert np.array_equal(got["data"], arr)
    back = to_tensor(tmp_path / "s")
    assert back.dtype == t.dtype and torch.equal(back, t)


def test_from_tensor_options_and_layouts(tmp_path):
    t = torch.arange(24, dtype=torch.float32, requires_grad=True)
    grid = t.detach().reshape(4, 6).t()  # a transposed view: not C-contiguous
    npk = from_tensor(grid, tmp_path / "s", array_name="grid", return_npk_obj=True)
    try:
        assert npk.is_opened and np.array_equal(npk.load("grid"), grid.numpy())
    finally:
        npk.close()
    from_tensor(t, tmp_path / "s", array_name="t")  # requires_grad: detached
    assert sorted(_arrays(tmp_path / "s")) == ["grid", "t"]
    from_tensor(t[:3], tmp_path / "s", array_name="t", drop_if_exists=True)
    got = _arrays(tmp_path / "s")
    assert list(got) == ["t"] and got["t"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(TypeError, match="torch.Tensor"):
        from_tensor(np.zeros(3), tmp_path / "s")
    with pytest.raises(ValueError, match="Unsupported dtype: torch.bfloat16"):
        from_tensor(torch.zeros(3, dtype=torch.bfloat16), tmp_path / "s", array_name="b")
    assert list(_arrays(tmp_path / "s")) == ["t"]


def test_to_tensor_options(tmp_path):
    _store(tmp_path / "s", a=np.arange(6, dtype=np.int32).reshape(2, 3), b=np.ones(2))
    with pytest.raises(ValueError, match="array_name"):
        to_tensor(tmp_path / "s")
    t = to_tensor(tmp_path / "s", array_name="a", dtype=torch.float64, device="cpu")
    assert t.dtype == torch.float64 and t.tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(KeyError):
        to_tensor(tmp_path / "s", array_name="nope")
    with pytest.raises(FileNotFoundError):
        to_tensor(tmp_path / "missing")
    rec = _Recorder()
    to_tensor(tmp_path / "s", array_name="a", progress=rec)
    assert rec.calls[0] == (0, 24) and rec.calls[-1] == (24, 24)


def test_pt_dict_round_trip(tmp_path):
    arrays = {d: sample(d, (9, 4), seed=i) for i, d in enumerate(DTYPES)}
    _store(tmp_path / "s", **arrays)
    to_pt(tmp_path / "s", tmp_path / "all.pt", chunk_size=64)
    loaded = torch.load(tmp_path / "all.pt", weights_only=True)
    assert sorted(loaded) == sorted(arrays)
    for name, arr in arrays.items():
        assert np.array_equal(loaded[name].numpy(), arr)
    from_pt(tmp_path / "all.pt", tmp_path / "t", chunk_size=64)
    got = _arrays(tmp_path / "t")
    assert sorted(got) == sorted(arrays)
    for name, arr in arrays.items():
        assert got[name].dtype == arr.dtype and np.array_equal(got[name], arr)


def test_pt_selection_and_bare_tensors(tmp_path):
    _store(tmp_path / "s", a=np.arange(5.0), b=np.zeros((2, 2), np.int8))
    to_pt(tmp_path / "s", tmp_path / "one.pt", array_names=["b"], as_dict=False)
    bare = torch.load(tmp_path / "one.pt", weights_only=True)
    assert torch.is_tensor(bare) and bare.dtype == torch.int8 and bare.shape == (2, 2)
    to_pt(tmp_path / "s", tmp_path / "two.pt", as_dict=False)  # two arrays: still a dict
    assert sorted(torch.load(tmp_path / "two.pt", weights_only=True)) == ["a", "b"]
    # A bare tensor is named after the file; key= picks one entry of a dict.
    from_pt(tmp_path / "one.pt", tmp_path / "t")
    from_pt(tmp_path / "two.pt", tmp_path / "t", key="a")
    got = _arrays(tmp_path / "t")
    assert sorted(got) == ["a", "one"] and np.array_equal(got["a"], np.arange(5.0))
    with pytest.raises(KeyError, match="nope"):
        from_pt(tmp_path / "two.pt", tmp_path / "t", key="nope")
    with pytest.raises(KeyError):
        to_pt(tmp_path / "s", tmp_path / "x.pt", array_names=["nope"])
    with pytest.raises(FileNotFoundError):
        from_pt(tmp_path / "missing.pt", tmp_path / "t")


def test_legacy_pt_format_is_read(tmp_path):
    t = torch.arange(12, dtype=torch.int64).reshape(3, 4)
    torch.save({"w": t}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    from_pt(tmp_path / "old.pt", tmp_path / "s")
    assert np.array_equal(_arrays(tmp_path / "s")["w"], t.numpy())


def test_from_pt_refuses_pickled_code_unless_trusted(tmp_path):
    torch.save({"w": torch.ones(3), "obj": Opaque(), "epoch": 3}, tmp_path / "ckpt.pt")
    with pytest.raises(pickle.UnpicklingError):
        from_pt(tmp_path / "ckpt.pt", tmp_path / "s")
    assert not (tmp_path / "s").exists() or _arrays(tmp_path / "s") == {}
    with pytest.warns(UserWarning, match="not tensors are skipped"):
        from_pt(tmp_path / "ckpt.pt", tmp_path / "s", weights_only=False)
    assert list(_arrays(tmp_path / "s")) == ["w"]
    with pytest.raises(TypeError, match="not a tensor"):
        from_pt(tmp_path / "ckpt.pt", tmp_path / "s", key="epoch", weights_only=False)


def test_from_pt_bad_contents_change_nothing(tmp_path):
    _store(tmp_path / "s", keep=np.arange(3))
    torch.save({"a": torch.ones(4), "b": torch.ones(4, dtype=torch.bfloat16)}, tmp_path / "bf.pt")
    with pytest.raises(ValueError, match="bfloat16.*'b'"):
        from_pt(tmp_path / "bf.pt", tmp_path / "s")
    torch.save([torch.ones(2)], tmp_path / "list.pt")
    with pytest.raises(TypeError, match="list"):
        from_pt(tmp_path / "list.pt", tmp_path / "s")
    torch.save({"epoch": 3}, tmp_path / "none.pt")
    with pytest.raises(ValueError, match="without tensors"):
        from_pt(tmp_path / "none.pt", tmp_path / "s")
    assert list(_arrays(tmp_path / "s")) == ["keep"]


def test_zero_d_tensors_become_one_element_arrays(tmp_path):
    torch.save({"w": torch.ones(2, 2), "num_batches_tracked": torch.tensor(7)}, tmp_path / "bn.pt")
    with pytest.warns(UserWarning, match="0-d"):
        from_pt(tmp_path / "bn.pt", tmp_path / "s")
    got = _arrays(tmp_path / "s")
    assert got["num_batches_tracked"].shape == (1,) and got["num_batches_tracked"][0] == 7


def test_from_pt_progress_and_cancel(tmp_path):
    w = torch.arange(4000, dtype=torch.float32).reshape(1000, 4)
    torch.save({"w": w, "b": torch.zeros(10)}, tmp_path / "m.pt")
    old = np.full(3, 9.0)
    _store(tmp_path / "s", w=old)
    with pytest.raises(numpack.CancelledError):
        from_pt(tmp_path / "m.pt", tmp_path / "s", chunk_size=1024, progress=_Recorder(cancel_at=4))
    with pytest.raises(numpack.CancelledError):
        from_pt(tmp_path / "m.pt", tmp_path / "s", chunk_size=1024, drop_if_exists=True,
                progress=_Recorder(cancel_at=4))
    got = _arrays(tmp_path / "s")
    assert list(got) == ["w"] and np.array_equal(got["w"], old)
    rec = _Recorder()
    from_pt(tmp_path / "m.pt", tmp_path / "s", chunk_size=1024, progress=rec)
    total = w.numel() * 4 + 40
    assert rec.calls[0] == (0, total) and rec.calls[-1] == (total, total)
    assert len(rec.calls) >= 16
    assert np.array_equal(_arrays(tmp_path / "s")["w"], w.numpy())


def test_to_pt_cancel_keeps_the_old_file(tmp_path):
    _store(tmp_path / "s", a=np.arange(10000, dtype=np.int64))
    torch.save({"old": torch.ones(1)}, tmp_path / "out.pt")
    before = (tmp_path / "out.pt").read_bytes()
    with pytest.raises(numpack.CancelledError):
        to_pt(tmp_path / "s", tmp_path / "out.pt", chunk_size=4096, progress=_Recorder(cancel_at=3))
    assert (tmp_path / "out.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pt", "s"]  # no temporary file
    rec = _Recorder()
    to_pt(tmp_path / "s", tmp_path / "out.pt", chunk_size=4096, progress=rec)
    assert rec.calls[-1] == (80000, 80000) and len(rec.calls) >= 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(torch.load(tmp_path / "out.pt", weights_only=True)["a"], torch.arange(10000))


def test_a_name_the_store_refuses_changes_nothing(tmp_path):
    _store(tmp_path / "s", keep=np.arange(3))
    torch.save({"ok": torch.ones(2), "a/b": torch.zeros(2)}, tmp_path / "names.pt")
    with pytest.raises(numpack.InvalidNameError, match="a/b"):
        from_pt(tmp_path / "names.pt", tmp_path / "s", drop_if_exists=True)
    with pytest.raises(numpack.InvalidNameError):
        from_tensor(torch.ones(2), tmp_path / "s", array_name="", drop_if_exists=True)
    assert list(_arrays(tmp_path / "s")) == ["keep"]


def test_from_pt_keeps_memory_bounded_and_data_intact(tmp_path):
    # The file's pages are released as their rows are stored: the peak grows by a few
    # blocks, not by the file (torch alone is ~500 MiB, so the growth is what is checked).
    import subprocess
    import sys
    import textwrap

    rows, cols = 1 << 20, 64  # 256 MiB of int32 (exact, unlike float32 past 2**24)
    t = torch.arange(rows * cols, dtype=torch.int32).reshape(rows, cols)
    torch.save({"w": t}, tmp_path / "big.pt")
    del t
    code = textwrap.dedent(f"""
        import numpy as np, torch
        from numpack import NumPack
        from numpack.io import from_pt

        def hwm():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) << 10
        base = hwm()
        from_pt({str(tmp_path / "big.pt")!r}, {str(tmp_path / "s")!r})
        grew = hwm() - base
        with NumPack({str(tmp_path / "s")!r}, warn_no_context=False) as n:
            a = n.load("w", lazy=True)
            assert a.shape == ({rows}, {cols})
            for r in (0, 1, 12345, {rows} - 1):
                assert np.array_equal(a[r], np.arange(r * {cols}, (r + 1) * {cols}, dtype=np.int32)), r
        print(grew)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    grew = int(out.stdout.strip().splitlines()[-1])
    assert grew < 192 << 20, f"the peak grew by {grew >> 20} MiB importing a 256 MiB file"
