#!/usr/bin/env bash
# Prepares a fresh machine for dockhand's examples and tests: a running container
# engine and the static busybox the test image is built from. Idempotent and quiet
# when everything is already there.
set -euo pipefail

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "setup: installing docker.io"
    apt_install docker.io
  fi
  echo "setup: starting dockerd"
  nohup dockerd >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not come up; see /tmp/dockerd.log" >&2; exit 1; }
fi

# The busybox test image is FROM scratch: it needs the statically linked busybox.
# The database fixtures start from a Debian made with debootstrap. The registry
# tests run the distribution's registry on loopback, with htpasswd for auth. The
# NATS fixture copies the distribution's nats-server onto the Debian base. The
# engine-fault tests put socat in front of the engine's socket and cut it. The
# remote-engine tests make certificates with openssl and serve TLS in front of
# the engine with stunnel.
for pkg in busybox-static debootstrap docker-registry apache2-utils nats-server socat openssl stunnel4; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then
    echo "setup: installing $pkg"
    apt_install "$pkg"
  fi
done

# The second engine: Podman's Docker-compatible API on its own socket. Without
# the ulimits every start fails with an rlimit permission error (the defaults
# ask for more than this machine's container allows).
for pkg in podman catatonit; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then
    echo "setup: installing $pkg"
    apt_install "$pkg"
  fi
done
if ! grep -q default_ulimits /etc/containers/containers.conf 2>/dev/null; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n' >>/etc/containers/containers.conf
fi
podman_sock=/run/podman/podman.sock
if ! curl -sf --unix-socket "$podman_sock" http://d/_ping >/dev/null 2>&1; then
  echo "setup: starting the Podman API service"
  mkdir -p /run/podman
  # Started from /: conmon writes a container's `oom` marker into its
  # working directory when no persist directory is set, which would litter
  # the checkout.
  (cd / && nohup podman system service --time=0 "unix://$podman_sock" >/tmp/podman-service.log 2>&1 &)
  for _ in $(seq 1 30); do
    curl -sf --unix-socket "$podman_sock" http://d/_ping >/dev/null 2>&1 && break
    sleep 1
  done
  curl -sf --unix-socket "$podman_sock" http://d/_ping >/dev/null 2>&1 ||
    { echo "setup: the Podman API service did not come up; see /tmp/podman-service.log" >&2; exit 1; }
fi

# The management service's tests (serve/): a real browser for its page, and a
# Socket.IO client that is not ours, in Python.
if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing chromium"
  apt_install chromium
fi
if ! python3 -c 'import socketio, websocket' >/dev/null 2>&1; then
  echo "setup: installing python-socketio"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "python-socketio[client]>=5,<6" websocket-client
fi

# The second test runner.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install --locked --quiet cargo-nextest
fi

# Fixture images, once per machine (about a minute the first time, then instant):
# made before the tests so parallel test processes never race to make them.
cd "$(dirname "$0")/.."
cargo run --quiet --example fixtures
# Podman keeps its own image store: the core image the second engine's run uses.
DOCKER_HOST="unix://$podman_sock" cargo run --quiet --example fixtures -- busybox
