#!/usr/bin/env bash
# One entry point for people and CI. Each command first does all set-up that is
# missing on this machine (system packages, a virtualenv with exuvia and its test
# tools), then runs:
#   ./dev.sh demo   stage an incident in a local shell-less container, capture it
#   ./dev.sh test   lint, type-check and run the whole test suite
# Both need root: capturing reads other processes' /proc and starts containers.
set -euo pipefail
cd "$(dirname "$0")"

# chromium, poppler-utils (pdftotext) and a Java runtime (the HTML validator) test `exuvia report`;
# zsh and fish test `exuvia completion`
APT_PACKAGES=(runc podman containerd sleuthkit rpm gcc libc6-dev zstd tmux binutils gdb iproute2 util-linux debootstrap
              chromium poppler-utils default-jre-headless zsh fish)
VENV=.venv

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "dev.sh: run as root (sudo ./dev.sh $1): capture reads /proc/<pid>/root and starts containers" >&2
    exit 2
  fi
}

setup_system() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "dev.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

setup_rust_tools() {
  # the inventory's Rust oracle builds a real binary with `cargo auditable`
  if command -v cargo >/dev/null 2>&1 && ! command -v cargo-auditable >/dev/null 2>&1 \
     && [ ! -x "$HOME/.cargo/bin/cargo-auditable" ]; then
    echo "dev.sh: installing cargo-auditable (crates.io)" >&2
    cargo install --quiet --locked cargo-auditable || echo "dev.sh: cargo-auditable unavailable; its test will say why" >&2
  fi
}

setup_python() {
  local py=${PYTHON:-python3}
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "dev.sh: exuvia needs Python >= 3.11 (found: $($py --version 2>&1))" >&2
    exit 2
  fi
  [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
  local stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e '.[test]'
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
}

setup_store_server() {
  # the evidence-store tests run a real S3 server: versitygw, built from the Go module
  # proxy once and cached (tests/support/s3server.py builds it too, if this did not)
  local bin=${EXUVIA_STORE_BIN:-/var/cache/exuvia-store/bin}
  local go
  go=$(command -v go || echo /usr/local/go/bin/go)
  if [ ! -f "$bin/.versitygw-v1.8.0" ] && [ -x "$go" ]; then
    echo "dev.sh: building versitygw v1.8.0 (Go module proxy) into $bin" >&2
    mkdir -p "$bin"
    if GOBIN="$bin" GOFLAGS=-mod=mod GOSUMDB=off CGO_ENABLED=0 GOTOOLCHAIN=local \
        "$go" install github.com/versity/versitygw/cmd/versitygw@v1.8.0; then
      touch "$bin/.versitygw-v1.8.0"
    else
      echo "dev.sh: versitygw did not build; the store tests will say why" >&2
    fi
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    need_root demo
    setup_system
    setup_python
    exec "$VENV/bin/exuvia" demo "$@"
    ;;
  test)
    need_root test
    setup_system
    setup_rust_tools
    setup_store_server
    setup_python
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy"
    exec "$VENV/bin/pytest" -q -p no:cacheprovider "$@"
    ;;
  *)
    echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
