# The commands users and scripts rely on. Everything runs from the repo's .venv.
PY := .venv/bin/python
STAMP := .venv/.installed-$(shell sha1sum requirements.txt 2>/dev/null | cut -c1-12)
MAKEFLAGS += --no-print-directory

.PHONY: setup up down demo phones status test test-fast test-docker docker-env bench lint

$(STAMP): requirements.txt scripts/setup.sh
	@bash scripts/setup.sh
	@rm -f .venv/.installed-*; touch $@

setup: $(STAMP)

up: setup           ## Asterisk + ARI app + web console + Celery worker, left running
	@$(PY) -m stack up

down:               ## stop everything `up` started
	@if [ -x $(PY) ]; then $(PY) -m stack down; fi

demo: setup         ## `up`, then a scripted phone calls an unanswered extension and talks to the AI
	@$(PY) -m stack demo

phones: setup       ## SIP server address and every extension's credentials, as JSON
	@$(PY) -m stack phones

status:
	@$(PY) -m stack status

test: setup         ## the whole suite, with real Asterisk, SIP calls, PostgreSQL, Redis
	@$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-docker: setup  ## compose.yaml for real: images built here, `docker compose up asterisk ariapp web`, an AI call
	@[ "$${AIPBX_STANDINS:-1}" = 0 ] || bash docker/standins/build.sh  # AIPBX_STANDINS=0: real images from a registry
	@$(PY) -m pytest -q -s -p no:cacheprovider tests/docker

docker-env:         ## what the first `docker compose up` writes: secrets/ and .env (to edit before starting)
	@docker compose run --rm --build setup

test-fast: setup    ## unit tests only
	@$(PY) -m pytest -q -p no:cacheprovider tests/unit

bench: setup        ## benchmarks; prints JSON
	@$(PY) -m bench $(BENCH_ARGS)

lint: setup
	@$(PY) -m ruff check ariapp softphone stack webconsole knowledge tests bench
