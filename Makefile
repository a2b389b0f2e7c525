# The two commands of the README. Everything they need beyond cargo, gcc, make, python3
# and pip is installed locally (crates under target/, Python venvs under .venv-* and
# bindings/python/.venv, cmake from PyPI into .venv-tools).
.PHONY: demo test test-torch

demo:
	bash bindings/c/demo.sh

# Interop first: it builds the NumPack 0.7.0 venv that the Python suite's surface
# comparison (test_surface07.py) also uses.
test:
	cargo test
	bash tests/c/run.sh
	bash tests/cpp/run.sh
	bash tests/julia_static/run.sh
	bash tests/interop/run.sh
	bash bindings/python/run_tests.sh

# The converters that need PyTorch, in a venv of their own (PyPI's torch brings ~5 GB of
# CUDA libraries, too much for every CI run); `make test` runs the rest and skips these.
test-torch:
	bash bindings/python/run_torch_tests.sh
