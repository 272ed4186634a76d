#!/usr/bin/env bash
# Builds the container-function images from local files and Debian packages
# only (no registry is needed or used):
#   edgeless-python-rootfs:bookworm  python3 + python3-grpcio, a Debian root
#                                    file system assembled with mmdebstrap
#   edgeless-python:latest           + the Python SDK; runs the python310
#                                    runtime (a Serverledge-style handler)
#   edgeless-double-py:latest        examples/container/double.py
#   edgeless-double-go:latest        examples/container/double_go, FROM scratch
#   edgeless-testfn-py:latest        container/testdata/testfn.py, for the tests
# Without a Docker daemon it says so and succeeds, unless CI=true.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
SUITE=${SUITE:-bookworm}

if ! docker info >/dev/null 2>&1; then
	if [ "${CI:-}" = true ]; then
		echo "images: no Docker daemon answers, and CI needs one" >&2
		exit 1
	fi
	echo "images: no Docker daemon answers; skipping the container images"
	exit 0
fi

# The legacy builder needs nothing but the daemon: BuildKit may be absent.
build() {
	local out
	if ! out=$(DOCKER_BUILDKIT=0 docker build -q "$@" 2>&1); then
		echo "$out" >&2
		return 1
	fi
}

if ! docker image inspect edgeless-python-rootfs:$SUITE >/dev/null 2>&1; then
	if ! command -v mmdebstrap >/dev/null; then
		if [ "$(id -u)" -eq 0 ]; then run=; else run=sudo; fi
		$run env DEBIAN_FRONTEND=noninteractive apt-get update -q
		$run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap
	fi
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	# extract: the packages and their dependencies unpacked, no maintainer
	# scripts, no shell, no package manager.
	mmdebstrap --quiet --variant=extract --include=python3-minimal,libpython3.11-stdlib,python3-grpcio \
		"$SUITE" "$tmp/rootfs.tar"
	mkdir "$tmp/root"
	tar -xf "$tmp/rootfs.tar" -C "$tmp/root"
	rm -rf "$tmp/root"/usr/share/{doc,man,info,locale,lintian} "$tmp/root"/var/cache/* "$tmp/root"/var/lib/apt/lists/* \
		"$tmp/root"/usr/lib/python3.11/{ensurepip,idlelib,lib2to3,tkinter,turtledemo,pydoc_data}
	# Byte-compiled once here: a container compiling its imports at every
	# start would add that to each cold start.
	chroot "$tmp/root" /usr/bin/python3 -m compileall -q -j 0 /usr/lib/python3.11 /usr/lib/python3/dist-packages >/dev/null || true
	tar -C "$tmp/root" -cf - . | docker import \
		--change 'ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1' \
		--change 'USER 65534:65534' \
		- edgeless-python-rootfs:$SUITE >/dev/null
fi

build -t edgeless-python:latest --build-arg SUITE="$SUITE" -f container/images/python.Dockerfile container/sdk/python
build -t edgeless-double-py:latest -f container/images/function.Dockerfile --build-arg FILE=double.py examples/container
build -t edgeless-testfn-py:latest -f container/images/function.Dockerfile --build-arg FILE=testfn.py container/testdata

gotmp=$(mktemp -d)
CGO_ENABLED=0 $GO build -trimpath -ldflags='-s -w' -o "$gotmp/function" ./examples/container/double_go
build -t edgeless-double-go:latest -f "$PWD/container/images/go.Dockerfile" "$gotmp"
rm -rf "$gotmp"

docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^edgeless-(python|double|testfn)' | sort
