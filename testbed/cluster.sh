#!/usr/bin/env bash
# Local single-node Kubernetes test bed, built like hack/local-up-cluster.sh:
# upstream binaries (built from the Go module proxy) run as plain local processes.
#
#   cluster.sh build            build/install all tools (Go builds + Debian packages)
#   cluster.sh up [api|full]    start (or reuse) the cluster; default tier: api
#   cluster.sh down             stop everything and remove processes/mounts/netns/devices
#   cluster.sh status           print tier and component health (exit 1 if not running)
#   cluster.sh env              print export lines (KUBECONFIG, registry, ...)
#   cluster.sh check-clean      exit 1 if anything of the test bed is left behind
#
# Environment: TESTBED_CACHE (default /var/cache/openshell-testbed) holds binaries and Go caches;
# TESTBED_STATE (default /var/lib/openshell-testbed) holds certs, etcd data, logs, kubeconfigs.
# See testbed/README.md.
set -euo pipefail

TESTBED_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$TESTBED_DIR/versions.env"

TESTBED_CACHE="${TESTBED_CACHE:-/var/cache/openshell-testbed}"
TESTBED_STATE="${TESTBED_STATE:-/var/lib/openshell-testbed}"
# Sockets and pid files live on /run (tmpfs) so a reboot cannot leave stale ones.
TESTBED_RUN="${TESTBED_RUN:-/run/openshell-testbed}"

PKI="$TESTBED_STATE/pki"
LOGS="$TESTBED_STATE/logs"
KCFG="$TESTBED_STATE/kubeconfig"
ADMIN_KUBECONFIG="$KCFG/admin.kubeconfig"
REG_DIR="$TESTBED_STATE/registry"
CTRD_ROOT="$TESTBED_STATE/containerd/root"
CTRD_STATE="$TESTBED_RUN/containerd"
CTRD_SOCK="$TESTBED_RUN/containerd/containerd.sock"
CNI_CONF_DIR="$TESTBED_STATE/cni/net.d"
CNI_DATA_DIR="$TESTBED_STATE/cni/data"
CNI_NET_NAME=openshell-testbed
KUBELET_ROOT="$TESTBED_STATE/kubelet"
NODE_NAME=openshell-testbed-node

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------

go_env() {
  export GOTOOLCHAIN=local
  # -mod=readonly: the committed go.mod/go.sum are complete; a build never rewrites them.
  # (Use `go mod tidy` with GOFLAGS=-mod=mod in testbed/go/<tool> when changing a pin.)
  export GOFLAGS="-mod=readonly -buildvcs=false"
  export GOMODCACHE="$TESTBED_CACHE/gomod"
  export GOCACHE="$TESTBED_CACHE/gocache"
  export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
  # keep go.sum verification on (sum.golang.org is part of the Go module proxy service);
  # go.sum files are committed, so nothing new is looked up for a pinned build.
}

# Directory holding the binaries of one tool at its pinned version. The key includes a hash of
# the wrapper's go.mod+go.sum, so a changed wrapper gets a fresh build.
tool_bin_dir() { # tool version
  local tool=$1 version=$2 h
  h=$(cat "$TESTBED_DIR/go/$tool/go.mod" "$TESTBED_DIR/go/$tool/go.sum" 2>/dev/null | sha256sum | cut -c1-10)
  echo "$TESTBED_CACHE/bin/$tool-$version-$h"
}
KUBE_BIN() { tool_bin_dir kubernetes "$KUBE_VERSION"; }
ETCD_BIN() { tool_bin_dir etcd "$ETCD_VERSION"; }
HELM_BIN() { tool_bin_dir helm "$HELM_VERSION"; }
HELM_UNITTEST_BIN() { tool_bin_dir helm-unittest "$HELM_UNITTEST_VERSION"; }
AGENT_SANDBOX_BIN() { tool_bin_dir agent-sandbox "$AGENT_SANDBOX_VERSION"; }

check_go() {
  command -v go >/dev/null || die "go not found (need Go >= $GO_MIN_VERSION)"
  local v; v=$(go env GOVERSION); v=${v#go}
  if [[ "$(printf '%s\n%s\n' "$GO_MIN_VERSION" "$v" | sort -V | head -1)" != "$GO_MIN_VERSION" ]]; then
    die "Go $v is older than $GO_MIN_VERSION (GOTOOLCHAIN=local: no toolchain download)"
  fi
}

check_pin() { # tool module version
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2 $3( |$)" "$TESTBED_DIR/go/$1/go.mod" \
    || die "testbed/go/$1/go.mod does not require $2 $3 (versions.env and go.mod disagree)"
}

# go_build <tool> <outdir> <name> <package> <cgo 0|1> [ldflags...]
go_build() {
  local tool=$1 out=$2 name=$3 pkg=$4 cgo=$5; shift 5
  local ldflags="-s -w $*"
  if [[ -x "$out/$name" ]]; then log "build: $name up to date ($out)"; return 0; fi
  mkdir -p "$out" "$LOGS_BUILD"
  log "build: $name ($pkg) ..."
  local t0=$SECONDS
  if ! (cd "$TESTBED_DIR/go/$tool" && go_env && CGO_ENABLED=$cgo \
        go build -p "${TESTBED_BUILD_PARALLEL:-2}" -trimpath -tags=selinux,notest \
          -ldflags "$ldflags" -o "$out/$name.tmp" "$pkg") >"$LOGS_BUILD/$name.log" 2>&1; then
    tail -30 "$LOGS_BUILD/$name.log" >&2
    die "build of $name failed (log: $LOGS_BUILD/$name.log)"
  fi
  mv "$out/$name.tmp" "$out/$name"
  log "build: $name done in $((SECONDS - t0))s"
  echo "$name $((SECONDS - t0))s $(date -u +%FT%TZ)" >>"$LOGS_BUILD/timings.txt"
}

kube_ldflags() {
  local major=${KUBE_VERSION#v}; major=${major%%.*}
  local minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
  local p f=()
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    f+=("-X '$p.gitVersion=$KUBE_VERSION'" "-X '$p.gitMajor=$major'" "-X '$p.gitMinor=$minor'"
        "-X '$p.gitTreeState=clean'" "-X '$p.gitCommit=module-proxy-$KUBE_VERSION'"
        "-X '$p.buildDate=$KUBE_BUILD_DATE'")
  done
  echo "${f[*]}"
}

# commands the cluster needs at run time (from DEBIAN_PACKAGES)
RUNTIME_COMMANDS="containerd containerd-shim-runc-v2 ctr runc docker-registry skopeo umoci htpasswd nft iptables catatonit busybox openssl curl ip flock"

ensure_packages() { # cheap check for `up`; installs only when something is missing
  local c
  for c in $RUNTIME_COMMANDS; do
    command -v "$c" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$c" >/dev/null 2>&1 || { install_packages; return; }
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /bin/busybox ]] || install_packages
}

install_packages() {
  local missing=() p
  for p in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "apt: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
  # Debian starts docker-registry (:5000) and containerd as services on install (when systemd
  # runs). The test bed runs its own instances with their own ports/sockets: keep those off.
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now docker-registry.service containerd.service >/dev/null 2>&1 || true
  fi
}

cmd_build() {
  need_root
  install_packages
  check_go
  LOGS_BUILD="$TESTBED_CACHE/logs"
  local t0=$SECONDS
  check_pin kubernetes k8s.io/kubernetes "$KUBE_VERSION"
  check_pin etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  check_pin helm helm.sh/helm/v3 "$HELM_VERSION"
  check_pin helm-unittest github.com/helm-unittest/helm-unittest "$HELM_UNITTEST_VERSION"
  check_pin agent-sandbox sigs.k8s.io/agent-sandbox "$AGENT_SANDBOX_VERSION"

  local kb; kb=$(KUBE_BIN); local kl; kl=$(kube_ldflags)
  # Order: what tier api needs first. One binary at a time (2 cores); each build uses -p 2.
  go_build etcd "$(ETCD_BIN)" etcd go.etcd.io/etcd/server/v3 0 \
    "-X go.etcd.io/etcd/api/v3/version.GitSHA=module-proxy-$ETCD_VERSION"
  go_build kubernetes "$kb" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver 0 "$kl"
  go_build kubernetes "$kb" kubectl k8s.io/kubernetes/cmd/kubectl 0 "$kl"
  go_build kubernetes "$kb" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager 0 "$kl"
  go_build agent-sandbox "$(AGENT_SANDBOX_BIN)" agent-sandbox-controller \
    sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller 0 \
    "-X sigs.k8s.io/agent-sandbox/internal/version.gitVersion=$AGENT_SANDBOX_VERSION" \
    "-X sigs.k8s.io/agent-sandbox/internal/version.gitSHA=$AGENT_SANDBOX_GIT_SHA"
  go_build kubernetes "$kb" kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler 0 "$kl"
  go_build kubernetes "$kb" kube-proxy k8s.io/kubernetes/cmd/kube-proxy 0 "$kl"
  # kubelet: upstream builds it with cgo when a C compiler exists (it is not in
  # KUBE_STATIC_BINARIES). Here it is static by default: with cgo it shares no compiled package
  # with the other (static) binaries and the cold build grows by ~16 min on 2 cores (measured:
  # 987s with cgo vs 24s without, after the other binaries). TESTBED_KUBELET_CGO=1 restores the
  # upstream behaviour (delete the cached kubelet binary to rebuild it).
  go_build kubernetes "$kb" kubelet k8s.io/kubernetes/cmd/kubelet "${TESTBED_KUBELET_CGO:-0}" "$kl"
  local hv="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  local hk="-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$HELM_KUBE_VERSION_MAJOR -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_KUBE_VERSION_MINOR"
  hk+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$HELM_KUBE_VERSION_MAJOR -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_KUBE_VERSION_MINOR"
  go_build helm "$(HELM_BIN)" helm helm.sh/helm/v3/cmd/helm 0 "$hv $hk"
  go_build helm-unittest "$(HELM_UNITTEST_BIN)" helm-unittest \
    github.com/helm-unittest/helm-unittest/cmd/helm-unittest 0 \
    "-X github.com/helm-unittest/helm-unittest/internal/build.version=$HELM_UNITTEST_VERSION"
  # stable names for other tooling (Makefile, tests): $TESTBED_CACHE/bin/current/<binary>
  link_current
  log "build: all tools ready in $((SECONDS - t0))s"
}

link_current() {
  local cur="$TESTBED_CACHE/bin/current" d f
  mkdir -p "$cur"
  for d in "$(KUBE_BIN)" "$(ETCD_BIN)" "$(HELM_BIN)" "$(HELM_UNITTEST_BIN)" "$(AGENT_SANDBOX_BIN)"; do
    for f in "$d"/*; do
      if [[ -x "$f" && "$f" != *.tmp ]]; then ln -sfn "$f" "$cur/$(basename "$f")"; fi
    done
  done
}

# ---------------------------------------------------------------------------------------------
# Process helpers
# ---------------------------------------------------------------------------------------------

pidfile() { echo "$TESTBED_RUN/$1.pid"; }

proc_alive() { # name
  local pf; pf=$(pidfile "$1")
  [[ -f "$pf" ]] || return 1
  local pid; pid=$(<"$pf")
  [[ -n "$pid" && -d /proc/$pid ]] || return 1
  # guard against pid reuse: the command line must mention the binary we started
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$(<"$TESTBED_RUN/$1.bin")"
}

start_proc() { # name binary args...
  local name=$1; shift
  mkdir -p "$LOGS" "$TESTBED_RUN"
  echo "$1" >"$TESTBED_RUN/$name.bin"
  printf '\n===== %s start: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$LOGS/$name.log"
  # 9>&-: the daemons must not inherit the cluster.sh lock
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$(pidfile "$name")"
}

stop_proc() { # name [timeout-seconds]
  local name=$1 t=${2:-5} pf pid i
  pf=$(pidfile "$name")
  if proc_alive "$name"; then
    pid=$(<"$pf")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < t * 10; i++)); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    if [[ -d /proc/$pid ]]; then log "$name did not stop in ${t}s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  fi
  rm -f "$pf" "$TESTBED_RUN/$name.bin"
}

stop_many() { # SIGTERM all, wait up to 5s together, then SIGKILL the rest
  local name pid i pids=()
  for name in "$@"; do
    if proc_alive "$name"; then pid=$(<"$(pidfile "$name")"); kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
  done
  for ((i = 0; i < 50; i++)); do
    local left=0
    for pid in ${pids[@]+"${pids[@]}"}; do [[ -d /proc/$pid ]] && left=1; done
    ((left)) || break
    sleep 0.1
  done
  for name in "$@"; do stop_proc "$name" 1; done
}

wait_for() { # description timeout-seconds command...
  local t=$2 i; shift 2 # $1: description (for readers of the call site)
  for ((i = 0; i < t * 4; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  return 1
}

step() { # run one start-up step and log its duration
  local t0=$SECONDS
  "$@"
  log "  $1: $((SECONDS - t0))s"
}

kubectl_admin() { "$(KUBE_BIN)/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

need_bins() { # fail with a clear message when `build` has not run
  local b
  for b in "$@"; do [[ -x "$b" ]] || die "missing $b: run 'bash testbed/cluster.sh build' (make testbed-tools) first"; done
}

# ---------------------------------------------------------------------------------------------
# PKI (openssl; the same set of certificates hack/local-up-cluster.sh makes with cfssl)
# ---------------------------------------------------------------------------------------------

mk_ca() { # stem cn
  [[ -f "$PKI/$1.crt" ]] && return 0
  openssl req -x509 -sha256 -new -nodes -days 3650 -newkey rsa:2048 -keyout "$PKI/$1.key" \
    -out "$PKI/$1.crt" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

mk_cert() { # stem ca subject eku [san]
  local stem=$1 ca=$2 subj=$3 eku=$4 san=${5:-}
  [[ -f "$PKI/$stem.crt" ]] && return 0
  local ext; ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -n "$san" ]] && echo "subjectAltName=$san"
  } >"$ext"
  openssl req -new -nodes -newkey rsa:2048 -keyout "$PKI/$stem.key" -out "$PKI/$stem.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -sha256 -days 3650 -in "$PKI/$stem.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
    -CAcreateserial -out "$PKI/$stem.crt" -extfile "$ext" 2>/dev/null
  rm -f "$ext" "$PKI/$stem.csr"
}

write_kubeconfig() { # id cert-stem
  local id=$1 stem=$2
  cat >"$KCFG/$id.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: openshell-testbed
  cluster:
    server: https://$TESTBED_HOST_IP:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/server-ca.crt")
users:
- name: $id
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$stem.crt")
    client-key-data: $(base64 -w0 <"$PKI/$stem.key")
contexts:
- name: openshell-testbed
  context: {cluster: openshell-testbed, user: $id}
current-context: openshell-testbed
EOF
  chmod 600 "$KCFG/$id.kubeconfig"
}

setup_pki() {
  mkdir -p "$PKI" "$KCFG"
  chmod 700 "$PKI"
  mk_ca server-ca openshell-testbed-server-ca
  mk_ca client-ca openshell-testbed-client-ca
  mk_ca request-header-ca openshell-testbed-request-header-ca
  local san="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$TESTBED_HOST_IP,IP:$SERVICE_FIRST_IP"
  mk_cert serving-kube-apiserver server-ca "/CN=kube-apiserver" serverAuth "$san"
  # agent-sandbox conversion webhook (served by the controller process on the host address)
  local whs="DNS:agent-sandbox-webhook-service.agent-sandbox-system.svc,DNS:agent-sandbox-webhook-service.agent-sandbox-system.svc.cluster.local,IP:$TESTBED_HOST_IP"
  mk_cert serving-agent-sandbox-webhook server-ca "/CN=agent-sandbox-webhook" serverAuth "$whs"
  mkdir -p "$PKI/webhook"
  cp "$PKI/serving-agent-sandbox-webhook.crt" "$PKI/webhook/tls.crt"
  cp "$PKI/serving-agent-sandbox-webhook.key" "$PKI/webhook/tls.key"
  mk_cert client-admin client-ca "/O=system:masters/CN=system:admin" clientAuth
  mk_cert client-controller client-ca "/CN=system:kube-controller-manager" clientAuth
  mk_cert client-scheduler client-ca "/CN=system:kube-scheduler" clientAuth
  mk_cert client-kube-apiserver client-ca "/CN=kube-apiserver" clientAuth
  mk_cert client-kubelet client-ca "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  mk_cert client-kube-proxy client-ca "/O=system:nodes/CN=system:kube-proxy" clientAuth
  mk_cert client-auth-proxy request-header-ca "/CN=system:auth-proxy" clientAuth
  [[ -f "$PKI/service-account.key" ]] || openssl genrsa -out "$PKI/service-account.key" 2048 2>/dev/null
  write_kubeconfig admin client-admin
  write_kubeconfig controller client-controller
  write_kubeconfig scheduler client-scheduler
  write_kubeconfig kubelet client-kubelet
  write_kubeconfig kube-proxy client-kube-proxy
}

# ---------------------------------------------------------------------------------------------
# Host network: one bridge device with the host/advertise address (no dummy driver in this
# kernel); the CNI bridge is made by the bridge plugin for tier full.
# ---------------------------------------------------------------------------------------------

setup_host_if() {
  if ! ip link show "$TESTBED_HOST_IF" >/dev/null 2>&1; then
    ip link add "$TESTBED_HOST_IF" type bridge
  fi
  grep -q "inet $TESTBED_HOST_IP/" <<<"$(ip addr show dev "$TESTBED_HOST_IF")" ||
    ip addr add "$TESTBED_HOST_IP/32" dev "$TESTBED_HOST_IF"
  ip link set "$TESTBED_HOST_IF" up
}

# ---------------------------------------------------------------------------------------------
# Registries (Debian docker-registry on loopback)
# ---------------------------------------------------------------------------------------------

setup_registry_files() {
  mkdir -p "$REG_DIR/trust" "$REG_DIR/private-data" "$REG_DIR/public-data"
  if [[ ! -f "$REG_DIR/ca.crt" ]]; then
    openssl req -x509 -sha256 -new -nodes -days 3650 -newkey rsa:2048 -keyout "$REG_DIR/ca.key" \
      -out "$REG_DIR/ca.crt" -subj "/CN=openshell-testbed-registry-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    rm -f "$REG_DIR/server.crt"
  fi
  if [[ ! -f "$REG_DIR/server.crt" ]]; then
    local ext; ext=$(mktemp)
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$ext"
    openssl req -new -nodes -newkey rsa:2048 -keyout "$REG_DIR/server.key" -out "$REG_DIR/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in "$REG_DIR/server.csr" -CA "$REG_DIR/ca.crt" -CAkey "$REG_DIR/ca.key" \
      -CAcreateserial -out "$REG_DIR/server.crt" -extfile "$ext" 2>/dev/null
    rm -f "$ext" "$REG_DIR/server.csr"
  fi
  # trust dir for skopeo/containers-image: only the CA (*.crt there are read as roots)
  cp "$REG_DIR/ca.crt" "$REG_DIR/trust/ca.crt"
  if [[ ! -f "$REG_DIR/password" ]]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$REG_DIR/password")
  fi
  chmod 644 "$REG_DIR/password" # test fixture credential; readable by the harness
  echo "$REGISTRY_USER" >"$REG_DIR/user"
  if [[ ! -f "$REG_DIR/htpasswd" || "$REG_DIR/password" -nt "$REG_DIR/htpasswd" ]]; then
    htpasswd -Bbn "$REGISTRY_USER" "$(<"$REG_DIR/password")" >"$REG_DIR/htpasswd"
  fi
  local secret; secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  cat >"$REG_DIR/private.yml" <<EOF
version: 0.1
log: {level: warn, formatter: text}
storage:
  filesystem: {rootdirectory: $REG_DIR/private-data}
  delete: {enabled: true}
  cache: {blobdescriptor: inmemory}
http:
  addr: 127.0.0.1:$REGISTRY_PRIVATE_PORT
  secret: $secret
  tls: {certificate: $REG_DIR/server.crt, key: $REG_DIR/server.key}
auth:
  htpasswd: {realm: openshell-testbed, path: $REG_DIR/htpasswd}
EOF
  cat >"$REG_DIR/public.yml" <<EOF
version: 0.1
log: {level: warn, formatter: text}
storage:
  filesystem: {rootdirectory: $REG_DIR/public-data}
  delete: {enabled: true}
  cache: {blobdescriptor: inmemory}
http:
  addr: 127.0.0.1:$REGISTRY_PUBLIC_PORT
  secret: $secret
EOF
}

start_registries() {
  setup_registry_files
  if ! proc_alive registry-private; then
    start_proc registry-private /usr/bin/docker-registry serve "$REG_DIR/private.yml"
  fi
  if ! proc_alive registry-public; then
    start_proc registry-public /usr/bin/docker-registry serve "$REG_DIR/public.yml"
  fi
  wait_for registry 20 curl -sf --cacert "$REG_DIR/ca.crt" -u "$REGISTRY_USER:$(<"$REG_DIR/password")" \
    "https://127.0.0.1:$REGISTRY_PRIVATE_PORT/v2/" || die "private registry not ready (log: $LOGS/registry-private.log)"
  wait_for registry 20 curl -sf "http://127.0.0.1:$REGISTRY_PUBLIC_PORT/v2/" ||
    die "public registry not ready (log: $LOGS/registry-public.log)"
}

# ---------------------------------------------------------------------------------------------
# Tier api: etcd, kube-apiserver, kube-controller-manager, agent-sandbox CRDs + controller
# ---------------------------------------------------------------------------------------------

start_etcd() {
  proc_alive etcd && return 0
  mkdir -p "$TESTBED_STATE/etcd"; chmod 700 "$TESTBED_STATE/etcd"
  local u="http://127.0.0.1"
  start_proc etcd "$(ETCD_BIN)/etcd" --name testbed --data-dir "$TESTBED_STATE/etcd" \
    --listen-client-urls "$u:$ETCD_CLIENT_PORT" --advertise-client-urls "$u:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "$u:$ETCD_PEER_PORT" --initial-advertise-peer-urls "$u:$ETCD_PEER_PORT" \
    --initial-cluster "testbed=$u:$ETCD_PEER_PORT" \
    --watch-progress-notify-interval=5s --unsafe-no-fsync --log-level=warn \
    --quota-backend-bytes=2147483648 --auto-compaction-retention=10m
  wait_for etcd 30 curl -sf "$u:$ETCD_CLIENT_PORT/health" || die "etcd not healthy (log: $LOGS/etcd.log)"
}

start_apiserver() {
  proc_alive kube-apiserver && return 0
  local audit="$TESTBED_STATE/audit-policy.yaml"
  printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n' >"$audit"
  start_proc kube-apiserver "$(KUBE_BIN)/kube-apiserver" \
    --advertise-address="$TESTBED_HOST_IP" --bind-address="$TESTBED_HOST_IP" --secure-port="$APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" --storage-backend=etcd3 \
    --storage-media-type=application/vnd.kubernetes.protobuf \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultTolerationSeconds,Priority,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota,NodeRestriction \
    --client-ca-file="$PKI/client-ca.crt" \
    --tls-cert-file="$PKI/serving-kube-apiserver.crt" --tls-private-key-file="$PKI/serving-kube-apiserver.key" \
    --cert-dir="$PKI/apiserver-generated" \
    --kubelet-client-certificate="$PKI/client-kube-apiserver.crt" --kubelet-client-key="$PKI/client-kube-apiserver.key" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$PKI/service-account.key" \
    --service-account-signing-key-file="$PKI/service-account.key" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-jwks-uri=https://kubernetes.default.svc/openid/v1/jwks \
    --service-account-lookup=true \
    --requestheader-client-ca-file="$PKI/request-header-ca.crt" --requestheader-allowed-names=system:auth-proxy \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/client-auth-proxy.crt" --proxy-client-key-file="$PKI/client-auth-proxy.key" \
    --enable-aggregator-routing=true \
    --audit-policy-file="$audit" \
    --external-hostname="$TESTBED_HOST_IP" \
    --endpoint-reconciler-type=lease \
    --allow-privileged=true \
    --v=1
  wait_for apiserver 90 kubectl_admin get --raw /readyz || die "kube-apiserver not ready (log: $LOGS/kube-apiserver.log)"
}

start_controller_manager() {
  proc_alive kube-controller-manager && return 0
  start_proc kube-controller-manager "$(KUBE_BIN)/kube-controller-manager" \
    --kubeconfig="$KCFG/controller.kubeconfig" \
    --authentication-kubeconfig="$KCFG/controller.kubeconfig" \
    --authorization-kubeconfig="$KCFG/controller.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$PKI/kcm-generated" \
    --service-account-private-key-file="$PKI/service-account.key" \
    --root-ca-file="$PKI/server-ca.crt" \
    --cluster-signing-cert-file="$PKI/client-ca.crt" --cluster-signing-key-file="$PKI/client-ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --cluster-cidr="$POD_CIDR" --allocate-node-cidrs=false \
    --controllers='*' --use-service-account-credentials=true --leader-elect=false \
    --enable-hostpath-provisioner=false --v=1
  wait_for kcm 60 curl -skf "https://127.0.0.1:$KCM_PORT/healthz" ||
    die "kube-controller-manager not healthy (log: $LOGS/kube-controller-manager.log)"
}

bind_kubelet_api_admin() { # as local-up: let kube-apiserver reach the kubelet API (logs, exec)
  kubectl_admin get clusterrolebinding kube-apiserver-kubelet-admin >/dev/null 2>&1 ||
    kubectl_admin create clusterrolebinding kube-apiserver-kubelet-admin \
      --clusterrole=system:kubelet-api-admin --user=kube-apiserver >&2
}

crd_dir() { echo "$TESTBED_CACHE/gomod/sigs.k8s.io/agent-sandbox@$AGENT_SANDBOX_VERSION/k8s/crds"; }

install_crds() {
  local dir; dir=$(crd_dir)
  if [[ ! -d "$dir" ]]; then
    (cd "$TESTBED_DIR/go/agent-sandbox" && go_env && go mod download sigs.k8s.io/agent-sandbox) >&2 ||
      die "cannot download sigs.k8s.io/agent-sandbox@$AGENT_SANDBOX_VERSION"
  fi
  local marker="$TESTBED_RUN/crds-$AGENT_SANDBOX_VERSION"
  [[ -f "$marker" ]] && kubectl_admin get crd sandboxes.agents.x-k8s.io >/dev/null 2>&1 && return 0
  # Server-side apply (two CRDs exceed the client-side apply annotation limit).
  kubectl_admin apply --server-side --force-conflicts --field-manager=openshell-testbed -f "$dir" >&2
  # Conversion webhook: served by the agent-sandbox controller process on the host address with a
  # certificate from the test bed's server CA. The CRDs ship a Service reference; point them at
  # the URL instead (no Service/kube-proxy path needed, works in tier api too).
  local ca; ca=$(base64 -w0 <"$PKI/server-ca.crt")
  local crd
  for crd in sandboxes.agents.x-k8s.io sandboxclaims.extensions.agents.x-k8s.io \
             sandboxtemplates.extensions.agents.x-k8s.io sandboxwarmpools.extensions.agents.x-k8s.io; do
    kubectl_admin patch crd "$crd" --type=merge --field-manager=openshell-testbed-conversion -p \
      "{\"spec\":{\"conversion\":{\"strategy\":\"Webhook\",\"webhook\":{\"conversionReviewVersions\":[\"v1\",\"v1beta1\"],\"clientConfig\":{\"service\":null,\"url\":\"https://$TESTBED_HOST_IP:$AGENT_SANDBOX_WEBHOOK_PORT/convert\",\"caBundle\":\"$ca\"}}}}}" >&2
  done
  kubectl_admin wait --for=condition=Established --timeout=60s crd --all >&2
  touch "$marker"
}

start_agent_sandbox() {
  proc_alive agent-sandbox-controller && return 0
  kubectl_admin get ns agent-sandbox-system >/dev/null 2>&1 || kubectl_admin create ns agent-sandbox-system >&2
  start_proc agent-sandbox-controller "$(AGENT_SANDBOX_BIN)/agent-sandbox-controller" \
    --kubeconfig="$KCFG/admin.kubeconfig" \
    --leader-elect=false --extensions=true \
    --enable-webhook=true --manage-webhook-certs=false \
    --webhook-cert-dir="$PKI/webhook" --webhook-port="$AGENT_SANDBOX_WEBHOOK_PORT" \
    --metrics-bind-address="127.0.0.1:$AGENT_SANDBOX_METRICS_PORT" \
    --health-probe-bind-address="127.0.0.1:$AGENT_SANDBOX_HEALTH_PORT"
  wait_for agent-sandbox 60 curl -sf "http://127.0.0.1:$AGENT_SANDBOX_HEALTH_PORT/readyz" ||
    die "agent-sandbox-controller not ready (log: $LOGS/agent-sandbox-controller.log)"
  wait_for webhook 30 curl -s --cacert "$PKI/server-ca.crt" -o /dev/null -X POST \
    "https://$TESTBED_HOST_IP:$AGENT_SANDBOX_WEBHOOK_PORT/convert" ||
    log "warning: conversion webhook did not answer yet"
}

up_api() {
  need_bins "$(ETCD_BIN)/etcd" "$(KUBE_BIN)/kube-apiserver" "$(KUBE_BIN)/kube-controller-manager" \
    "$(KUBE_BIN)/kubectl" "$(AGENT_SANDBOX_BIN)/agent-sandbox-controller"
  mkdir -p "$TESTBED_STATE" "$TESTBED_RUN" "$LOGS"
  step setup_pki
  step setup_host_if
  step start_registries
  step start_etcd
  step start_apiserver
  step start_controller_manager
  step bind_kubelet_api_admin
  step install_crds
  step start_agent_sandbox
  wait_for default-sa 60 kubectl_admin -n default get sa default || die "default ServiceAccount not created"
}

# ---------------------------------------------------------------------------------------------
# Tier full: containerd, pause image, CNI, kubelet, kube-proxy, kube-scheduler
# ---------------------------------------------------------------------------------------------

# Host kernel settings the full tier changes; saved here and restored by `down`.
SAVED_SYSCTLS="net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes"

save_sysctls() {
  [[ -f "$TESTBED_RUN/sysctl.orig" ]] && return 0
  local k
  for k in $SAVED_SYSCTLS; do
    if [[ -e /proc/sys/${k//.//} ]]; then echo "$k=$(sysctl -n "$k")"; fi
  done >"$TESTBED_RUN/sysctl.orig"
}

restore_sysctls() {
  [[ -f "$TESTBED_RUN/sysctl.orig" ]] || return 0
  local line
  while IFS= read -r line; do sysctl -qw "$line" >/dev/null 2>&1 || true; done <"$TESTBED_RUN/sysctl.orig"
  rm -f "$TESTBED_RUN/sysctl.orig"
}

setup_node_network() {
  save_sysctls
  # Routed pod traffic (pod -> ClusterIP -> pod on the same bridge) needs forwarding; the guard
  # table below keeps anything from/to the pod network from leaving through another device.
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  nft -f - <<EOF
table inet openshell-testbed-guard
delete table inet openshell-testbed-guard
table inet openshell-testbed-guard {
  chain forward {
    type filter hook forward priority -10; policy accept;
    ip saddr $POD_CIDR oifname != "$CNI_BRIDGE" drop
    ip daddr $POD_CIDR iifname != "$CNI_BRIDGE" drop
  }
}
EOF
  mkdir -p "$CNI_CONF_DIR" "$CNI_DATA_DIR"
  cat >"$CNI_CONF_DIR/10-openshell-testbed.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NET_NAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_DATA_DIR",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "loopback"}
  ]
}
EOF
}

ctr_k8s() { ctr --address "$CTRD_SOCK" --namespace k8s.io "$@"; }

write_registry_hosts() {
  local certs="$TESTBED_STATE/containerd/certs.d"
  # Every other registry (ghcr.io, docker.io, ...) resolves to a closed loopback port: a pull of
  # an image that is not in a test bed registry fails fast with ErrImagePull ("connection
  # refused") and containerd never looks up or contacts a host off this machine.
  mkdir -p "$certs/_default"
  cat >"$certs/_default/hosts.toml" <<EOF
server = "https://127.0.0.1:9"

[host."https://127.0.0.1:9"]
  capabilities = ["pull", "resolve"]
EOF
  mkdir -p "$certs/127.0.0.1:$REGISTRY_PRIVATE_PORT" "$certs/127.0.0.1:$REGISTRY_PUBLIC_PORT"
  cat >"$certs/127.0.0.1:$REGISTRY_PRIVATE_PORT/hosts.toml" <<EOF
# containerd 1.6 needs a [host] table (a file without one fails with "invalid host tree");
# the top-level keys configure the fallback "server" entry the same way.
server = "https://127.0.0.1:$REGISTRY_PRIVATE_PORT"
ca = "$REG_DIR/ca.crt"

[host."https://127.0.0.1:$REGISTRY_PRIVATE_PORT"]
  capabilities = ["pull", "resolve"]
  ca = "$REG_DIR/ca.crt"
EOF
  cat >"$certs/127.0.0.1:$REGISTRY_PUBLIC_PORT/hosts.toml" <<EOF
server = "http://127.0.0.1:$REGISTRY_PUBLIC_PORT"

[host."http://127.0.0.1:$REGISTRY_PUBLIC_PORT"]
  capabilities = ["pull", "resolve"]
EOF
}

start_containerd() {
  write_registry_hosts
  proc_alive containerd && return 0
  mkdir -p "$CTRD_ROOT" "$CTRD_STATE" "$TESTBED_STATE/containerd/opt"
  local certs="$TESTBED_STATE/containerd/certs.d"
  cat >"$TESTBED_STATE/containerd/config.toml" <<EOF
version = 2
root = "$CTRD_ROOT"
state = "$CTRD_STATE"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_STATE/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$TESTBED_STATE/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  disable_apparmor = true
  # root here lacks CAP_SYS_RESOURCE (Firecracker sandbox): a negative oom_score_adj (kubelet asks
  # -998 for the pause container) makes runc init fail with "can't get final child's PID from
  # pipe: EOF". Clamp to containerd's own score (0) instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI_CONF_DIR"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$certs"
EOF
  start_proc containerd /usr/bin/containerd --config "$TESTBED_STATE/containerd/config.toml"
  wait_for containerd 30 ctr --address "$CTRD_SOCK" version || die "containerd not ready (log: $LOGS/containerd.log)"
}

# Whether containerd's k8s.io namespace holds the image. The listing is read in full before grep looks:
# with pipefail, `ctr ... | grep -q` fails at random when grep exits first and ctr gets SIGPIPE.
has_image() { local images; images=$(ctr_k8s images ls -q); grep -qxF -- "$1" <<<"$images"; }

pause_tar() { echo "$TESTBED_CACHE/images/pause-$(catatonit --version 2>/dev/null | awk '{print $NF}' | tr -cd 'a-zA-Z0-9._-').tar"; }

ensure_pause_image() {
  if has_image "$PAUSE_IMAGE"; then return 0; fi
  local tar; tar=$(pause_tar)
  if [[ ! -f "$tar" ]]; then
    log "building pause image $PAUSE_IMAGE from /usr/bin/catatonit (umoci)"
    local work; work=$(mktemp -d)
    mkdir -p "$(dirname "$tar")" "$work/rootfs"
    cp /usr/bin/catatonit "$work/rootfs/pause"
    "$TESTBED_DIR/image.sh" build --rootfs "$work/rootfs" --layout "$work/oci" --tag pause \
      --entrypoint /pause --entrypoint -P --user 65535:65535 >&2
    skopeo copy --quiet "oci:$work/oci:pause" "docker-archive:$tar.tmp:$PAUSE_IMAGE" >&2
    mv "$tar.tmp" "$tar"
    rm -rf "$work"
  fi
  ctr_k8s images import "$tar" >&2
  has_image "$PAUSE_IMAGE" || die "pause image import failed"
}

start_kubelet() {
  proc_alive kubelet && return 0
  mkdir -p "$KUBELET_ROOT" "$TESTBED_STATE/pod-logs"
  cat >"$TESTBED_STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 host: kubelet 1.35 refuses cgroup v1 unless this is false (config file only)
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CTRD_SOCK
address: $TESTBED_HOST_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/client-ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
failSwapOn: false
podLogsDir: $TESTBED_STATE/pod-logs
serializeImagePulls: false
# the pause image is imported, never pulled: keep image GC from deleting it
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
rotateCertificates: false
runtimeRequestTimeout: 2m
maxPods: 110
EOF
  start_proc kubelet "$(KUBE_BIN)/kubelet" \
    --config="$TESTBED_STATE/kubelet.yaml" --kubeconfig="$KCFG/kubelet.kubeconfig" \
    --root-dir="$KUBELET_ROOT" --cert-dir="$PKI/kubelet-generated" \
    --hostname-override="$NODE_NAME" --node-ip="$TESTBED_HOST_IP" --v=1
  wait_for kubelet 60 curl -sf "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" ||
    die "kubelet not healthy (log: $LOGS/kubelet.log)"
}

start_kube_proxy() {
  proc_alive kube-proxy && return 0
  cat >"$TESTBED_STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $KCFG/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: nftables
clusterCIDR: $POD_CIDR
nodePortAddresses: ["$TESTBED_HOST_IP/32"]
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start_proc kube-proxy "$(KUBE_BIN)/kube-proxy" --config="$TESTBED_STATE/kube-proxy.yaml" --v=1
  wait_for kube-proxy 60 curl -sf "http://127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT/healthz" ||
    die "kube-proxy not healthy (log: $LOGS/kube-proxy.log)"
}

start_scheduler() {
  proc_alive kube-scheduler && return 0
  cat >"$TESTBED_STATE/kube-scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: {kubeconfig: $KCFG/scheduler.kubeconfig}
leaderElection: {leaderElect: false}
EOF
  start_proc kube-scheduler "$(KUBE_BIN)/kube-scheduler" --config="$TESTBED_STATE/kube-scheduler.yaml" \
    --authentication-kubeconfig="$KCFG/scheduler.kubeconfig" --authorization-kubeconfig="$KCFG/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --cert-dir="$PKI/scheduler-generated" --v=1
  wait_for kube-scheduler 60 curl -skf "https://127.0.0.1:$SCHEDULER_PORT/healthz" ||
    die "kube-scheduler not healthy (log: $LOGS/kube-scheduler.log)"
}

node_ready() {
  [[ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

up_full() {
  need_bins "$(KUBE_BIN)/kubelet" "$(KUBE_BIN)/kube-proxy" "$(KUBE_BIN)/kube-scheduler"
  up_api
  step setup_node_network
  step start_containerd
  step ensure_pause_image
  step start_scheduler
  step start_kubelet # before kube-proxy: kube-proxy waits for its Node object
  step start_kube_proxy
  wait_for node 90 node_ready || die "node $NODE_NAME not Ready (log: $LOGS/kubelet.log)"
}

# ---------------------------------------------------------------------------------------------
# up / down / status / env
# ---------------------------------------------------------------------------------------------

API_COMPONENTS="registry-private registry-public etcd kube-apiserver kube-controller-manager agent-sandbox-controller"
FULL_COMPONENTS="$API_COMPONENTS containerd kube-scheduler kube-proxy kubelet"

running_tier() { # prints full|api|none
  local c ok=1
  for c in $FULL_COMPONENTS; do proc_alive "$c" || ok=0; done
  if ((ok)); then echo full; return; fi
  ok=1
  for c in $API_COMPONENTS; do proc_alive "$c" || ok=0; done
  if ((ok)); then echo api; else echo none; fi
}

write_info() { # tier
  local info="$TESTBED_STATE/testbed.json"
  cat >"$info.tmp" <<EOF
{
  "tier": "$1",
  "kubeconfig": "$ADMIN_KUBECONFIG",
  "kubectl": "$(KUBE_BIN)/kubectl",
  "apiServer": "https://$TESTBED_HOST_IP:$APISERVER_PORT",
  "nodeName": "$NODE_NAME",
  "hostIP": "$TESTBED_HOST_IP",
  "serviceCIDR": "$SERVICE_CIDR",
  "podCIDR": "$POD_CIDR",
  "registry": {
    "host": "127.0.0.1:$REGISTRY_PRIVATE_PORT",
    "user": "$REGISTRY_USER",
    "passwordFile": "$REG_DIR/password",
    "caPath": "$REG_DIR/ca.crt",
    "certDir": "$REG_DIR/trust",
    "publicHost": "127.0.0.1:$REGISTRY_PUBLIC_PORT"
  },
  "containerdSocket": "$CTRD_SOCK",
  "logs": "$LOGS"
}
EOF
  mv "$info.tmp" "$info"
}

cmd_up() {
  need_root
  local tier=${1:-api}
  [[ $tier == api || $tier == full ]] || die "unknown tier '$tier' (api|full)"
  mkdir -p "$TESTBED_RUN"
  exec 9>"$TESTBED_RUN/lock"
  flock -w 600 9 || die "another cluster.sh holds $TESTBED_RUN/lock"
  local cur t0=$SECONDS; cur=$(running_tier)
  if [[ $cur == full || $cur == "$tier" ]]; then
    log "reusing running cluster (tier $cur)"
    write_info "$cur"
    return 0
  fi
  log "starting tier $tier (running: $cur)"
  ensure_packages
  if [[ $tier == api ]]; then up_api; else up_full; fi
  write_info "$tier"
  echo "$tier" >"$TESTBED_RUN/tier"
  log "tier $tier up in $((SECONDS - t0))s; KUBECONFIG=$ADMIN_KUBECONFIG"
}

our_mounts() { # mount points under the test bed's directories, deepest first
  awk -v s="$TESTBED_STATE" -v r="$TESTBED_RUN" '
    index($2, s"/")==1 || $2==s || index($2, r"/")==1 || $2==r || $2 ~ /^\/run\/netns\/cni-/ {print $2}' /proc/mounts |
    sed 's/\\040/ /g' | awk '{print length($0) " " $0}' | sort -rn | cut -d' ' -f2-
}

our_shims() { # containerd shims of our containerd (they outlive containerd by design)
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- "containerd-shim.*-address $CTRD_SOCK" && echo "${p#/proc/}"
  done
  return 0
}

cmd_down() {
  need_root
  mkdir -p "$TESTBED_RUN"
  exec 9>"$TESTBED_RUN/lock"
  flock -w 600 9 || die "another cluster.sh holds $TESTBED_RUN/lock"
  local t0=$SECONDS c
  stop_many agent-sandbox-controller kube-scheduler kube-controller-manager kube-proxy kubelet
  # containers: kill every task of our containerd, then containerd itself, then leftover shims
  if proc_alive containerd; then
    local id
    for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 & done
    wait
    for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$id" >/dev/null 2>&1 & done
    wait
    for id in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$id" >/dev/null 2>&1 & done
    wait
  fi
  stop_proc containerd
  local pid
  for pid in $(our_shims); do kill -KILL "$pid" 2>/dev/null || true; done
  # processes still in the kubepods cgroups (containers whose shim is gone)
  local cg
  for cg in /sys/fs/cgroup/*/kubepods; do
    [[ -d $cg ]] || continue
    find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  done
  stop_many kube-apiserver registry-private registry-public
  stop_proc etcd
  # mounts (pod volumes, container rootfs, sandbox shm, netns bind mounts)
  local m
  while IFS= read -r m; do [[ -n $m ]] && umount -l "$m" 2>/dev/null || true; done < <(our_mounts)
  # network namespaces made by the CNI setup of our containerd
  for m in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns delete "$m" 2>/dev/null || true; done
  rm -f /run/netns/cni-* 2>/dev/null || true
  # devices (veths die with their namespaces), nftables tables, kubelet iptables canaries
  ip link show "$CNI_BRIDGE" >/dev/null 2>&1 && ip link delete "$CNI_BRIDGE"
  ip link show "$TESTBED_HOST_IF" >/dev/null 2>&1 && ip link delete "$TESTBED_HOST_IF"
  nft delete table inet openshell-testbed-guard 2>/dev/null || true
  nft delete table ip kube-proxy 2>/dev/null || true
  nft delete table ip6 kube-proxy 2>/dev/null || true
  local ipt t
  for ipt in iptables ip6tables; do
    command -v $ipt-save >/dev/null || continue
    for t in mangle nat filter; do
      for c in $($ipt-save -t $t 2>/dev/null | sed -n 's/^:\(KUBE-[A-Z0-9-]*\) .*/\1/p'); do
        $ipt -w -t $t -F "$c" 2>/dev/null || true
      done
      for c in $($ipt-save -t $t 2>/dev/null | sed -n 's/^:\(KUBE-[A-Z0-9-]*\) .*/\1/p'); do
        $ipt -w -t $t -X "$c" 2>/dev/null || true
      done
    done
  done
  # empty kubepods cgroups (deepest first)
  for cg in /sys/fs/cgroup/*/kubepods; do
    [[ -d $cg ]] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  restore_sysctls
  # cluster state is per run: etcd data, kubelet state, CNI allocations, container metadata.
  # Kept: PKI, registry (CA, password, pushed images), containerd image content.
  rm -rf "$TESTBED_STATE/etcd" "$KUBELET_ROOT" "$CNI_DATA_DIR" "$TESTBED_STATE/pod-logs" "$CTRD_STATE"
  # libcni result cache (/var/lib/cni/results, fixed path) of our sandboxes, the kubelet's
  # /var/log/containers links into our pod log dir, and the device-plugin dir it always creates
  local f
  for f in "$CTRD_ROOT"/io.containerd.grpc.v1.cri/sandboxes/*; do
    if [[ -d $f ]]; then rm -f /var/lib/cni/results/*-"$(basename "$f")"-* 2>/dev/null || true; fi
  done
  rm -f /var/lib/cni/results/"$CNI_NET_NAME"-* 2>/dev/null || true
  for f in /var/log/containers/*.log; do
    if [[ -L $f && $(readlink "$f") == "$TESTBED_STATE/"* ]]; then rm -f "$f"; fi
  done
  rm -f /var/lib/kubelet/device-plugins/kubelet.sock
  rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null || true
  rm -f "$TESTBED_RUN"/crds-* "$TESTBED_RUN/tier" "$TESTBED_STATE/testbed.json"
  if [[ ${1:-} == --purge ]]; then
    rm -rf "$TESTBED_STATE"
  fi
  log "down in $((SECONDS - t0))s"
  cmd_check_clean
}

cmd_check_clean() {
  local bad=0 c p
  for c in $FULL_COMPONENTS; do
    if proc_alive "$c"; then log "left: process $c (pid $(<"$(pidfile "$c")"))"; bad=1; fi
  done
  for p in /proc/[0-9]*; do
    local cl; cl=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    [[ ${p#/proc/} == "$$" || ${p#/proc/} == "$BASHPID" ]] && continue
    case "$cl" in
      *cluster.sh* | *" build "* | *"/link "* | *"/compile "*) continue ;;
      "$TESTBED_CACHE/bin/"* | *"$TESTBED_STATE/"* | *"$CTRD_SOCK"*)
        log "left: process ${p#/proc/}: ${cl:0:160}"; bad=1 ;;
    esac
  done
  local m; m=$(our_mounts)
  if [[ -n $m ]]; then log "left: mounts: $(echo "$m" | tr '\n' ' ')"; bad=1; fi
  local ns; ns=$(ip netns list 2>/dev/null | awk '/^cni-/{print $1}' | tr '\n' ' ')
  if [[ -n $ns ]]; then log "left: network namespaces: $ns"; bad=1; fi
  local dev; dev=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 |
    grep -E "^($TESTBED_HOST_IF|$CNI_BRIDGE|veth.*)$" | tr '\n' ' ' || true)
  if [[ -n $dev ]]; then log "left: network devices: $dev"; bad=1; fi
  local tbl; tbl=$(nft list tables 2>/dev/null | grep -E 'kube-proxy|openshell-testbed' | tr '\n' ' ' || true)
  if [[ -n $tbl ]]; then log "left: nftables tables: $tbl"; bad=1; fi
  if ((bad)); then log "check-clean: FAILED"; return 1; fi
  log "check-clean: no process, mount, network namespace, device or nftables table left"
}

component_health() { # name -> ok/down
  proc_alive "$1" && echo "running (pid $(<"$(pidfile "$1")"))" || echo "not running"
}

cmd_status() {
  local tier c; tier=$(running_tier)
  echo "tier: $tier"
  for c in $FULL_COMPONENTS; do printf '  %-26s %s\n' "$c" "$(component_health "$c")"; done
  echo "kubeconfig: $ADMIN_KUBECONFIG"
  echo "logs: $LOGS"
  if [[ $tier != none ]]; then
    kubectl_admin get --raw /readyz >/dev/null 2>&1 && echo "apiserver: ready" || echo "apiserver: NOT ready"
    [[ $tier == full ]] && { kubectl_admin get nodes -o wide 2>/dev/null || true; }
    return 0
  fi
  return 1
}

cmd_env() {
  echo "export KUBECONFIG=$ADMIN_KUBECONFIG"
  echo "export TESTBED_STATE=$TESTBED_STATE"
  echo "export TESTBED_CACHE=$TESTBED_CACHE"
  echo "export TESTBED_KUBECTL=$(KUBE_BIN)/kubectl"
  echo "export TESTBED_HELM=$(HELM_BIN)/helm"
  echo "export TESTBED_HELM_UNITTEST=$(HELM_UNITTEST_BIN)/helm-unittest"
  echo "export TESTBED_REGISTRY=127.0.0.1:$REGISTRY_PRIVATE_PORT"
  echo "export TESTBED_REGISTRY_USER=$REGISTRY_USER"
  echo "export TESTBED_REGISTRY_PASSWORD_FILE=$REG_DIR/password"
  echo "export TESTBED_REGISTRY_CA=$REG_DIR/ca.crt"
  echo "export TESTBED_PUBLIC_REGISTRY=127.0.0.1:$REGISTRY_PUBLIC_PORT"
  echo "export PATH=$TESTBED_CACHE/bin/current:\$PATH"
}

main() {
  local cmd=${1:-}; shift || true
  case "$cmd" in
    build) cmd_build "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    check-clean) cmd_check_clean "$@" ;;
    *) echo "usage: $0 build|up [api|full]|down [--purge]|status|env|check-clean" >&2; exit 2 ;;
  esac
}
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main "$@"; fi
