# ipseclab: two commands on a fresh Debian machine as root.
#   make lab   installs everything and starts JupyterLab on labs/
#   make test  installs what the tests need and runs the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv tshark tcpdump nftables iproute2 iputils-ping chromium openssl \
	strongswan-charon strongswan-swanctl libcharon-extra-plugins libcharon-extauth-plugins \
	libstrongswan-extra-plugins libstrongswan-standard-plugins \
	podman runc mmdebstrap uidmap fuse-overlayfs aardvark-dns gcc libc6-dev
LAB_PORT ?= 8888

.PHONY: lab test system-deps venv lint clean

# Debian packages the labs and tests use (tshark dissects, charon is the interop peer;
# podman + mmdebstrap run libreswan, the second one, in a container; gcc builds its XFRM shim).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[lab,test,containers,classroom]'
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check ipseclab tests

test: system-deps venv
	$(VENV)/bin/ruff check ipseclab tests
	$(PY) -m pytest -q

lab: system-deps venv
	$(VENV)/bin/jupyter lab --allow-root --no-browser --ip=127.0.0.1 --port=$(LAB_PORT) --notebook-dir=labs

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
