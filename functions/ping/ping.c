/* ping: every period milliseconds increments a counter, persists it with
 * sync, calls output "ponger" with "PING-<n>" and logs "PING-<n> -> <reply>";
 * handle_stop logs "stopped at <n>".
 *
 * init-payload: period=MS (default 1000). State: the counter as decimal
 * text; a re-created instance continues from it. The timer is a delayed
 * cast of "wakeup" to "self"; other casts (e.g. a pong's "PONG") are only
 * logged at debug level. */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

#define WAKEUP "wakeup"
#define PREFIX "PING-"

static struct {
	int64_t period;
	int64_t counter;
} g;

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	g.period = edgeless_init_arg_i64(payload, payload_len, "period", 1000);
	if (g.period <= 0) {
		g.period = 1000;
	}
	g.counter = 0;
	if (state != NULL && !edgeless_parse_i64(state, state_len, &g.counter)) {
		g.counter = 0;
		edgeless_telemetry_log(EDGELESS_LOG_WARN, "ping", "ignoring a state that is not a number");
	}
	edgeless_delayed_cast((uint64_t)g.period, "self", WAKEUP, sizeof WAKEUP - 1);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (payload_len != sizeof WAKEUP - 1 || memcmp(payload, WAKEUP, payload_len) != 0) {
		edgeless_telemetry_log_n(EDGELESS_LOG_DEBUG, "ping", payload, payload_len);
		return;
	}
	g.counter++;

	char num[EDGELESS_I64_BUF];
	size_t num_len = edgeless_format_i64(g.counter, num);
	edgeless_sync(num, num_len);

	char msg[sizeof PREFIX - 1 + EDGELESS_I64_BUF];
	memcpy(msg, PREFIX, sizeof PREFIX - 1);
	memcpy(msg + sizeof PREFIX - 1, num, num_len);
	uint8_t *reply;
	size_t reply_len;
	edgeless_call_ret ret = edgeless_call("ponger", msg, sizeof PREFIX - 1 + num_len, &reply, &reply_len);
	if (ret == EDGELESS_REPLY) {
		/* "PING-<n> -> <reply>": the counter is visible in the node's log. */
		size_t head = sizeof PREFIX - 1 + num_len;
		size_t line_len = head + 4 + reply_len;
		char *line = malloc(line_len);
		if (line != NULL) {
			memcpy(line, msg, head);
			memcpy(line + head, " -> ", 4);
			memcpy(line + head + 4, reply, reply_len);
			edgeless_telemetry_log_n(EDGELESS_LOG_INFO, "ping", line, line_len);
			free(line);
		}
		free(reply);
	} else {
		edgeless_telemetry_log(EDGELESS_LOG_WARN, "ping", ret == EDGELESS_NO_REPLY ? "no reply" : "call failed");
	}

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
	char msg[sizeof "stopped at " - 1 + EDGELESS_I64_BUF];
	memcpy(msg, "stopped at ", sizeof "stopped at " - 1);
	size_t n = edgeless_format_i64(g.counter, msg + sizeof "stopped at " - 1);
	edgeless_telemetry_log_n(EDGELESS_LOG_INFO, "ping", msg, sizeof "stopped at " - 1 + n);
}
