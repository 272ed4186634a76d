/* noop: does nothing. The smallest complete function, and a baseline for
 * measuring the platform's own cost per event. Calls answer NoReply. */
#include "edgeless.h"

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	(void)payload;
	(void)payload_len;
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	(void)payload;
	(void)payload_len;
	(void)reply;
	(void)reply_len;
	return EDGELESS_NO_REPLY;
}

void handle_stop(void) {
}
