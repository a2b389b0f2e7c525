# The two commands of the README. Everything they need beyond cargo, gcc, make, python3
# and pip is installed locally (crates under target/, Python venvs under .venv-*).
.PHONY: demo test

demo:
	bash bindings/c/demo.sh

test:
	cargo test
	bash tests/c/run.sh
	bash tests/interop/run.sh
