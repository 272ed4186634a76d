/* loop: exercises the platform's per-handler time budget. handle_cast and
 * handle_call spin forever without calling the host; init and stop return
 * normally. */
#include "edgeless.h"

static void spin(void) {
	/* volatile keeps the compiler from proving the loop has no effect and
	 * removing it. */
	volatile uint32_t n = 0;
	for (;;) {
		n++;
	}
}

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
	spin();
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	(void)payload;
	(void)payload_len;
	(void)reply;
	(void)reply_len;
	spin();
	return EDGELESS_NO_REPLY;
}

void handle_stop(void) {
}
