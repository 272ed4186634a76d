/* double: doubles a decimal integer. A cast "x" is answered by casting
 * "2x" to output "output"; a call "x" is answered with the reply "2x".
 * Input that is not a 64-bit decimal integer, or a result that overflows,
 * fails the call with Err, or is logged as an error for a cast. No
 * init-payload, no state. */
#include "edgeless.h"

static bool apply(int64_t in, int64_t *out) {
	return !__builtin_mul_overflow(in, (int64_t)2, out);
}

/* compute parses payload and formats the result into buf
 * (EDGELESS_I64_BUF bytes), returning its length, or 0 on bad input. */
static size_t compute(const uint8_t *payload, size_t payload_len, char *buf) {
	int64_t in, out;
	if (!edgeless_parse_i64(payload, payload_len, &in) || !apply(in, &out)) {
		return 0;
	}
	return edgeless_format_i64(out, buf);
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	char buf[EDGELESS_I64_BUF];
	size_t n = compute(payload, payload_len, buf);
	if (n == 0) {
		edgeless_telemetry_log(EDGELESS_LOG_ERROR, "double", "input is not a 64-bit integer or the result overflows");
		return;
	}
	edgeless_cast("output", buf, n);
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	char buf[EDGELESS_I64_BUF];
	size_t n = compute(payload, payload_len, buf);
	if (n == 0) {
		return EDGELESS_ERR;
	}
	return edgeless_reply(reply, reply_len, buf, n);
}

void handle_stop(void) {
}
