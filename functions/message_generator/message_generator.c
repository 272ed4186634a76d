/* message_generator: every period milliseconds casts "<message> #<n>"
 * (n = 0, 1, 2, ...) to output "output".
 *
 * init-payload: message=TEXT (default "hello world"), period=MS (default
 * 1000). The timer is a delayed cast of "wakeup" to "self"; other casts are
 * ignored so they cannot start a second timer. */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

#define WAKEUP "wakeup"

static const char default_message[] = "hello world";

static struct {
	uint8_t *out;     /* "<message> #" followed by room for the number */
	size_t prefix_len; /* length of "<message> #" */
	int64_t period;
	int64_t n;
} g;

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	const uint8_t *msg = (const uint8_t *)default_message;
	size_t msg_len = sizeof default_message - 1;
	const uint8_t *v;
	size_t v_len;
	if (edgeless_init_arg(payload, payload_len, "message", &v, &v_len)) {
		msg = v;
		msg_len = v_len;
	}
	g.period = edgeless_init_arg_i64(payload, payload_len, "period", 1000);
	if (g.period <= 0) {
		g.period = 1000;
	}
	/* The payload is only valid during this call: keep a copy of the
	 * message, with room for " #" and the number after it. */
	g.out = malloc(msg_len + 2 + EDGELESS_I64_BUF);
	if (g.out == NULL) {
		edgeless_telemetry_log(EDGELESS_LOG_ERROR, "message_generator", "cannot allocate the message buffer");
		return;
	}
	memcpy(g.out, msg, msg_len);
	memcpy(g.out + msg_len, " #", 2);
	g.prefix_len = msg_len + 2;
	g.n = 0;
	edgeless_delayed_cast((uint64_t)g.period, "self", WAKEUP, sizeof WAKEUP - 1);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (g.out == NULL || payload_len != sizeof WAKEUP - 1 || memcmp(payload, WAKEUP, payload_len) != 0) {
		return;
	}
	size_t n = edgeless_format_i64(g.n, (char *)g.out + g.prefix_len);
	edgeless_cast("output", g.out, g.prefix_len + n);
	g.n++;
	edgeless_delayed_cast((uint64_t)g.period, "self", WAKEUP, sizeof WAKEUP - 1);
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
	free(g.out);
	g.out = NULL;
}
