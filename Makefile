# The README's two commands are `make demo` and `make test`; everything else here is what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every extra of pyproject.toml: the test suite runs each part (functions, API, simulator, streaming, models, connectors).
EXTRAS := runtime,api,archive,simulator,streaming,models,torch,stack,connectors,test

.PHONY: install demo test stack-up stack-down

# One install step for a fresh machine: a virtual environment with the project and its test tools.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed

# The live simulated city on embedded defaults: simulator -> functions -> streaming -> storage -> API.
demo: install
	$(BIN)/smartcity demo

# The whole test suite; it installs and starts the real local services it needs, and stops them after.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

stack-up: install
	$(BIN)/smartcity stack up

stack-down: install
	$(BIN)/smartcity stack down
