/* kernel.h declares the few kernel types, map definitions and helpers the
 * probes use. It stands in for vmlinux.h and libbpf's headers: the structs are
 * marked preserve_access_index, so only the fields named here are read, and
 * their offsets are relocated against the running kernel's BTF at load time
 * (CO-RE). Helper numbers are the stable values of enum bpf_func_id. */
#ifndef EDGELESS_KERNEL_H
#define EDGELESS_KERNEL_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
};

enum {
	BPF_ANY = 0,
};

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

/* skc_dport and skc_num sit in an anonymous struct inside an anonymous union
 * of struct sock_common; CO-RE finds them by name through anonymous members. */
struct sock_common {
	__u16 skc_dport; /* remote port, network byte order */
	__u16 skc_num;   /* local port, host byte order */
	unsigned short skc_family;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define MSG_PEEK 2

struct bpf_pidns_info {
	__u32 pid;
	__u32 tgid;
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_ns_current_pid_tgid)(__u64 dev, __u64 ino, struct bpf_pidns_info *nsdata, __u32 size) = (void *)120;

#endif
