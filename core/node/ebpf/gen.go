package ebpf

// The BPF programs are compiled ahead of time so that building the node needs
// no C toolchain: probes_bpfel.{go,o} and probes_bpfeb.{go,o} are generated
// from bpf/probes.c and committed. After changing bpf/probes.c, regenerate them
// with clang 14 or newer on the PATH:
//
//	go generate ./core/node/ebpf/
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror" -type stats probes bpf/probes.c
