/* pong: answers every call with "PONG" and answers every cast by casting
 * "PONG" to output "ping". No init-payload, no state. */
#include "edgeless.h"

#define PONG "PONG"

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
	edgeless_cast("ping", PONG, sizeof PONG - 1);
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	(void)payload;
	(void)payload_len;
	return edgeless_reply(reply, reply_len, PONG, sizeof PONG - 1);
}

void handle_stop(void) {
}
