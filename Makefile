# The commands users and scripts rely on. Everything runs from the repo's .venv.
PY := .venv/bin/python
STAMP := .venv/.installed-$(shell sha1sum requirements.txt 2>/dev/null | cut -c1-12)
MAKEFLAGS += --no-print-directory

.PHONY: setup up down demo phones status fail2ban test test-fast test-docker docker-env bench lint

$(STAMP): requirements.txt scripts/setup.sh
	@bash scripts/setup.sh
	@rm -f .venv/.installed-*; touch $@

# The console's translations: .mo files are generated from locale/*/LC_MESSAGES/*.po (never committed),
# by the standard library alone (stack.catalogs), so no GNU gettext is needed.
CATALOGS := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/*.po))

%.mo: %.po | $(STAMP)
	@$(PY) -m stack.catalogs

setup: $(STAMP) $(CATALOGS)

up: setup           ## Asterisk + ARI app + web console + Celery worker, left running (NODES=2: a Kamailio edge and 2 nodes)
	@$(PY) -m stack up $(if $(NODES),--nodes $(NODES))

down:               ## stop everything `up` started
	@if [ -x $(PY) ]; then $(PY) -m stack down; fi

demo: setup         ## `up`, then a scripted phone calls an unanswered extension and talks to the AI
	@$(PY) -m stack demo

phones: setup       ## SIP server address and every extension's credentials, as JSON
	@$(PY) -m stack phones

status:
	@$(PY) -m stack status

fail2ban: setup     ## as root, after `up`: ban addresses that fail SIP auth (FAIL2BAN_ARGS=--docker for compose)
	@$(PY) -m stack fail2ban $(FAIL2BAN_ARGS)

test: setup         ## the whole suite, with real Asterisk, SIP calls, PostgreSQL, Redis
	@$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-docker: setup  ## compose.yaml for real: images built here, `docker compose up asterisk ariapp web`, an AI call; the edge profile, an AI call through Kamailio
	@[ "$${AIPBX_STANDINS:-1}" = 0 ] || bash docker/standins/build.sh  # AIPBX_STANDINS=0: real images from a registry
	@$(PY) -m pytest -q -s -p no:cacheprovider tests/docker

docker-env:         ## what the first `docker compose up` writes: secrets/ and .env (to edit before starting)
	@docker compose run --rm --build setup

test-fast: setup    ## unit tests only
	@$(PY) -m pytest -q -p no:cacheprovider tests/unit

bench: setup        ## benchmarks; prints JSON
	@$(PY) -m bench $(BENCH_ARGS)

# Typed without holes (issue 17); webconsole and the rest of knowledge are not yet.
TYPED := contract aipbx ariapp knowledge/retrieval

lint: setup         ## ruff check and format, the import contracts (pyproject: the never-rules) and mypy on the typed packages
	@$(PY) -m ruff check aipbx ariapp contract softphone stack webconsole knowledge tests bench
	@$(PY) -m ruff format --check --quiet .
	@.venv/bin/lint-imports --no-cache
	@$(PY) -m mypy --ignore-missing-imports --follow-imports=silent --no-incremental $(TYPED)
