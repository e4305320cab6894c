# The two commands of the README: `make book` and `make test`. Both create .venv and install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
REQ_HASH := $(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(REQ_HASH)
# Offline copy of CIFAR-10 for tests and CI, used only when present (users download it through torchvision).
SHARED_DATA := $(abspath ../shared/data)
export BNBOOK_DATA ?= $(if $(wildcard $(SHARED_DATA)/cifar10-jpg.tar.gz),$(SHARED_DATA),)
PYTEST := $(PY) -m pytest -q -n auto --dist worksteal  # the test files spread over the cores (pytest-xdist)
JB := $(VENV)/bin/jupyter-book build . -W -n --keep-going --all --path-output .

.PHONY: venv browser-deps book test smoke gpu-check execute stale student student-book release clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --no-compile -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@# the bytecode on every core (pip compiles on one: 115 -> 85 s); like pip, it skips files for newer Pythons
	@$(PY) -m compileall -q -j 0 $(VENV)/lib > $(VENV)/compileall.log 2>&1 || true
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

book: venv  ## render the book from the committed notebooks into _build/html
	$(JB)
	@echo "Book built: open file://$(abspath _build/html/index.html)"

browser-deps:  ## headless Chromium for the browser test (Debian package; needs root, as on CI)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
	  echo "no Chromium and no way to install it: the browser test will be skipped (it fails under CI=true)"

test: venv browser-deps  ## unit tests, every chapter at profile=ci (nbval), the slow tests and the smoke run, the book build, the browser test
	$(PYTEST) tests --ignore=tests/browser -m "not slow"
	$(PY) tools/nb.py ci  # two chapters side by side, one thread each
	$(PYTEST) tests --ignore=tests/browser -m slow  # after the chapters (the determinism test reuses their run); the smoke run too
	$(JB)
	$(PY) -m pytest tests/browser -q -n auto --dist loadfile  # the book's pages and JupyterLab side by side

smoke: venv  ## every cell of every chapter at the gpu settings, each run capped (BNBOOK_SMOKE=1; NB=... for some)
	$(PY) tools/nb.py smoke $(NB)

gpu-check: venv  ## on a CUDA machine: benchmark, chapter runtimes from measured steps, smoke run (OUT=dir)
	tools/gpu_check.sh $(or $(OUT),artifacts/gpu_check)

execute: venv  ## re-run chapters at the cpu profile and store their outputs (NB=notebooks/xx.ipynb for one)
	$(PY) tools/nb.py execute $(NB)

stale: venv
	$(PY) tools/nb.py stale

student:  ## student copies of the notebooks, without solutions, in student/ (needs only nbformat and pyyaml)
	@python3 -c "import nbformat, yaml" 2>/dev/null && python3 tools/nb.py student student || \
	  { $(MAKE) venv && $(PY) tools/nb.py student student; }

student-book: venv student  ## the book without solutions, for a course: _build/student/_build/html
	rm -rf _build/student && mkdir -p _build/student
	git ls-files | grep -v '^notebooks/' | tar -cf - -T - | tar -xf - -C _build/student
	mkdir -p _build/student/notebooks && cp student/*.ipynb _build/student/notebooks/
	cd _build/student && ../../$(VENV)/bin/jupyter-book build . -W -n --keep-going --all --path-output .
	@echo "Book without solutions: open file://$(abspath _build/student/_build/html/index.html)"

release: venv  ## ready to publish: make release URL=https://github.com/OWNER/NAME VERSION=0.1.0 (see README)
	$(PY) tools/nb.py release "$(URL)" "$(VERSION)"

clean:
	rm -rf _build artifacts student dist
