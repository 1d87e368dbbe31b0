# The README's two commands: `make demo` and `make test`.
PY := .venv/bin/python

.PHONY: demo test test-all test-fresh bootstrap lint crds images

bootstrap:
	bash devstack/bootstrap.sh

demo: bootstrap
	$(PY) -m lucid_devstack.demo

test: bootstrap
	.venv/bin/ruff check .
	npm --prefix player test
	.venv/bin/pytest -m "not slow"

# Everything, including the long fault and load tests CI leaves out.
test-all: bootstrap
	.venv/bin/ruff check .
	npm --prefix player test
	.venv/bin/pytest

# A fresh Debian 12 machine, proven: a container from a plain debootstrap base runs the
# bootstrap (cold: apt, venv, Go builds) and a stack test on a clean clone of HEAD.
test-fresh: bootstrap
	$(PY) -m lucid_devstack.fresh

lint: bootstrap
	.venv/bin/ruff check .

crds: bootstrap
	$(PY) -m lucid_common.api.crdgen

# Both images, built with podman from Dockerfile.operator and Dockerfile.recorder (never
# pushed): localhost/lucid-operator:<version> and localhost/lucid-recorder:<version>.
images: bootstrap
	$(PY) -m lucid_devstack.images
