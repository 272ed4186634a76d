/* trap: exercises the platform's handling of a guest trap. handle_cast and
 * handle_call execute an unreachable instruction; with init-payload
 * "init=trap" handle_init does too. handle_stop returns normally. */
#include "edgeless.h"

#include <string.h>

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	const uint8_t *v;
	size_t n;
	if (edgeless_init_arg(payload, payload_len, "init", &v, &n) && n == 4 && memcmp(v, "trap", 4) == 0) {
		__builtin_trap();
	}
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	(void)payload;
	(void)payload_len;
	__builtin_trap();
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	(void)payload;
	(void)payload_len;
	(void)reply;
	(void)reply_len;
	__builtin_trap();
}

void handle_stop(void) {
}
