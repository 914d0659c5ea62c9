#!/usr/bin/env bash
# The main job, end to end: a gateway on a real cluster creates a sandbox from an image in an
# authenticated private registry (pulled with the configured pull secret), runs a command in it,
# and shows the result. Uses $KUBECONFIG when it points at a reachable cluster (then DEMO_IMAGE and
# a pull secret named by DEMO_PULL_SECRET in DEMO_NAMESPACE must exist); otherwise brings up the
# local test bed (testbed/cluster.sh up full) and its private registry.
#
#   bash scripts/demo.sh          # run the demo (leaves the gateway running)
#   bash scripts/demo.sh clean    # stop the demo gateway and delete its namespace
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${DEMO_STATE:-$ROOT/build/demo}"
NAMESPACE="${DEMO_NAMESPACE:-openshell-demo}"
SECRET="${DEMO_PULL_SECRET:-demo-registry}"
PORT="${DEMO_PORT:-28080}"
HEALTH_PORT="${DEMO_HEALTH_PORT:-28081}"
export XDG_CONFIG_HOME="$STATE/config"

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
kubectl() { "${TESTBED_KUBECTL:-kubectl}" "$@"; }

stop_gateway() {
  if [[ -f "$STATE/gateway.pid" ]] && kill -0 "$(cat "$STATE/gateway.pid")" 2>/dev/null; then
    kill -TERM "$(cat "$STATE/gateway.pid")"
    for _ in $(seq 50); do kill -0 "$(cat "$STATE/gateway.pid")" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$STATE/gateway.pid"
}

if [[ "${1:-}" == "clean" ]]; then
  [[ -f "$STATE/env" ]] && source "$STATE/env"
  stop_gateway
  kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$STATE"
  echo "demo cleaned up (the test bed is still running: make cluster-down stops it)"
  exit 0
fi

mkdir -p "$STATE"
if [[ -n "${KUBECONFIG:-}" ]] && kubectl version --request-timeout=5s >/dev/null 2>&1; then
  say "using the cluster in \$KUBECONFIG ($KUBECONFIG)"
  : "${DEMO_IMAGE:?set DEMO_IMAGE to a private image the pull secret $SECRET in $NAMESPACE can pull}"
  IMAGE="$DEMO_IMAGE"
else
  say "no cluster configured: starting the local test bed (Kubernetes from upstream sources + a private TLS registry)"
  bash "$ROOT/testbed/cluster.sh" up full
  source <(bash "$ROOT/testbed/cluster.sh" env)
  say "pushing the sandbox image to the authenticated registry $TESTBED_REGISTRY"
  IMAGE="$(bash "$ROOT/testbed/image.sh" sandbox --image openshell-demo/sandbox:demo | tail -n 1)"
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl -n "$NAMESPACE" create secret docker-registry "$SECRET" \
    --docker-server="$TESTBED_REGISTRY" --docker-username="$TESTBED_REGISTRY_USER" \
    --docker-password="$(cat "$TESTBED_REGISTRY_PASSWORD_FILE")" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  echo "image $IMAGE; pull secret $SECRET in namespace $NAMESPACE"
fi
declare -p KUBECONFIG TESTBED_KUBECTL 2>/dev/null | sed 's/^declare -x/export/' > "$STATE/env" || true

say "starting openshell-gateway (token auth on loopback; TLS off for the demo only)"
stop_gateway
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$STATE/token"
chmod 600 "$STATE/token"
"$ROOT/bin/openshell-gateway" --disable-tls --bind-address 127.0.0.1 --port "$PORT" --health-port "$HEALTH_PORT" \
  --auth-token-file "$STATE/token" --data-dir "$STATE/data" --kubeconfig "$KUBECONFIG" \
  --sandbox-namespace "$NAMESPACE" --sandbox-image-pull-secrets "$SECRET" --sandbox-image "$IMAGE" \
  > "$STATE/gateway.log" 2>&1 &
echo $! > "$STATE/gateway.pid"
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$STATE/gateway.pid")" 2>/dev/null || { cat "$STATE/gateway.log"; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$HEALTH_PORT/readyz"

openshell() { "$ROOT/bin/openshell" "$@"; }
openshell gateway add demo --url "http://127.0.0.1:$PORT" --token-file "$STATE/token" >/dev/null
openshell gateway use demo >/dev/null

say "openshell sandbox create --name demo --image $IMAGE"
openshell sandbox delete demo --ignore-not-found --wait >/dev/null
openshell sandbox create --name demo --image "$IMAGE" --env GREETING=hello

say "openshell sandbox exec demo -- sh -c 'echo \$GREETING from \$OPENSHELL_SANDBOX; uname -a'"
openshell sandbox exec demo -- sh -c 'echo "$GREETING from $OPENSHELL_SANDBOX"; uname -a'

say "openshell sandbox list"
openshell sandbox list

say "the pod pulled with the configured secret:"
kubectl -n "$NAMESPACE" get pod demo -o jsonpath='{.spec.imagePullSecrets}{"\n"}{.status.containerStatuses[0].imageID}{"\n"}'

cat <<EOF

Done. The gateway keeps running on http://127.0.0.1:$PORT (log: $STATE/gateway.log).
Try:   XDG_CONFIG_HOME=$XDG_CONFIG_HOME bin/openshell sandbox list
Clean: bash scripts/demo.sh clean        (gateway and namespace)
       make cluster-down                 (the local test bed)
EOF
