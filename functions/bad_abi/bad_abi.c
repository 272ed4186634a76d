/* bad_abi: a module that breaks the ABI on purpose, to exercise the
 * platform's load-time checks. It exports memory, the allocator and every
 * handler except handle_call_asm. It is written without the SDK, which would
 * always provide that export. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define EXPORT(name) __attribute__((export_name(#name)))

EXPORT(edgeless_mem_alloc) uint8_t *edgeless_mem_alloc(size_t len) {
	return malloc(len > 0 ? len : 1);
}

EXPORT(edgeless_mem_free) void edgeless_mem_free(uint8_t *ptr, size_t len) {
	(void)len;
	free(ptr);
}

EXPORT(edgeless_mem_clear) void edgeless_mem_clear(void) {
}

EXPORT(handle_init_asm) void handle_init_asm(const uint8_t *payload, size_t payload_len, const uint8_t *state,
                                             size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
}

EXPORT(handle_cast_asm) void handle_cast_asm(const uint8_t *node_id, const uint8_t *component_id,
                                             const uint8_t *payload, size_t payload_len) {
	(void)node_id;
	(void)component_id;
	(void)payload;
	(void)payload_len;
}

EXPORT(handle_stop_asm) void handle_stop_asm(void) {
}
