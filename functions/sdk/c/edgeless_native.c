/*
 * edgeless_native.c - the native binding of the C SDK: implements the ABI of
 * native/edgeless_native.h on top of the handlers and host calls a function
 * sees (edgeless.h). Build a function with it into a shared object:
 *
 *   gcc -O2 -shared -fPIC -fvisibility=hidden -Isdk/c -I../native \
 *       -o f.so f.c sdk/c/edgeless.c sdk/c/edgeless_native.c
 *
 * The node loads a separate copy of the library for every instance, so the
 * statics below, like the function's own, belong to one instance.
 */
#include "edgeless.h"
#include "edgeless_native.h"

#include <stdlib.h>
#include <string.h>

#ifdef __wasm__
#error "edgeless_native.c is the native binding; wasm32 builds use edgeless_wasm.c"
#endif

EDGELESS_NATIVE_EXPORT const uint32_t edgeless_native_abi_version = EDGELESS_NATIVE_ABI_VERSION;

/* host and host_ctx are the node's table and this instance's context, set
 * once by edgeless_native_init before any handler runs. */
static const edgeless_native_host *host;
static void *host_ctx;

/* pending_reply is the last reply handed to the node by
 * edgeless_native_handle_call. The node copies it when the handler returns,
 * so it is freed when the next handler is entered, or when the library is
 * unloaded. */
static uint8_t *pending_reply;

static void release_pending_reply(void) {
	free(pending_reply);
	pending_reply = NULL;
}

__attribute__((destructor)) static void unload(void) {
	release_pending_reply();
}

int32_t edgeless_native_init(const edgeless_native_host *h, void *ctx) {
	if (h == NULL || h->abi_version != EDGELESS_NATIVE_ABI_VERSION || h->size < sizeof *h) {
		return 1;
	}
	host = h;
	host_ctx = ctx;
	return 0;
}

static edgeless_instance_id make_id(const uint8_t *node, const uint8_t *component) {
	edgeless_instance_id id;
	memcpy(id.node, node, sizeof id.node);
	memcpy(id.component, component, sizeof id.component);
	return id;
}

void edgeless_native_handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state,
                                 size_t state_len) {
	release_pending_reply();
	handle_init(payload_len > 0 ? payload : NULL, payload_len, state_len > 0 ? state : NULL, state_len);
}

void edgeless_native_handle_cast(const uint8_t *src_node, const uint8_t *src_component, const uint8_t *payload,
                                 size_t payload_len) {
	release_pending_reply();
	handle_cast(make_id(src_node, src_component), payload_len > 0 ? payload : NULL, payload_len);
}

int32_t edgeless_native_handle_call(const uint8_t *src_node, const uint8_t *src_component, const uint8_t *payload,
                                    size_t payload_len, const uint8_t **reply, size_t *reply_len) {
	release_pending_reply();
	uint8_t *out = NULL;
	size_t out_len = 0;
	edgeless_call_ret ret =
	    handle_call(make_id(src_node, src_component), payload_len > 0 ? payload : NULL, payload_len, &out, &out_len);
	if (ret != EDGELESS_REPLY) {
		free(out);
		return ret == EDGELESS_NO_REPLY ? EDGELESS_NATIVE_NO_REPLY : EDGELESS_NATIVE_ERR;
	}
	pending_reply = out;
	*reply = out;
	*reply_len = out_len;
	return EDGELESS_NATIVE_REPLY;
}

void edgeless_native_handle_stop(void) {
	release_pending_reply();
	handle_stop();
}

static size_t cstr_len(const char *s) {
	return s != NULL ? strlen(s) : 0;
}

void edgeless_cast(const char *output, const void *payload, size_t payload_len) {
	host->cast(host_ctx, output, cstr_len(output), payload, payload_len);
}

void edgeless_cast_raw(edgeless_instance_id target, const void *payload, size_t payload_len) {
	host->cast_raw(host_ctx, target.node, target.component, payload, payload_len);
}

/* finish_call turns the node's answer, which the node owns, into the SDK's:
 * a malloc'd copy owned by the caller. */
static edgeless_call_ret finish_call(int32_t ret, const uint8_t *data, size_t len, uint8_t **reply,
                                     size_t *reply_len) {
	*reply = NULL;
	*reply_len = 0;
	if (ret != EDGELESS_NATIVE_REPLY) {
		return ret == EDGELESS_NATIVE_NO_REPLY ? EDGELESS_NO_REPLY : EDGELESS_ERR;
	}
	if (len == 0) {
		return EDGELESS_REPLY;
	}
	uint8_t *buf = malloc(len);
	if (buf == NULL) {
		return EDGELESS_ERR;
	}
	memcpy(buf, data, len);
	*reply = buf;
	*reply_len = len;
	return EDGELESS_REPLY;
}

edgeless_call_ret edgeless_call(const char *output, const void *payload, size_t payload_len, uint8_t **reply,
                                size_t *reply_len) {
	const uint8_t *data = NULL;
	size_t len = 0;
	int32_t ret = host->call(host_ctx, output, cstr_len(output), payload, payload_len, &data, &len);
	return finish_call(ret, data, len, reply, reply_len);
}

edgeless_call_ret edgeless_call_raw(edgeless_instance_id target, const void *payload, size_t payload_len,
                                    uint8_t **reply, size_t *reply_len) {
	const uint8_t *data = NULL;
	size_t len = 0;
	int32_t ret = host->call_raw(host_ctx, target.node, target.component, payload, payload_len, &data, &len);
	return finish_call(ret, data, len, reply, reply_len);
}

void edgeless_delayed_cast(uint64_t delay_ms, const char *output, const void *payload, size_t payload_len) {
	/* The ABI carries a signed delay; clamp instead of wrapping. */
	int64_t d = delay_ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)delay_ms;
	host->delayed_cast(host_ctx, d, output, cstr_len(output), payload, payload_len);
}

void edgeless_slf(edgeless_instance_id *id) {
	host->slf(host_ctx, id->node, id->component);
}

void edgeless_sync(const void *state, size_t state_len) {
	host->sync(host_ctx, state, state_len);
}

void edgeless_telemetry_log(edgeless_log_level level, const char *target, const char *msg) {
	edgeless_telemetry_log_n(level, target, msg, cstr_len(msg));
}

void edgeless_telemetry_log_n(edgeless_log_level level, const char *target, const void *msg, size_t msg_len) {
	host->telemetry_log(host_ctx, (int32_t)level, target, cstr_len(target), msg, msg_len);
}
