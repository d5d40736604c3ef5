# mrpo_rllib — `make` (or `make help`) lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
# TASK, ALGO, ITERS, EPISODES empty: mrpo train's defaults (MRPOConfig's task, selection and M)
TASK     ?=
ALGO     ?=
SEEDS    ?= 0
ITERS    ?=
EPISODES ?=
OUT      ?= results
CONFIG   ?= tune_configs/smoke.yaml
STORAGE  ?= $(OUT)/tune
RUNS     ?= $(OUT)
CLUSTER  ?= cluster/aws.yaml
BENCH    ?= full
SMALL    ?= tune_configs/small_cartpole.yaml tune_configs/small_invertedpendulum.yaml
# bench-steady: the commit measured side by side as "old" (the one before the batched sampler)
REF      ?= 9964324
ROUNDS   ?= 3
STEADY_TASKS ?= CartPole Hopper

.PHONY: help install install-bench test test-slow lint format train tune report learner parity reproduce reproduce-m20 mutants reproduce-small bench bench-steady \
	cluster-up cluster-down env-bench clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-16s %s\n", $$1, $$2}'
	@echo "  variables: TASK=$(TASK) ALGO=$(ALGO) SEEDS='$(SEEDS)' ITERS=$(ITERS) EPISODES=$(EPISODES) OUT=$(OUT) CONFIG=$(CONFIG)"
	@echo "             STORAGE=$(STORAGE) RUNS=$(RUNS) BENCH=$(BENCH); RAY_ADDRESS=http://... submits make tune as a Ray job"

$(VENV)/.installed: requirements.txt requirements-extras.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt -r requirements-extras.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed ## create .venv with the pinned requirements, the extras (video, tracking) and the package

$(VENV)/.bench-installed: requirements-bench.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-bench.txt
	touch $@

install-bench: $(VENV)/.bench-installed ## add the benchmark-only dependencies (Stable-Baselines3)

test: install install-bench ## run the fast test suite (what CI runs)
	$(BIN)/python -m pytest -q

test-slow: install ## run only the slow learning tests
	$(BIN)/python -m pytest -q -m slow

lint: install ## ruff check and format check
	$(BIN)/ruff check mrpo_rllib tests benchmarks tools
	$(BIN)/ruff format --check mrpo_rllib tests benchmarks tools

format: install ## ruff format and autofix
	$(BIN)/ruff format mrpo_rllib tests benchmarks tools
	$(BIN)/ruff check --fix mrpo_rllib tests benchmarks tools

train: install ## a short training run (embedded Ray): TASK, ALGO, SEEDS, ITERS, EPISODES (M), OUT
	for seed in $(SEEDS); do \
		$(BIN)/mrpo train $(if $(TASK),--task $(TASK)) $(if $(ALGO),--algo $(ALGO)) --seed $$seed \
			$(if $(ITERS),--iterations $(ITERS)) --out $(OUT) \
			$(if $(EPISODES),--set training.episodes_per_iteration=$(EPISODES)) || exit 1; \
	done

tune: install ## the sweep CONFIG into STORAGE: locally, or as a Ray job when RAY_ADDRESS=http://<dashboard>
	$(BIN)/mrpo tune $(CONFIG) --storage $(STORAGE)

report: install ## Table 2, Figures 1-3, audit from every run under RUNS into OUT/report
	$(BIN)/mrpo report $(RUNS) --out $(OUT)/report

learner: install ## the learner study (tune_configs/learner/, resumable) and its figures into docs/learner/
	for config in tune_configs/learner/*.yaml; do $(BIN)/mrpo tune $$config --storage $(OUT)/learner || exit 1; done
	$(BIN)/mrpo report $(OUT)/learner --out docs/learner --study learner

parity: install-bench ## PPO parity with Stable-Baselines3 (tune_configs/parity/, resumable) and its report into docs/parity/
	$(BIN)/python -m mrpo_rllib.parity run --storage $(OUT)/parity
	$(BIN)/python -m mrpo_rllib.parity report $(OUT)/parity --out docs/parity

reproduce: install ## the reproduction (tune_configs/reproduction/, resumable; ~5 h on 2 cores, +1 h report) and its report
	for config in tune_configs/reproduction/*.yaml; do $(BIN)/mrpo tune $$config --storage $(OUT)/reproduction || exit 1; done
	$(BIN)/mrpo report $(OUT)/reproduction --out $(OUT)/reproduction/report --last 10 --worst-case-budget 30
	mkdir -p docs/reproduction
	cp $(OUT)/reproduction/report/*.png $(OUT)/reproduction/report/*.md $(OUT)/reproduction/report/*.csv docs/reproduction/

reproduce-m20: install ## the comparison at M = 20 (tune_configs/m20/: InvertedPendulum, Hopper; ~2 h on 2 cores), training-range report
	for config in tune_configs/m20/*.yaml; do $(BIN)/mrpo tune $$config --storage $(OUT)/m20 || exit 1; done
	$(BIN)/mrpo report $(OUT)/m20 --out $(OUT)/m20/report --last 10 --no-eval
	mkdir -p docs/m20
	cp $(OUT)/m20/report/*.png $(OUT)/m20/report/*.md $(OUT)/m20/report/*.csv docs/m20/

mutants: install install-bench ## break each core behaviour in a scratch copy; its tests must fail (docs/testing.md)
	$(BIN)/python tools/mutants.py --markdown docs/testing_mutants.md

reproduce-small: install ## CartPole + InvertedPendulum, 3 algorithms x 3 seeds (~15 min on 2 cores), then the report
	for config in $(SMALL); do $(BIN)/mrpo tune $$config --storage $(OUT)/small || exit 1; done
	$(BIN)/mrpo report $(OUT)/small --out $(OUT)/small/report

bench: install-bench ## speed figures against references (BENCH=full|quick|tiny) into OUT/bench.json
	$(BIN)/python -m benchmarks.bench $(if $(filter full,$(BENCH)),,--$(BENCH)) --out $(OUT)/bench.json

bench-steady: install-bench ## steady-state speed (trained policies, M = 100): this checkout vs REF and SB3, into OUT/steady.json
	$(BIN)/python -m benchmarks.steady --tasks $(STEADY_TASKS) --rounds $(ROUNDS) $(if $(REF),--ref $(REF)) --out $(OUT)/steady.json

cluster-up: install ## start the AWS cluster of cluster/aws.yaml (needs AWS credentials)
	$(BIN)/ray up -y $(CLUSTER)

cluster-down: install ## tear the AWS cluster down
	$(BIN)/ray down -y $(CLUSTER)

env-bench: install ## environment speed against raw pybullet stepping
	$(BIN)/python -m benchmarks.bench_envs

clean: ## remove results and caches (not .venv)
	rm -rf $(OUT) .pytest_cache .ruff_cache
