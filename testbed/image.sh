#!/usr/bin/env bash
# Build OCI images without a Docker engine (umoci) and push them with skopeo.
#
#   image.sh build --rootfs DIR --layout DIR --tag TAG [--entrypoint ARG]... [--cmd ARG]...
#                  [--user UID[:GID]] [--env K=V]... [--workdir DIR] [--label K=V]...
#       Make (or replace) TAG in the OCI layout DIR from the root filesystem DIR (one layer).
#
#   image.sh push --layout DIR --tag TAG --dest HOST:PORT/NAME:TAG [--public]
#       Push to the test bed's private registry (TLS + htpasswd credentials from TESTBED_STATE),
#       or with --public to the unauthenticated one.
#
#   image.sh build-push --rootfs DIR --image NAME:TAG [build options] [--public]
#       build into a temporary layout and push to 127.0.0.1:<port>/NAME:TAG; prints the reference.
#
#   image.sh sandbox [--image NAME:TAG] [--public]
#       The test sandbox image: busybox-static (/bin/sh and applets) with a long-running default
#       command that exits on SIGTERM. Default NAME:TAG openshell-test/sandbox:busybox.
#
# Prints the pushed reference (HOST:PORT/NAME:TAG) on stdout.
set -euo pipefail

TESTBED_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$TESTBED_DIR/versions.env"
TESTBED_STATE="${TESTBED_STATE:-/var/lib/openshell-testbed}"
REG_DIR="$TESTBED_STATE/registry"

die() { echo "image.sh: $*" >&2; exit 1; }

build() {
  local rootfs="" layout="" tag="" user="" workdir=""
  local -a entry=() cmd=() env=() labels=()
  while (($#)); do
    case "$1" in
      --rootfs) rootfs=$2; shift 2 ;;
      --layout) layout=$2; shift 2 ;;
      --tag) tag=$2; shift 2 ;;
      --entrypoint) entry+=("$2"); shift 2 ;;
      --cmd) cmd+=("$2"); shift 2 ;;
      --user) user=$2; shift 2 ;;
      --env) env+=("$2"); shift 2 ;;
      --workdir) workdir=$2; shift 2 ;;
      --label) labels+=("$2"); shift 2 ;;
      *) die "build: unknown option $1" ;;
    esac
  done
  [[ -d $rootfs && -n $layout && -n $tag ]] || die "build: --rootfs DIR, --layout DIR and --tag TAG are required"
  [[ -d $layout ]] || umoci init --layout "$layout"
  umoci rm --image "$layout:$tag" >/dev/null 2>&1 || true
  umoci new --image "$layout:$tag"
  # one layer with the whole root filesystem (unpack + copy + repack keeps owners and modes)
  local bundle; bundle=$(mktemp -d)
  umoci unpack --image "$layout:$tag" "$bundle/b" >/dev/null
  cp -a "$rootfs/." "$bundle/b/rootfs/"
  umoci repack --image "$layout:$tag" "$bundle/b"
  rm -rf "$bundle"
  local -a cfg=(--clear=config.entrypoint --clear=config.cmd)
  local a
  for a in "${entry[@]}"; do cfg+=(--config.entrypoint "$a"); done
  for a in "${cmd[@]}"; do cfg+=(--config.cmd "$a"); done
  for a in "${env[@]}"; do cfg+=(--config.env "$a"); done
  for a in "${labels[@]}"; do cfg+=(--config.label "$a"); done
  [[ -n $user ]] && cfg+=(--config.user "$user")
  [[ -n $workdir ]] && cfg+=(--config.workingdir "$workdir")
  umoci config --image "$layout:$tag" --os linux --architecture amd64 "${cfg[@]}"
  umoci gc --layout "$layout"
}

push() {
  local layout="" tag="" dest="" public=0
  while (($#)); do
    case "$1" in
      --layout) layout=$2; shift 2 ;;
      --tag) tag=$2; shift 2 ;;
      --dest) dest=$2; shift 2 ;;
      --public) public=1; shift ;;
      *) die "push: unknown option $1" ;;
    esac
  done
  [[ -n $layout && -n $tag && -n $dest ]] || die "push: --layout, --tag and --dest are required"
  if ((public)); then
    skopeo copy --quiet --dest-tls-verify=false "oci:$layout:$tag" "docker://$dest" >&2
  else
    [[ -f $REG_DIR/password ]] || die "no registry credentials in $REG_DIR (run cluster.sh up first)"
    skopeo copy --quiet --dest-cert-dir "$REG_DIR/trust" \
      --dest-creds "$(<"$REG_DIR/user"):$(<"$REG_DIR/password")" "oci:$layout:$tag" "docker://$dest" >&2
  fi
  echo "$dest"
}

build_push() {
  local image="" public=0
  local -a rest=()
  while (($#)); do
    case "$1" in
      --image) image=$2; shift 2 ;;
      --public) public=1; shift ;;
      *) rest+=("$1"); shift ;;
    esac
  done
  [[ $image == *:* ]] || die "build-push: --image NAME:TAG is required"
  local work; work=$(mktemp -d)
  build --layout "$work/oci" --tag img "${rest[@]}" >&2
  local host="127.0.0.1:$REGISTRY_PRIVATE_PORT" p=() rc=0
  if ((public)); then host="127.0.0.1:$REGISTRY_PUBLIC_PORT"; p=(--public); fi
  push --layout "$work/oci" --tag img --dest "$host/$image" ${p[@]+"${p[@]}"} || rc=$?
  rm -rf "$work"
  return $rc
}

sandbox() {
  local image="openshell-test/sandbox:busybox" p=()
  while (($#)); do
    case "$1" in
      --image) image=$2; shift 2 ;;
      --public) p=(--public); shift ;;
      *) die "sandbox: unknown option $1" ;;
    esac
  done
  local root; root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root" "$root/sandbox"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do [[ -e $root/bin/$a ]] || ln -s busybox "$root/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nsandbox:x:1000:1000:sandbox:/sandbox:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nsandbox:x:1000:\nnobody:x:65534:\n' >"$root/etc/group"
  chown 1000:1000 "$root/sandbox"
  build_push --image "$image" --rootfs "$root" --env PATH=/bin --workdir / \
    --entrypoint /bin/sh --entrypoint -c \
    --entrypoint 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done' ${p[@]+"${p[@]}"} || {
    rm -rf "$root"; return 1; }
  rm -rf "$root"
}

case "${1:-}" in
  build) shift; build "$@" ;;
  push) shift; push "$@" ;;
  build-push) shift; build_push "$@" ;;
  sandbox) shift; sandbox "$@" ;;
  *) sed -n '2,22p' "$0" >&2; exit 2 ;;
esac
