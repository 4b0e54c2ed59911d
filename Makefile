# Two entry points that work on a fresh machine with nothing but Python 3.11:
#   make run   - svcflow with its embedded defaults (SQLite file under var/, bundled workflows)
#   make test  - the whole test suite (real SQLite, a real PostgreSQL it starts itself)
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean cjk-fonts screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# Reinstall only when the declared dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/svcflow run

# The browser test drives Debian's Chromium (Playwright's own browser download is not
# available); install it when this machine can, and say so when it cannot.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null \
		|| echo "WARNING: could not install chromium: the browser test will be skipped"; \
	else echo "WARNING: chromium missing and not root: the browser test will be skipped"; fi

# The dashboard speaks Chinese; without a font that covers it Chromium draws every character
# as a box, and a failed browser test's screenshot shows nothing readable. Debian's Noto CJK,
# installed only when no installed font covers Chinese.
cjk-fonts:
	@if command -v fc-list >/dev/null && [ -n "$$(fc-list :lang=zh family)" ]; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "installing fonts-noto-cjk (Chinese text for the browser tests)"; \
		{ apt-get update -qq >/dev/null && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		    fonts-noto-cjk >/dev/null; } \
		|| echo "WARNING: could not install fonts-noto-cjk: Chinese renders as boxes in browser tests"; \
	else echo "WARNING: no CJK font and not root: install fonts-noto-cjk for the browser tests"; fi

test: $(STAMP) | $(CHROMIUM) cjk-fonts
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check engine api workers tests bench
	$(BIN)/ruff format --check engine api workers tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy engine

bench: $(STAMP)
	$(BIN)/python bench/transitions.py

# docs/screenshots/*.png, embedded in docs/dashboard.md: the demo desk in headless Chromium.
screenshots: $(STAMP) | $(CHROMIUM) cjk-fonts
	$(BIN)/python bench/screenshots.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
