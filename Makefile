# `make test` and `make demo` set up .venv (with a Python >= 3.12 found by tools/find-python)
# on first use, then run. `make bench` runs the throughput and health benchmarks.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo bench lint clean wheel-check

$(STAMP): pyproject.toml
	@test -x $(PY) || "$$(tools/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# the distribution was called `sbc` before it became `sbc-testbed`: drop that install
	$(PY) -m pip uninstall --quiet --yes sbc 2>/dev/null || true
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

# pytest exits 5 when it collected no tests: say so, and fail.
test: $(STAMP)
	$(VENV)/bin/ruff check sbc scenarios tests benchmarks examples
	$(PY) -m pytest -q || { rc=$$?; [ $$rc -ne 5 ] || echo "make test: no tests ran" >&2; exit $$rc; }

demo: $(STAMP)
	$(VENV)/bin/sbc run heights --simulations 60 --out reports/heights-demo

# Throughput against simuk, sampler health of every correct model, approximate inference
# against NUTS, Stan against its PyMC twins, held-out prediction and PSIS-LOO under
# simulation (about 100 minutes on 2 cores; needs the bench extra: simuk). Tables in
# benchmarks/results/.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) benchmarks/bench_throughput.py
	$(PY) benchmarks/bench_health.py
	$(PY) benchmarks/bench_approx.py
	$(PY) benchmarks/bench_stan.py
	$(PY) benchmarks/bench_prediction.py

# Build the wheel, install it without -e into a fresh venv, use it from outside the checkout.
wheel-check: $(STAMP)
	tools/check-wheel

lint: $(STAMP)
	$(VENV)/bin/ruff check sbc scenarios tests benchmarks examples
	$(VENV)/bin/ruff format --check sbc scenarios tests benchmarks examples

clean:
	rm -rf $(VENV) reports/heights-demo
