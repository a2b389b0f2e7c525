#!/usr/bin/env bash
# Runs the tests that need PyTorch (numpack.io's from_pt/to_pt/from_tensor/to_tensor and
# the torch side of zero_copy) in a venv of their own, NUMPACK_TORCH_VENV (default
# .venv-torch at the repository root): PyPI's Linux torch wheel pulls the CUDA libraries
# (about 5 GB installed), too much for the main test venv, where these tests skip.
# install.sh builds the package into that venv; torch is installed once and kept.
# Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${NUMPACK_TORCH_VENV:-$root/.venv-torch}"
py="$(NUMPACK_PY_VENV="$venv" bash "$here/install.sh")"
if ! "$py" -c "import torch" >/dev/null 2>&1; then
    echo "run_torch_tests.sh: installing torch into $venv" >&2
    "$py" -m pip install -q "torch>=2.1" >&2
fi
cd "$here/tests"
exec "$py" -m pytest -q -p no:cacheprovider -rs test_io_torch.py test_io_zero_copy.py "$@"
