# robot_stack — set-up, run and test on a fresh Debian machine.
#   make run    set up .venv and run an autonomous fine-tuning session on the simulated robot
#   make test   set up .venv and run the whole test suite
# Both are idempotent: a second call only checks stamps and goes straight to work.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages: headless MuJoCo (EGL/Mesa + OSMesa fallback), libusb for pyrealsense2,
# chromium for the dashboard browser tests, ffmpeg for video import/export.
APT_PACKAGES := libegl1 libgl1-mesa-dri libosmesa6 libgles2 libusb-1.0-0 chromium ffmpeg
APT_STAMP := $(VENV)/.apt-ok
PIP_STAMP := $(VENV)/.pip-ok
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export PYTHONUNBUFFERED := 1

.PHONY: setup run test bench clean help

help:
	@echo "make run    - autonomous fine-tuning session on the simulated WidowX 250 (dashboard URL printed)"
	@echo "make test   - whole test suite"
	@echo "make bench  - every benchmark in bench/ (each prints one JSON line)"

$(APT_STAMP):
	@missing=""; for p in $(APT_PACKAGES) python3-venv; do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v $(PYTHON) >/dev/null || { echo "no $(PYTHON) on PATH"; exit 1; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@touch $@

$(PIP_STAMP): $(APT_STAMP) pyproject.toml .ci/constraints.txt
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned resolve pulls the multi-GB CUDA build.
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -c .ci/constraints.txt -e ".[test]"
	@touch $@

setup: $(PIP_STAMP)

run: setup
	$(VENV)/bin/robot-stack run

test: setup
	$(PY) -m pytest -p no:cacheprovider

# bench/session_common.py is a helper; bench/finetune_episodic.py fine-tunes the session bench's preparation.
BENCHES := $(filter-out bench/session.py bench/session_common.py bench/finetune_episodic.py,$(wildcard bench/*.py))
bench: setup
	@for b in $(BENCHES); do echo "== $$b"; $(PY) $$b || exit 1; done
	rm -rf runs/bench-session runs/bench-episodic
	@echo "== bench/session.py"; $(PY) bench/session.py --run-dir runs/bench-session
	@echo "== bench/finetune_episodic.py"; $(PY) bench/finetune_episodic.py --from runs/bench-session --out-dir runs/bench-episodic

clean:
	rm -rf $(VENV) runs test-artifacts
