/*
 * shim.c - see shim.h. The host table points at the static functions below,
 * which check that the call comes from a running handler and forward it to
 * the Go functions exported in host.go.
 */
#include <stdlib.h>
#include <string.h>

#include "shim.h"
#include "_cgo_export.h"

edg_ninst *edg_ninst_new(uintptr_t handle) {
	edg_ninst *i = calloc(1, sizeof *i);
	if (i != NULL) {
		i->handle = handle;
	}
	return i;
}

void edg_ninst_free(edg_ninst *i) {
	if (i != NULL) {
		free(i->reply);
		free(i);
	}
}

void edg_ninst_resolve(edg_ninst *i, uintptr_t bind, uintptr_t init, uintptr_t cast, uintptr_t call,
                       uintptr_t stop) {
	i->bind = (edg_bind_fn)bind;
	i->init = (edg_init_fn)init;
	i->cast = (edg_cast_fn)cast;
	i->call = (edg_call_fn)call;
	i->stop = (edg_stop_fn)stop;
}

uint32_t edg_read_u32(uintptr_t addr) {
	uint32_t v;
	memcpy(&v, (const void *)addr, sizeof v);
	return v;
}

int edg_reserve(edg_ninst *i, size_t n) {
	if (n <= i->reply_cap) {
		return 0;
	}
	size_t c = i->reply_cap > 0 ? i->reply_cap : 256;
	while (c < n) {
		c = c > SIZE_MAX / 2 ? n : c * 2;
	}
	uint8_t *r = realloc(i->reply, c);
	if (r == NULL) {
		return -1;
	}
	i->reply = r;
	i->reply_cap = c;
	return 0;
}

static void enter(edg_ninst *i) {
	__atomic_store_n(&i->owner, pthread_self(), __ATOMIC_RELAXED);
	__atomic_store_n(&i->running, 1, __ATOMIC_RELEASE);
}

static void leave(edg_ninst *i) {
	__atomic_store_n(&i->running, 0, __ATOMIC_RELEASE);
}

void edg_init(uintptr_t inst, const uint8_t *p, size_t n, const uint8_t *s, size_t sn) {
	edg_ninst *i = (edg_ninst *)inst;
	enter(i);
	i->init(n > 0 ? p : NULL, n, sn > 0 ? s : NULL, sn);
	leave(i);
}

void edg_cast(uintptr_t inst, const uint8_t *p, size_t n) {
	edg_ninst *i = (edg_ninst *)inst;
	enter(i);
	i->cast(i->src, i->src + 16, n > 0 ? p : NULL, n);
	leave(i);
}

void edg_call(uintptr_t inst, const uint8_t *p, size_t n) {
	edg_ninst *i = (edg_ninst *)inst;
	const uint8_t *out = NULL;
	size_t out_len = 0;
	enter(i);
	i->ret = i->call(i->src, i->src + 16, n > 0 ? p : NULL, n, &out, &out_len);
	leave(i);
	i->out = out;
	i->out_len = out_len;
}

void edg_stop(uintptr_t inst) {
	edg_ninst *i = (edg_ninst *)inst;
	enter(i);
	i->stop();
	leave(i);
}

/* admitted reports whether a host call on ctx comes from the thread running
 * one of its handlers; otherwise it counts the refusal. */
static edg_ninst *admitted(void *ctx) {
	edg_ninst *i = ctx;
	if (__atomic_load_n(&i->running, __ATOMIC_ACQUIRE) &&
	    pthread_equal(__atomic_load_n(&i->owner, __ATOMIC_RELAXED), pthread_self())) {
		return i;
	}
	__atomic_fetch_add(&i->refused, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void host_cast(void *ctx, const char *output, size_t output_len, const uint8_t *payload,
                      size_t payload_len) {
	edg_ninst *i = admitted(ctx);
	if (i != NULL) {
		edgNativeCast(i, (char *)output, output_len, (uint8_t *)payload, payload_len);
	}
}

static void host_cast_raw(void *ctx, const uint8_t *node, const uint8_t *component, const uint8_t *payload,
                          size_t payload_len) {
	edg_ninst *i = admitted(ctx);
	if (i != NULL) {
		edgNativeCastRaw(i, (uint8_t *)node, (uint8_t *)component, (uint8_t *)payload, payload_len);
	}
}

static int32_t host_call(void *ctx, const char *output, size_t output_len, const uint8_t *payload,
                         size_t payload_len, const uint8_t **reply, size_t *reply_len) {
	*reply = NULL;
	*reply_len = 0;
	edg_ninst *i = admitted(ctx);
	if (i == NULL) {
		return EDGELESS_NATIVE_ERR;
	}
	size_t n = 0;
	int32_t ret = edgNativeCall(i, (char *)output, output_len, (uint8_t *)payload, payload_len, &n);
	if (ret == EDGELESS_NATIVE_REPLY && n > 0) {
		*reply = i->reply;
		*reply_len = n;
	}
	return ret;
}

static int32_t host_call_raw(void *ctx, const uint8_t *node, const uint8_t *component, const uint8_t *payload,
                             size_t payload_len, const uint8_t **reply, size_t *reply_len) {
	*reply = NULL;
	*reply_len = 0;
	edg_ninst *i = admitted(ctx);
	if (i == NULL) {
		return EDGELESS_NATIVE_ERR;
	}
	size_t n = 0;
	int32_t ret = edgNativeCallRaw(i, (uint8_t *)node, (uint8_t *)component, (uint8_t *)payload, payload_len, &n);
	if (ret == EDGELESS_NATIVE_REPLY && n > 0) {
		*reply = i->reply;
		*reply_len = n;
	}
	return ret;
}

static void host_delayed_cast(void *ctx, int64_t delay_ms, const char *output, size_t output_len,
                              const uint8_t *payload, size_t payload_len) {
	edg_ninst *i = admitted(ctx);
	if (i != NULL) {
		edgNativeDelayedCast(i, delay_ms, (char *)output, output_len, (uint8_t *)payload, payload_len);
	}
}

static void host_slf(void *ctx, uint8_t *node, uint8_t *component) {
	edg_ninst *i = admitted(ctx);
	if (i != NULL) {
		edgNativeSelf(i, node, component);
	}
}

static void host_sync(void *ctx, const uint8_t *state, size_t state_len) {
	edg_ninst *i = admitted(ctx);
	if (i != NULL) {
		edgNativeSync(i, (uint8_t *)state, state_len);
	}
}

static void host_telemetry_log(void *ctx, int32_t level, const char *target, size_t target_len, const char *msg,
                               size_t msg_len) {
	edg_ninst *i = admitted(ctx);
	if (i != NULL) {
		edgNativeLog(i, level, (char *)target, target_len, (char *)msg, msg_len);
	}
}

/* edg_host_table is the one table of the process, shared by every instance. */
static const edgeless_native_host edg_host_table = {
    .abi_version = EDGELESS_NATIVE_ABI_VERSION,
    .size = sizeof(edgeless_native_host),
    .cast = host_cast,
    .cast_raw = host_cast_raw,
    .call = host_call,
    .call_raw = host_call_raw,
    .delayed_cast = host_delayed_cast,
    .slf = host_slf,
    .sync = host_sync,
    .telemetry_log = host_telemetry_log,
};

int32_t edg_bind(uintptr_t inst) {
	edg_ninst *i = (edg_ninst *)inst;
	/* Not entered: edgeless_native_init must not make host calls. */
	return i->bind(&edg_host_table, i);
}
