/* wrong_abi: a native function built for a later version of the ABI than
 * the node supports, to exercise the node's version check. Apart from the
 * version it exports every symbol, so only the version can be refused. It
 * is written without the SDK, which always exports the current version. */
#include "edgeless_native.h"

EDGELESS_NATIVE_EXPORT const uint32_t edgeless_native_abi_version = EDGELESS_NATIVE_ABI_VERSION + 1;

int32_t edgeless_native_init(const edgeless_native_host *host, void *ctx) {
	(void)host;
	(void)ctx;
	return 0;
}

void edgeless_native_handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state,
                                 size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
}

void edgeless_native_handle_cast(const uint8_t *src_node, const uint8_t *src_component, const uint8_t *payload,
                                 size_t payload_len) {
	(void)src_node;
	(void)src_component;
	(void)payload;
	(void)payload_len;
}

int32_t edgeless_native_handle_call(const uint8_t *src_node, const uint8_t *src_component, const uint8_t *payload,
                                    size_t payload_len, const uint8_t **reply, size_t *reply_len) {
	(void)src_node;
	(void)src_component;
	(void)payload;
	(void)payload_len;
	(void)reply;
	(void)reply_len;
	return EDGELESS_NATIVE_NO_REPLY;
}

void edgeless_native_handle_stop(void) {
}
