/*
 * edgeless_wasm.c - the wasm32 binding of the C SDK: implements the module
 * ABI declared at the end of edgeless.h on top of the handlers and host
 * calls a function sees. Memory comes from libc's malloc, which needs no
 * system interface, so a function that avoids stdio imports nothing but the
 * "env" host calls.
 */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

#ifndef __wasm__
#error "edgeless_wasm.c is the wasm32 binding; build it with clang --target=wasm32-wasi"
#endif

/* pending_reply is the last reply handle_call_asm handed to the host. The
 * host copies it after handle_call_asm returns and does not free it, so it
 * stays alive until the next handler is entered, when the host is
 * necessarily done with it. */
static uint8_t *pending_reply;

static void release_pending_reply(void) {
	free(pending_reply);
	pending_reply = NULL;
}

/* The host allocates the two 16-byte ids, and often a short payload, before
 * every handler and frees them after it: small blocks are recycled through a
 * little stack instead of going through malloc and free each time. Every
 * block of SMALL_BLOCK bytes or less is allocated as SMALL_BLOCK bytes, so
 * any of them can serve any small request, and free() still accepts them. */
#define SMALL_BLOCK 64
#define SMALL_CACHED 8
static uint8_t *small_blocks[SMALL_CACHED];
static int small_count;

uint8_t *edgeless_mem_alloc(size_t len) {
	if (len <= SMALL_BLOCK) {
		if (small_count > 0) {
			return small_blocks[--small_count];
		}
		return malloc(SMALL_BLOCK);
	}
	return malloc(len);
}

void edgeless_mem_free(uint8_t *ptr, size_t len) {
	if (ptr != NULL && len <= SMALL_BLOCK && small_count < SMALL_CACHED) {
		small_blocks[small_count++] = ptr;
		return;
	}
	free(ptr);
}

void edgeless_mem_clear(void) {
	/* Nothing to reset: every buffer is malloc'd and freed individually. */
}

static edgeless_instance_id make_id(const uint8_t *node_id, const uint8_t *component_id) {
	edgeless_instance_id id;
	memcpy(id.node, node_id, sizeof id.node);
	memcpy(id.component, component_id, sizeof id.component);
	return id;
}

void handle_init_asm(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	release_pending_reply();
	handle_init(payload_len > 0 ? payload : NULL, payload_len, state_len > 0 ? state : NULL, state_len);
}

void handle_cast_asm(const uint8_t *node_id, const uint8_t *component_id, const uint8_t *payload,
                     size_t payload_len) {
	release_pending_reply();
	handle_cast(make_id(node_id, component_id), payload_len > 0 ? payload : NULL, payload_len);
}

int32_t handle_call_asm(const uint8_t *node_id, const uint8_t *component_id, const uint8_t *payload,
                        size_t payload_len, uint32_t *out_ptr, uint32_t *out_len) {
	release_pending_reply();
	uint8_t *reply = NULL;
	size_t reply_len = 0;
	edgeless_call_ret ret =
	    handle_call(make_id(node_id, component_id), payload_len > 0 ? payload : NULL, payload_len, &reply, &reply_len);
	if (ret != EDGELESS_REPLY) {
		free(reply);
		return ret == EDGELESS_NO_REPLY ? EDGELESS_NO_REPLY : EDGELESS_ERR;
	}
	pending_reply = reply;
	/* wasm32 is little-endian, so copying the 32-bit values gives the LE
	 * slots the ABI asks for; memcpy makes no alignment assumption about
	 * where the host put them. */
	uint32_t p = (uint32_t)(uintptr_t)reply;
	uint32_t n = (uint32_t)reply_len;
	memcpy(out_ptr, &p, sizeof p);
	memcpy(out_len, &n, sizeof n);
	return EDGELESS_REPLY;
}

void handle_stop_asm(void) {
	release_pending_reply();
	handle_stop();
}

static size_t cstr_len(const char *s) {
	return s != NULL ? strlen(s) : 0;
}

void edgeless_cast(const char *output, const void *payload, size_t payload_len) {
	edgeless_import_cast(output, cstr_len(output), payload, payload_len);
}

void edgeless_cast_raw(edgeless_instance_id target, const void *payload, size_t payload_len) {
	edgeless_import_cast_raw(target.node, target.component, payload, payload_len);
}

/* call_slots receives the host's reply to call_asm/call_raw_asm. Each slot
 * is 8 bytes although the ABI writes 4: the reference host writes the reply
 * length as a 64-bit integer, and the wider slot keeps that from clobbering
 * the stack. Only the low 4 bytes (little-endian) are read. */
typedef struct call_slots {
	uint64_t ptr;
	uint64_t len;
} call_slots;

static edgeless_call_ret finish_call(int32_t ret, const call_slots *slots, uint8_t **reply, size_t *reply_len) {
	uint8_t *buf = (uint8_t *)(uintptr_t)(uint32_t)slots->ptr;
	if (ret == EDGELESS_REPLY) {
		*reply = buf;
		*reply_len = (uint32_t)slots->len;
		return EDGELESS_REPLY;
	}
	/* A host that allocated a buffer for another outcome would leak it. */
	free(buf);
	*reply = NULL;
	*reply_len = 0;
	return ret == EDGELESS_NO_REPLY ? EDGELESS_NO_REPLY : EDGELESS_ERR;
}

edgeless_call_ret edgeless_call(const char *output, const void *payload, size_t payload_len, uint8_t **reply,
                                size_t *reply_len) {
	call_slots slots = {0, 0};
	int32_t ret = edgeless_import_call(output, cstr_len(output), payload, payload_len, &slots.ptr, &slots.len);
	return finish_call(ret, &slots, reply, reply_len);
}

edgeless_call_ret edgeless_call_raw(edgeless_instance_id target, const void *payload, size_t payload_len,
                                    uint8_t **reply, size_t *reply_len) {
	call_slots slots = {0, 0};
	int32_t ret =
	    edgeless_import_call_raw(target.node, target.component, payload, payload_len, &slots.ptr, &slots.len);
	return finish_call(ret, &slots, reply, reply_len);
}

void edgeless_delayed_cast(uint64_t delay_ms, const char *output, const void *payload, size_t payload_len) {
	/* The ABI carries a signed 64-bit delay; clamp instead of wrapping to a
	 * negative value. */
	int64_t d = delay_ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)delay_ms;
	edgeless_import_delayed_cast(d, output, cstr_len(output), payload, payload_len);
}

void edgeless_slf(edgeless_instance_id *id) {
	edgeless_import_slf(id->node, id->component);
}

void edgeless_sync(const void *state, size_t state_len) {
	edgeless_import_sync(state, state_len);
}

void edgeless_telemetry_log(edgeless_log_level level, const char *target, const char *msg) {
	edgeless_telemetry_log_n(level, target, msg, cstr_len(msg));
}

void edgeless_telemetry_log_n(edgeless_log_level level, const char *target, const void *msg, size_t msg_len) {
	edgeless_import_telemetry_log((int32_t)level, target, cstr_len(target), msg, msg_len);
}
