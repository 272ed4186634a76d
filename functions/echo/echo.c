/* echo: a call is answered with its own payload, byte for byte (e.g. behind
 * an http-ingress in raw mode: the response body is the request body); a
 * cast is cast on to output "output". No init-payload, no state. */
#include "edgeless.h"

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	edgeless_cast("output", payload, payload_len);
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	return edgeless_reply(reply, reply_len, payload, payload_len);
}

void handle_stop(void) {
}
