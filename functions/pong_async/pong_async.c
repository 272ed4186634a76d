/* pong_async: the cast-only pong. Answers each cast "PING-<n>" by casting
 * "PONG-<n>" to output "pinger"; other casts are logged as warnings and
 * dropped. Calls answer NoReply. No init-payload, no state. */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

#define PING_PREFIX "PING-"
#define PONG_PREFIX "PONG-"

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	const size_t prefix_len = sizeof PING_PREFIX - 1;
	if (payload_len < prefix_len || memcmp(payload, PING_PREFIX, prefix_len) != 0) {
		edgeless_telemetry_log(EDGELESS_LOG_WARN, "pong_async", "dropping a cast that is not PING-<n>");
		return;
	}
	/* Same length as the ping: only the prefix changes. */
	uint8_t *out = malloc(payload_len);
	if (out == NULL) {
		edgeless_telemetry_log(EDGELESS_LOG_ERROR, "pong_async", "cannot allocate the pong");
		return;
	}
	memcpy(out, PONG_PREFIX, prefix_len);
	memcpy(out + prefix_len, payload + prefix_len, payload_len - prefix_len);
	edgeless_cast("pinger", out, payload_len);
	free(out);
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
