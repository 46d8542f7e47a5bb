# genrelib: `make help` lists the targets. Every target that needs the environment creates it first.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Python 3.12 when the machine has one (librosa 1.0 needs it), else 3.11 or newer.
PYTHON_BASE ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 \
	/usr/local/bin/python3.12 /usr/bin/python3.12 python3.11 python3; do \
	$$p -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1 && { echo $$p; break; }; done)

# DATA: a data folder <genre>/<file> (e.g. GTZAN's Data/genres_original); empty: generate the demo music.
DATA ?=
# PERSONAL: a folder of your songs (optionally <genre>/<song>); empty: the synthetic demo songs.
PERSONAL ?=
DEMO_DIR ?= data/demo
PER_GENRE ?= 30
# PARAMS: notebook parameter overrides, e.g. PARAMS="-p epochs 5 -p family mel_cnn"
PARAMS ?=
PORT ?= 5000
# make app: the web page's port, and the model chosen at first (empty: the shipped default)
APP_PORT ?= 7860
MODEL ?=
# make server: a team MLflow tracking server (BACKEND=postgresql://user:pw@host/db for a team's database)
SERVER_PORT ?= 5050
SERVER_HOST ?= 127.0.0.1
BACKEND ?= sqlite:///$(CURDIR)/mlruns/server.db
ARTIFACTS ?= $(CURDIR)/mlruns/server-artifacts
WORKERS ?= 2
ALLOWED_HOSTS ?=
GL := $(VENV)/bin/genrelib
DATA_DIR = $(or $(DATA),$(DEMO_DIR)/genres)
PERSONAL_DIR = $(or $(PERSONAL),$(DEMO_DIR)/personal)
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlruns/mlflow.db
export MLFLOW_DISABLE_TELEMETRY := true
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0

.PHONY: help env lint test default-model run-all demo bench clean eda features train evaluate personal compare lab ui server app

help: ## show this help
	@echo "genrelib - make targets:"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -n "$(PYTHON_BASE)" || { echo "error: no Python >= 3.11 found; install python3.12 (or 3.11)"; exit 1; }
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON_BASE)"; $(PYTHON_BASE) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name genrelib --display-name "Python (genrelib)" >/dev/null
	@touch $(STAMP)

env: $(STAMP) ## create or update the virtual environment (.venv)

lint: $(STAMP) ## ruff (lint and format check) and the import-linter contracts (layers, no import circles)
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/lint-imports --no-cache

test: lint ## lint, then the whole test suite (what CI runs), on two worker processes
	$(PY) -m pytest -q -n 2 --dist loadgroup --no-loadscope-reorder

demo: $(STAMP) ## generate the synthetic demo music (data/demo/genres and data/demo/personal)
	$(GL) demo-data $(DEMO_DIR)/genres --per-genre $(PER_GENRE)
	$(GL) demo-data $(DEMO_DIR)/personal --personal 6

run-all: $(STAMP) ## the main job: the six notebooks by papermill under one MLflow run (DATA=... for your data)
	@if [ -z "$(DATA)" ]; then $(GL) demo-data $(DEMO_DIR)/genres --per-genre $(PER_GENRE); fi
	@if [ -z "$(PERSONAL)" ]; then $(GL) demo-data $(DEMO_DIR)/personal --personal 6; fi
	$(GL) run-all --data $(DATA_DIR) --personal $(PERSONAL_DIR) $(PARAMS)

eda: $(STAMP) ## run notebooks/01_eda (PARAMS="-p name value" to override)
	$(GL) notebook 01_eda --data $(DATA_DIR) $(PARAMS)
features: $(STAMP) ## run notebooks/02_features
	$(GL) notebook 02_features --data $(DATA_DIR) $(PARAMS)
train: $(STAMP) ## run notebooks/03_train (e.g. PARAMS="-p family mel_cnn -p epochs 20")
	$(GL) notebook 03_train --data $(DATA_DIR) $(PARAMS)
evaluate: $(STAMP) ## run notebooks/04_evaluate
	$(GL) notebook 04_evaluate --data $(DATA_DIR) $(PARAMS)
personal: $(STAMP) ## run notebooks/05_personal_test (PERSONAL=folder of your songs)
	$(GL) notebook 05_personal_test --personal $(PERSONAL_DIR) $(PARAMS)
compare: $(STAMP) ## run notebooks/06_compare: leaderboard, family chart and best confusion matrices of DATA's runs
	$(GL) notebook 06_compare --data $(DATA_DIR) $(PARAMS)

lab: $(STAMP) ## start JupyterLab on notebooks/ with the project's kernel (named genrelib)
	$(VENV)/bin/jupyter lab --notebook-dir notebooks --ip 127.0.0.1 $$([ "$$(id -u)" = 0 ] && echo --allow-root)

ui: $(STAMP) ## start the MLflow UI on 127.0.0.1 (PORT=5000) against the project's store (no job runner)
	@case "$(MLFLOW_TRACKING_URI)" in http://*|https://*) \
	  $(PY) -c "from genrelib import tracking; print('the tracking server serves the UI; genrelib runs:', tracking.ui_url())"; \
	  exit 0;; esac; \
	$(PY) -c "from genrelib import tracking; print('genrelib runs:', tracking.ui_url(port=$(PORT)))" && \
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false exec $(VENV)/bin/mlflow ui \
	  --backend-store-uri $(MLFLOW_TRACKING_URI) --host 127.0.0.1 --port $(PORT)

app: $(STAMP) ## the web page for classifying your own songs on 127.0.0.1:APP_PORT (7860); MODEL=genre-classifier@... to start with one
	$(GL) app --port $(APP_PORT) $(if $(MODEL),--model '$(MODEL)')

server: $(STAMP) ## team tracking server on 127.0.0.1:SERVER_PORT (5050), SQL store + proxied artifacts (BACKEND=postgresql://...)
	@$(PY) scripts/tracking_server.py --backend '$(BACKEND)' --artifacts '$(ARTIFACTS)' --host $(SERVER_HOST) \
	  --port $(SERVER_PORT) --workers $(WORKERS) --allowed-hosts '$(ALLOWED_HOSTS)'

default-model: $(STAMP) ## rebuild the shipped default model from audio (DATA=the 153 real GTZAN tracks)
	@test -n "$(DATA)" || { echo "error: give DATA=<folder>; ../shared/data/gtzan/make_dev_folder.sh DEST makes one"; exit 2; }
	$(GL) train-default $(DATA) --table tests/data/default_model_features.npz

bench: $(STAMP) ## benchmarks (speed and size, as ratios against baselines in the same run)
	$(PY) benchmarks/bench.py

clean: ## remove generated data, results and caches (keeps .venv and mlruns)
	rm -rf data results .pytest_cache
