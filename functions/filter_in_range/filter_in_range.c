/* filter_in_range: a cast carrying a number within [low, high] is cast on,
 * unchanged, to output "output"; a number outside the range, or a payload
 * that is not a number, becomes a message on output "error".
 *
 * init-payload: "low,high" (as in EDGELESS's tutorial, e.g. "0.0,100.0");
 * without it every number passes. No state. */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

static struct {
	bool bounded;
	double low, high;
} g;

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	g.bounded = false;
	const uint8_t *comma = payload ? memchr(payload, ',', payload_len) : NULL;
	if (comma != NULL && edgeless_parse_f64(payload, (size_t)(comma - payload), &g.low) &&
	    edgeless_parse_f64(comma + 1, payload_len - (size_t)(comma - payload) - 1, &g.high)) {
		g.bounded = true;
	} else if (payload_len > 0) {
		edgeless_telemetry_log(EDGELESS_LOG_WARN, "filter_in_range", "init-payload is not \"low,high\"; passing everything");
	}
}

/* complain casts "<prefix><payload><suffix>" to output "error". */
static void complain(const char *prefix, const uint8_t *payload, size_t payload_len, const char *suffix) {
	size_t p = strlen(prefix), s = strlen(suffix);
	char *msg = malloc(p + payload_len + s + 1);
	if (msg == NULL) {
		return;
	}
	memcpy(msg, prefix, p);
	if (payload_len > 0) {
		memcpy(msg + p, payload, payload_len);
	}
	memcpy(msg + p + payload_len, suffix, s);
	edgeless_cast("error", msg, p + payload_len + s);
	free(msg);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	double v;
	if (!edgeless_parse_f64(payload, payload_len, &v)) {
		complain("not a number: ", payload, payload_len, "");
		return;
	}
	if (g.bounded && (v < g.low || v > g.high)) {
		complain("out of range: ", payload, payload_len, "");
		return;
	}
	edgeless_cast("output", payload, payload_len);
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
