/* timed_task: reports timings to a metrics-collector. Every period
 * milliseconds it starts task n (n = 1, 2, ...) by casting
 * "workflow:begin:<n>" and "function:begin:<n>" to output "metric", and ends
 * it duration milliseconds later with delayed casts of "function:end:<n>"
 * and "workflow:end:<n>": the collector measures about duration ms per
 * sample.
 *
 * init-payload: period=MS (default 1000), duration=MS (default 100). The
 * timer is a delayed cast of "wakeup" to "self". No state. */
#include "edgeless.h"

#include <string.h>

#define WAKEUP "wakeup"

static struct {
	int64_t period, duration, n;
} g;

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	g.period = edgeless_init_arg_i64(payload, payload_len, "period", 1000);
	if (g.period <= 0) {
		g.period = 1000;
	}
	g.duration = edgeless_init_arg_i64(payload, payload_len, "duration", 100);
	if (g.duration < 0) {
		g.duration = 100;
	}
	edgeless_delayed_cast((uint64_t)g.period, "self", WAKEUP, sizeof WAKEUP - 1);
}

/* metric casts "<kind>:<what>:<n>", now or after delay ms. */
static void metric(const char *kind_what, int64_t delay) {
	char msg[32 + EDGELESS_I64_BUF];
	size_t k = strlen(kind_what);
	memcpy(msg, kind_what, k);
	size_t n = k + edgeless_format_i64(g.n, msg + k);
	if (delay > 0) {
		edgeless_delayed_cast((uint64_t)delay, "metric", msg, n);
	} else {
		edgeless_cast("metric", msg, n);
	}
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (payload_len != sizeof WAKEUP - 1 || memcmp(payload, WAKEUP, payload_len) != 0) {
		return;
	}
	g.n++;
	metric("workflow:begin:", 0);
	metric("function:begin:", 0);
	metric("function:end:", g.duration);
	metric("workflow:end:", g.duration);
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
}
