# Kumo: the README's two commands live here.
#   make up    install what is needed, then start the all-in-one cloud
#   make test  install what is needed, then run the test suite

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml scripts/install-system-deps.sh | sha1sum | cut -c1-12)

.PHONY: up test deps venv clean lint

up: deps
	$(VENV)/bin/kumo up

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

deps: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

clean:
	rm -rf $(VENV) build src/*.egg-info
