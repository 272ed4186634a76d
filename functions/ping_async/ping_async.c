/* ping_async: the cast-only ping. Every period milliseconds casts
 * "PING-<n>" to output "ponger"; counts the "PONG-..." casts that come back,
 * persists that count with sync and logs each pong.
 *
 * init-payload: period=MS (default 1000). State: the number of pongs
 * received, as decimal text; a re-created instance continues from it (and
 * numbers its pings from there). The timer is a delayed cast of "wakeup" to
 * "self". */
#include "edgeless.h"

#include <string.h>

#define WAKEUP "wakeup"
#define PING_PREFIX "PING-"
#define PONG_PREFIX "PONG-"

static struct {
	int64_t period;
	int64_t sent;
	int64_t pongs;
} g;

static bool has_prefix(const uint8_t *p, size_t n, const char *prefix, size_t prefix_len) {
	return n >= prefix_len && memcmp(p, prefix, prefix_len) == 0;
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	g.period = edgeless_init_arg_i64(payload, payload_len, "period", 1000);
	if (g.period <= 0) {
		g.period = 1000;
	}
	g.pongs = 0;
	if (state != NULL && !edgeless_parse_i64(state, state_len, &g.pongs)) {
		g.pongs = 0;
		edgeless_telemetry_log(EDGELESS_LOG_WARN, "ping_async", "ignoring a state that is not a number");
	}
	g.sent = g.pongs;
	edgeless_delayed_cast((uint64_t)g.period, "self", WAKEUP, sizeof WAKEUP - 1);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (payload_len == sizeof WAKEUP - 1 && memcmp(payload, WAKEUP, payload_len) == 0) {
		g.sent++;
		char msg[sizeof PING_PREFIX - 1 + EDGELESS_I64_BUF];
		memcpy(msg, PING_PREFIX, sizeof PING_PREFIX - 1);
		size_t n = edgeless_format_i64(g.sent, msg + sizeof PING_PREFIX - 1);
		edgeless_cast("ponger", msg, sizeof PING_PREFIX - 1 + n);
		edgeless_delayed_cast((uint64_t)g.period, "self", WAKEUP, sizeof WAKEUP - 1);
		return;
	}
	if (has_prefix(payload, payload_len, PONG_PREFIX, sizeof PONG_PREFIX - 1)) {
		g.pongs++;
		char num[EDGELESS_I64_BUF];
		size_t n = edgeless_format_i64(g.pongs, num);
		edgeless_sync(num, n);
		edgeless_telemetry_log_n(EDGELESS_LOG_INFO, "ping_async", payload, payload_len);
		return;
	}
	edgeless_telemetry_log_n(EDGELESS_LOG_DEBUG, "ping_async", payload, payload_len);
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
