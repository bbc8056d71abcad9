#!/usr/bin/env bash
# Builds Contingency's image with podman from this repository's Dockerfile, on a Debian 12 machine with the Swift
# toolchain (where Docker and a registry are at hand, `docker build -t contingency:0.1.0 .` does it all instead).
#
#   scripts/build-image.sh [--tag contingency:0.1.0] [--storage DIR] [--example-images] [--save FILE]
#
# The Dockerfile runs as written, with BINARIES=prebuilt: the executables are built here first (release, static
# Swift standard library, into .build-release) and copied into the runtime stage, instead of being compiled in the
# build stage, because the build stage's swift:6.2-bookworm image comes from a registry this machine may not reach
# and compiling again in a container would double the build's time. The runtime stage installs its packages with
# apt-get as the Dockerfile says (the build uses the host's network). Its FROM image, debian:bookworm-slim, is made
# with mmdebstrap from Debian's packages when podman does not have it.
#
#   --storage DIR      podman's storage (vfs) and configuration in DIR instead of the host's default podman
#   --example-images   also the compose example's other images: its stand-in app (contingency-example-app:1 and
#                      its broken release :2-broken), and stand-ins for postgres:15 and nginx:stable built from
#                      Debian's packages (Tests/Support/images), for machines that reach no registry
#   --save FILE        all the images built, in one archive for `podman load` (what the tests load)
# Nothing is rebuilt when the inputs are those of the last build with the same options.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="contingency:0.1.0"
storage=""
example=false
save=""
while (($#)); do
    case "$1" in
        --tag) tag="$2"; shift 2 ;;
        --storage) storage="$2"; shift 2 ;;
        --example-images) example=true; shift ;;
        --save) save="$2"; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-image.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for tool in podman mmdebstrap swift; do
    command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done

podman_options=()
if [ -n "$storage" ]; then
    mkdir -p "$storage"
    storage="$(cd "$storage" && pwd)"
    # runc and cgroupfs, the rlimits inherited, file locks: what podman needs in containers and sandboxes.
    cat >"$storage/containers.conf" <<EOF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
EOF
    export CONTAINERS_CONF="$storage/containers.conf"
    podman_options=(--root "$storage/root" --runroot "$storage/run" --tmpdir "$storage/tmp" --storage-driver vfs)
fi
pod() { podman "${podman_options[@]}" "$@"; }

echo "Building the executables (release, static Swift standard library)..."
products=(backup-job restore-job cleanup-job health-sidecar contingency-guard)
log="$(mktemp)"
for product in "${products[@]}"; do
    # One product per call: `swift build` builds only the last of several --product options.
    if ! swift build -c release --static-swift-stdlib --scratch-path .build-release --product "$product" >"$log" 2>&1; then
        cat "$log"
        rm -f "$log"
        exit 1
    fi
done
rm -f "$log"
bin="$(swift build -c release --static-swift-stdlib --scratch-path .build-release --show-bin-path)"
mkdir -p .build-image/bin
# The folder is the image's /usr/local/bin: nothing but this build's executables.
for file in .build-image/bin/*; do
    [ -e "$file" ] || continue
    case " ${products[*]} " in *" $(basename "$file") "*) ;; *) rm -f "$file" ;; esac
done
for product in "${products[@]}"; do
    [ -x "$bin/$product" ] || { echo "build-image.sh: $bin/$product was not built" >&2; exit 1; }
    # Without their symbol tables (a third of their size); a crash's backtrace still names Swift functions.
    strip --strip-unneeded -o ".build-image/bin/$product.new" "$bin/$product"
    if cmp -s ".build-image/bin/$product.new" ".build-image/bin/$product"; then
        rm ".build-image/bin/$product.new"
    else
        mv ".build-image/bin/$product.new" ".build-image/bin/$product"
    fi
done

stamp_inputs() {
    sha256sum .build-image/bin/* Dockerfile .dockerignore
    if $example; then sha256sum deploy/compose/app/* Tests/Support/images/*/*; fi
    echo "tag=$tag example=$example save=$save"
}
stamp=".build-image/stamp-$(echo "${storage:-default}-$tag-$example" | sha256sum | cut -c1-12)"
current="$(stamp_inputs | sha256sum | cut -c1-64)"
all_images=("$tag")
if $example; then
    all_images+=(contingency-example-app:1 contingency-example-app:2-broken docker.io/library/postgres:15 docker.io/library/nginx:stable)
fi
images_exist() {
    local image
    for image in "${all_images[@]}"; do pod image exists "$image" || return 1; done
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$current" ] && images_exist && { [ -z "$save" ] || [ -s "$save" ]; }; then
    echo "The image $tag is up to date."
    exit 0
fi

if ! pod image exists docker.io/library/debian:bookworm-slim; then
    echo "Making debian:bookworm-slim from Debian's packages (mmdebstrap)..."
    rootfs="$(mktemp --suffix=.tar)"
    trap 'rm -f "$rootfs"' EXIT
    mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$rootfs"
    pod import --quiet --change 'CMD ["bash"]' "$rootfs" docker.io/library/debian:bookworm-slim >/dev/null
    rm -f "$rootfs"
fi

build() { # tag, context, extra arguments
    local image="$1" context="$2"
    shift 2
    echo "Building $image..."
    # --format docker keeps HEALTHCHECK (the OCI format has no such field); --network host: apt-get reaches
    # the host's Debian mirror.
    local log
    log="$(mktemp)"
    if ! pod build --format docker --network host --tag "$image" "$@" "$context" >"$log" 2>&1; then
        cat "$log"
        rm -f "$log"
        echo "build-image.sh: building $image failed" >&2
        exit 1
    fi
    rm -f "$log"
}
build "$tag" . --build-arg BINARIES=prebuilt --build-arg VERSION="${tag##*:}"
if $example; then
    build contingency-example-app:1 deploy/compose/app
    build contingency-example-app:2-broken deploy/compose/app --build-arg STARTUP_SQL="DROP TABLE users"
    build docker.io/library/postgres:15 Tests/Support/images/postgres
    build docker.io/library/nginx:stable Tests/Support/images/nginx
fi
images=("${all_images[@]}")
if [ -n "$save" ]; then
    echo "Saving ${images[*]} to $save..."
    rm -f "$save.tmp"
    pod save --quiet --multi-image-archive --output "$save.tmp" "${images[@]}"
    mv "$save.tmp" "$save"
fi
echo "$current" >"$stamp"
echo "Built $tag ($(pod image inspect --format '{{.Size}}' "$tag" | numfmt --to=iec) ): run one role per container, e.g."
echo "  podman run --rm $tag backup-job --help"
