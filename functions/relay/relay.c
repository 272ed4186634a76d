/* relay: exercises the host calls that the other examples do not. On init
 * it logs its own identity (edgeless_slf); a call is forwarded to output
 * "next" and that call's outcome and reply are returned unchanged; a cast is
 * sent back to its sender with edgeless_cast_raw. No init-payload, no
 * state. */
#include "edgeless.h"

static void hex(const uint8_t *in, size_t n, char *out) {
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
	edgeless_instance_id id;
	edgeless_slf(&id);
	char text[2 * 16 + 1 + 2 * 16];
	hex(id.node, sizeof id.node, text);
	text[2 * 16] = '/';
	hex(id.component, sizeof id.component, text + 2 * 16 + 1);
	edgeless_telemetry_log_n(EDGELESS_LOG_INFO, "relay", text, sizeof text);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	edgeless_cast_raw(src, payload, payload_len);
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	/* The reply of edgeless_call is malloc'd and owned by us, which is
	 * exactly what handle_call must hand back, so it passes straight
	 * through without a copy. */
	return edgeless_call("next", payload, payload_len, reply, reply_len);
}

void handle_stop(void) {
}
