# Shared settings and helpers of tests/e2e/cluster/up and .../down (sourced).
# shellcheck shell=bash disable=SC2034  # variables are used by up and down

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$CLUSTER_DIR/../../.." && pwd)

STATE=${EXUVIA_E2E_STATE:-/var/lib/exuvia-e2e}
PKI=$STATE/pki
LOGS=$STATE/logs
PIDS=$STATE/pids
RUN=$STATE/run                       # sockets and runtime state
CTRD_SOCK=$RUN/containerd.sock
CTRD_STATE=$RUN/containerd           # containerd --state (task rootfs mounts, netns, shm)
CTRD_ROOT=$STATE/containerd/root     # containerd --root (content store, snapshots)
KUBELET_ROOT=$STATE/kubelet          # kubelet --root-dir (pod volumes)
CNI_CONF_DIR=$STATE/cni/net.d
CNI_IPAM_DIR=$STATE/cni/ipam
CNI_BRIDGE=exuvia-e2e0
POD_SUBNET=${EXUVIA_E2E_POD_SUBNET:-10.244.77.0/24}
SERVICE_CIDR=10.96.0.0/24
SERVICE_IP=10.96.0.1
ETCD_CLIENT_PORT=12379               # not 2379: leave the default to anyone else
ETCD_PEER_PORT=12380
APISERVER_PORT=6443
KUBELET_PORT=10250
KUBELET_HEALTHZ_PORT=10248
APISERVER=https://127.0.0.1:$APISERVER_PORT
ADMIN_KUBECONFIG=$STATE/admin.kubeconfig

PAUSE_IMAGE=localhost/exuvia/pause:3.10
SHELLLESS_IMAGE=localhost/exuvia/shellless:test
DEBUG_IMAGE=localhost/exuvia/debug:test

# sysctls kubelet rewrites at start (KernelTunableModify); down restores them.
KUBELET_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
                 kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

log() { printf '[exuvia-e2e %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# pid_of NAME: the live pid recorded for NAME, or nothing.
pid_of() {
  local f=$PIDS/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  # Guard against pid reuse: the recorded command line must still match.
  if [ -f "$PIDS/$1.cmd" ]; then
    [ "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" = "$(cat "$PIDS/$1.cmd")" ] || return 1
  fi
  echo "$pid"
}

# running PID: the process exists and is not a zombie.
running() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# stop_proc NAME [TIMEOUT_S]: SIGTERM, wait, then SIGKILL the recorded process.
stop_proc() {
  local name=$1 timeout=${2:-20} pid i
  if pid=$(pid_of "$name"); then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then
      log "$name did not stop in ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$PIDS/$name.pid" "$PIDS/$name.cmd" "$PIDS/$name.digest"
}

ctr_() { ctr --address "$CTRD_SOCK" -n k8s.io "$@"; }

kubectl_() { kubectl --kubeconfig "$ADMIN_KUBECONFIG" --cache-dir "$STATE/kubectl-cache" "$@"; }
