/* sensor_simulator: every period milliseconds casts a pseudo-random reading,
 * uniform in [min-value, max-value], as decimal text with two digits after
 * the point to output "output".
 *
 * init-payload: period=MS (default 1000), min-value=X (default 0),
 * max-value=Y (default 1), seed=N (default 0): the same seed gives the same
 * readings. The timer is a delayed cast of "wakeup" to "self". No state. */
#include "edgeless.h"

#include <string.h>

#define WAKEUP "wakeup"

static struct {
	int64_t period;
	double min, max;
	uint64_t rng;
} g;

static double arg_f64(const uint8_t *payload, size_t payload_len, const char *key, double fallback) {
	const uint8_t *v;
	size_t n;
	double out;
	if (!edgeless_init_arg(payload, payload_len, key, &v, &n) || !edgeless_parse_f64(v, n, &out)) {
		return fallback;
	}
	return out;
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	g.period = edgeless_init_arg_i64(payload, payload_len, "period", 1000);
	if (g.period <= 0) {
		g.period = 1000;
	}
	g.min = arg_f64(payload, payload_len, "min-value", 0);
	g.max = arg_f64(payload, payload_len, "max-value", 1);
	g.rng = (uint64_t)edgeless_init_arg_i64(payload, payload_len, "seed", 0);
	edgeless_delayed_cast((uint64_t)g.period, "self", WAKEUP, sizeof WAKEUP - 1);
}

/* next returns a pseudo-random number in [0, 1) (a 64-bit LCG, top bits). */
static double next(void) {
	g.rng = g.rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(g.rng >> 11) / (double)(1ULL << 53);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (payload_len != sizeof WAKEUP - 1 || memcmp(payload, WAKEUP, payload_len) != 0) {
		return;
	}
	char buf[EDGELESS_F64_BUF];
	size_t n = edgeless_format_f64(g.min + (g.max - g.min) * next(), 2, buf);
	edgeless_cast("output", buf, n);
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
