#!/bin/sh
# Installs what the C functions need to build for wasm32 on Debian/Ubuntu:
# clang, wasm-ld (lld), wasi-libc and the wasm32 compiler-rt builtins.
# Idempotent: when everything is present it changes nothing.
set -eu

CLANG=${CLANG:-clang}
TARGET=${WASM_TARGET:-wasm32-wasi}
PACKAGES="clang lld wasi-libc libclang-rt-14-dev-wasm32"

missing=""
if ! command -v "$CLANG" >/dev/null 2>&1; then
	missing="$missing clang"
else
	# clang prints the bare name when it cannot find the file in its sysroot.
	libc=$("$CLANG" --target="$TARGET" -print-file-name=libc.a)
	[ -f "$libc" ] || missing="$missing wasi-libc"
	rt=$("$CLANG" --target="$TARGET" -print-libgcc-file-name)
	[ -f "$rt" ] || missing="$missing compiler-rt-wasm32"
fi
command -v wasm-ld >/dev/null 2>&1 || missing="$missing wasm-ld"

if [ -z "$missing" ]; then
	echo "install-deps: clang, wasm-ld, wasi-libc and wasm32 compiler-rt are present"
	exit 0
fi
echo "install-deps: missing:$missing; installing $PACKAGES"

if [ "$(id -u)" -eq 0 ]; then
	run() { "$@"; }
elif command -v sudo >/dev/null 2>&1; then
	run() { sudo "$@"; }
else
	echo "install-deps: not root and sudo is not available; install as root: apt-get install -y $PACKAGES" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: apt-get not found; install the equivalents of: $PACKAGES" >&2
	exit 1
fi

# sudo drops most of the environment, so pass the setting as an argument.
run env DEBIAN_FRONTEND=noninteractive apt-get update
# shellcheck disable=SC2086 # the package list is meant to split into words
run env DEBIAN_FRONTEND=noninteractive apt-get install -y $PACKAGES
