# One verb per chore. Each target builds .venv on a fresh machine first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-k8s k8s-tools check lint typecheck imports bench bench-peer inotify-room wrk netns-tools postgres-tools chromium goldens models crds serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meshplane demo

test: $(STAMP) netns-tools postgres-tools chromium
	$(BIN)/pytest -m "not k8s"

# The real Kubernetes binaries (tools/k8s/go.mod) for tests/k8s, built once per machine into
# ~/.cache/meshplane/k8s/<go.sum hash>/bin (MESHPLANE_K8S_TOOLS overrides); later runs skip them.
k8s-tools:
	tools/k8s/build.sh

# tests/k8s against a real etcd + kube-apiserver + kube-controller-manager; missing binaries fail.
test-k8s: $(STAMP) k8s-tools
	MESHPLANE_K8S_REQUIRED=1 $(BIN)/pytest tests/k8s -m k8s

# The fast lane: every test that starts no real process (Envoy, apps, `meshplane serve`).
test-fast: $(STAMP)
	$(BIN)/pytest -m "not integration and not k8s"

check: lint typecheck imports

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src/meshplane bench

imports: $(STAMP)
	$(BIN)/lint-imports

bench: $(STAMP) wrk bench-peer chromium inotify-room
	$(BIN)/python -m bench

# The go-control-plane peer of bench.peer_fanout (bench/peers/gocp, pinned in its go.mod), built from
# the Go module proxy into ~/.cache/meshplane/bench-peer/<source hash>/gocp; later runs reuse it.
bench-peer:
	@bench/peers/gocp/build.sh

# bench.peer_fanout's file-based floor gives each of 200 Envoys an inotify instance; the
# kernel's default allows 128 per user. As root this raises the limit to 1024 (never lowers it).
inotify-room:
	@[ "$$(cat /proc/sys/fs/inotify/max_user_instances)" -ge 1024 ] \
	  || { [ "$$(id -u)" = 0 ] && sysctl -qw fs.inotify.max_user_instances=1024; } \
	  || echo "fs.inotify.max_user_instances is below 1024: the 200-Envoy file floor will be skipped"

# The sidecar-hop benchmark measures with wrk when it is installed (a Python client otherwise).
wrk:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
	  || echo "wrk is not installed: bench.sidecar_hop falls back to its Python client"

# proxy-init and the intercepted data-path tests drive Debian's iptables and iproute2 inside
# network namespaces they create; as root on a fresh machine this installs them (without root
# those tests skip, saying why).
netns-tools:
	@command -v iptables-save >/dev/null && command -v ip >/dev/null \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && { apt-get install -y -qq iptables iproute2 >/dev/null 2>&1 \
	       || { apt-get update -qq && apt-get install -y -qq iptables iproute2 >/dev/null; }; }; } \
	  || echo "iptables/iproute2 not installed: the network-namespace tests will skip or fail"

# The PostgreSQL store's tests start a real server from Debian's packages (initdb in a temp
# dir on a free port, as the postgres user when root); as root this installs them when missing.
postgres-tools:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && { apt-get install -y -qq postgresql >/dev/null 2>&1 \
	       || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }; }; } \
	  || echo "postgresql not installed: the PostgreSQL store tests will fail"

# tests/console drive Debian's chromium with Playwright (playwright's own browser download does
# not work here: never `playwright install`); as root on a fresh machine this installs it.
chromium:
	@command -v chromium >/dev/null \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && { apt-get install -y -qq chromium >/dev/null 2>&1 \
	       || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; }; } \
	  || echo "chromium is not installed: the console's browser tests will skip"

goldens: $(STAMP)
	REFRESH_GOLDENS=1 $(BIN)/pytest tests/translate -q

# The typed spec classes, regenerated from botocore's App Mesh model (a test fails on drift).
models: $(STAMP)
	$(BIN)/python -m meshplane.model.generating

# The v1beta2 CRDs, generated from the schema meshplane's admission enforces.
crds: $(STAMP)
	$(BIN)/meshplane crds -o charts/meshplane/crds

serve: $(STAMP)
	$(BIN)/meshplane serve --data-dir .meshplane

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
