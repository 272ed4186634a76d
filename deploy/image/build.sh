#!/usr/bin/env bash
# Builds the images of a deployment from local files only (no registry):
#   edgeless:latest        the edgeless binary and the C libraries it links,
#                          FROM scratch; runs as uid 65532 in /data; the mode
#                          is the command (con, orc, node, inabox)
#   edgeless-redis:latest  the host's redis-server and its libraries, for the
#                          compose cluster and the multi-host tests
# Each root file system is assembled here from the binary and what ldd says
# it loads, then built FROM scratch with Docker's legacy builder (no BuildKit
# or registry needed). Without a Docker daemon it says so and succeeds,
# unless CI=true.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}

if ! docker info >/dev/null 2>&1; then
	if [ "${CI:-}" = true ]; then
		echo "images: no Docker daemon answers, and CI needs one" >&2
		exit 1
	fi
	echo "images: no Docker daemon answers; skipping the edgeless images"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# build runs Docker's legacy builder quietly, showing its output on failure.
build() {
	local out
	if ! out=$(DOCKER_BUILDKIT=0 docker build -q "$@" 2>&1); then
		echo "$out" >&2
		return 1
	fi
}

# rootfs DIR BINARY DEST: copies BINARY to DEST under DIR with every shared
# library it loads, at the same paths, and the files a non-root process needs.
rootfs() {
	local dir=$1 bin=$2 dest=$3
	mkdir -p "$dir$(dirname "$dest")" "$dir/etc" "$dir/data" "$dir/tmp"
	# Writable by whichever user a deployment runs the container as (the
	# owner of mounted keys, say); the image's own user owns them.
	chmod 1777 "$dir/data" "$dir/tmp"
	cp "$bin" "$dir$dest"
	ldd "$bin" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
		mkdir -p "$dir$(dirname "$lib")"
		cp -L "$lib" "$dir$lib"
	done
	printf 'root:x:0:0::/:/sbin/nologin\nedgeless:x:65532:65532::/data:/sbin/nologin\n' >"$dir/etc/passwd"
	printf 'root:x:0:\nedgeless:x:65532:\n' >"$dir/etc/group"
	printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
}

# The version goes into the binary as `make build` puts it.
version=$(git describe --always --dirty 2>/dev/null || echo dev)
$GO build -trimpath -ldflags "-s -w -X main.version=$version" -o "$tmp/edgeless" .
rootfs "$tmp/edgeless-root" "$tmp/edgeless" /usr/local/bin/edgeless
build -t edgeless:latest -f deploy/image/edgeless.Dockerfile "$tmp/edgeless-root"

redis=$(command -v redis-server || true)
if [ -z "$redis" ]; then
	echo "images: redis-server is not installed (make test-deps installs it)" >&2
	exit 1
fi
rootfs "$tmp/redis-root" "$redis" /usr/local/bin/redis-server
build -t edgeless-redis:latest -f deploy/image/redis.Dockerfile "$tmp/redis-root"

docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^edgeless(-redis)?:latest ' | sort
