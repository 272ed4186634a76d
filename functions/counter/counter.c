/* counter: every period milliseconds increments a counter, persists it with
 * sync and casts it as decimal text to output "output".
 *
 * init-payload: period=MS (default 1000), start=N (default 0): the value
 * before the first tick, so the first value cast is N+1. State: the counter
 * as decimal text; when present it takes precedence over start. The timer is
 * a delayed cast of "wakeup" to "self"; other casts are ignored. Calls
 * answer with the current value. */
#include "edgeless.h"

#include <string.h>

#define WAKEUP "wakeup"

static struct {
	int64_t period;
	int64_t count;
} g;

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	g.period = edgeless_init_arg_i64(payload, payload_len, "period", 1000);
	if (g.period <= 0) {
		g.period = 1000;
	}
	g.count = edgeless_init_arg_i64(payload, payload_len, "start", 0);
	if (state != NULL && !edgeless_parse_i64(state, state_len, &g.count)) {
		edgeless_telemetry_log(EDGELESS_LOG_WARN, "counter", "ignoring a state that is not a number");
	}
	edgeless_delayed_cast((uint64_t)g.period, "self", WAKEUP, sizeof WAKEUP - 1);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (payload_len != sizeof WAKEUP - 1 || memcmp(payload, WAKEUP, payload_len) != 0) {
		return;
	}
	g.count++;
	char num[EDGELESS_I64_BUF];
	size_t n = edgeless_format_i64(g.count, num);
	edgeless_sync(num, n);
	edgeless_cast("output", num, n);
	edgeless_delayed_cast((uint64_t)g.period, "self", WAKEUP, sizeof WAKEUP - 1);
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	(void)payload;
	(void)payload_len;
	char num[EDGELESS_I64_BUF];
	size_t n = edgeless_format_i64(g.count, num);
	return edgeless_reply(reply, reply_len, num, n);
}

void handle_stop(void) {
}
