# The README's two commands: `make demo` and `make test`.
PY := .venv/bin/python

.PHONY: demo test test-all bootstrap lint crds

bootstrap:
	bash devstack/bootstrap.sh

demo: bootstrap
	$(PY) -m lucid_devstack.demo

test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/pytest -m "not slow"

# Everything, including the long fault and load tests CI leaves out.
test-all: bootstrap
	.venv/bin/ruff check .
	.venv/bin/pytest

lint: bootstrap
	.venv/bin/ruff check .

crds: bootstrap
	$(PY) -m lucid_common.api.crdgen
