/*
 * shim.h - the C side of package native: the trampolines through which Go
 * calls a function's handlers, and the host table through which the function
 * calls back into Go.
 */
#ifndef EDG_NATIVE_SHIM_H
#define EDG_NATIVE_SHIM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeless_native.h"

typedef int32_t (*edg_bind_fn)(const edgeless_native_host *, void *);
typedef void (*edg_init_fn)(const uint8_t *, size_t, const uint8_t *, size_t);
typedef void (*edg_cast_fn)(const uint8_t *, const uint8_t *, const uint8_t *, size_t);
typedef int32_t (*edg_call_fn)(const uint8_t *, const uint8_t *, const uint8_t *, size_t, const uint8_t **,
                               size_t *);
typedef void (*edg_stop_fn)(void);

/* edg_ninst is one instance: the ctx handed to the function, the resolved
 * handlers, and the scratch space of a handler invocation. It lives in C
 * memory so the function may keep a pointer to it. */
typedef struct edg_ninst {
	uintptr_t handle; /* cgo.Handle of the Go *Instance */

	edg_bind_fn bind;
	edg_init_fn init;
	edg_cast_fn cast;
	edg_call_fn call;
	edg_stop_fn stop;

	uint8_t src[32]; /* source of the event: node id, component id */

	/* Outcome of edgeless_native_handle_call: the function's buffer. */
	int32_t ret;
	const uint8_t *out;
	size_t out_len;

	/* The reply of the last host call, in C memory owned by the host. */
	uint8_t *reply;
	size_t reply_cap;

	/* The thread running a handler, valid while running is 1. Host calls
	 * from anywhere else are refused and counted. Accessed atomically:
	 * a stray thread of the function may read them at any time. */
	pthread_t owner;
	int running;
	uint32_t refused;
} edg_ninst;

edg_ninst *edg_ninst_new(uintptr_t handle);
void edg_ninst_free(edg_ninst *i);

/* edg_ninst_resolve stores the handler addresses dlsym found. */
void edg_ninst_resolve(edg_ninst *i, uintptr_t bind, uintptr_t init, uintptr_t cast, uintptr_t call,
                       uintptr_t stop);

/* edg_read_u32 reads the 32-bit value at addr, a data symbol of a library. */
uint32_t edg_read_u32(uintptr_t addr);

/* edg_reserve makes room for n bytes of host-call reply; 0 on success. */
int edg_reserve(edg_ninst *i, size_t n);

/* Handler trampolines: each marks the calling thread as the owner, calls the
 * function and clears the mark. The instance is passed as an integer: cgo
 * checks every pointer argument whose target holds pointers for Go
 * pointers, a cost the hot path does not need for memory that is C's. */
int32_t edg_bind(uintptr_t inst);
void edg_init(uintptr_t inst, const uint8_t *p, size_t n, const uint8_t *s, size_t sn);
void edg_cast(uintptr_t inst, const uint8_t *p, size_t n);
void edg_call(uintptr_t inst, const uint8_t *p, size_t n);
void edg_stop(uintptr_t inst);

#endif
