/* trigger: starts the transactions of the map-reduce benchmark workflow.
 * Transaction n is logged as telemetry "tbegin" n and cast to output "out"
 * as [n, size random bytes]; the last stage of the workflow logs its end.
 *
 * init-payload: size=N bytes after the id (default 1000, at most 16 MiB),
 * arrival=c(MS) for a constant interval or e(MS) for exponential intervals
 * of mean MS (default c(1000)), seed=N. out_type and use_base64 of EDGELESS's
 * trigger are accepted and ignored: the payload is always a random vector,
 * and payloads are binary on this platform. Timers are delayed casts of
 * "tick" to "self". No state. */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

#define TICK "tick"
#define ID_LEN 8

static struct {
	size_t size;
	double mean;
	int exponential;
	uint8_t *buf;
	uint64_t rng, txn;
} g;

static uint64_t next_rand(void) {
	uint64_t z = (g.rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ln computes the natural logarithm of x > 0 without libm, so that the
 * native build needs no extra library: x = m * 2^e with m in [1, 2), and
 * ln m from the atanh series, exact to about 1e-10 for m in that range. */
static double ln(double x) {
	int e = 0;
	while (x >= 2.0) {
		x /= 2.0;
		e++;
	}
	while (x < 1.0) {
		x *= 2.0;
		e--;
	}
	double t = (x - 1.0) / (x + 1.0), t2 = t * t, term = t, sum = 0;
	for (int k = 1; k < 40; k += 2) {
		sum += term / k;
		term *= t2;
	}
	return 2.0 * sum + e * 0.6931471805599453;
}

/* next_delay returns the milliseconds until the next transaction. */
static uint64_t next_delay(void) {
	double d = g.mean;
	if (g.exponential) {
		/* u in (0, 1]: never ln(0). */
		double u = (double)((next_rand() >> 11) + 1) / 9007199254740992.0;
		d = -g.mean * ln(u);
	}
	return d < 1.0 ? 1 : (uint64_t)(d + 0.5);
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	g.rng = (uint64_t)edgeless_init_arg_i64(payload, payload_len, "seed", 0);
	int64_t size = edgeless_init_arg_i64(payload, payload_len, "size", 1000);
	g.size = size >= 0 && size <= (16 << 20) ? (size_t)size : 1000;
	g.mean = 1000;
	const uint8_t *v;
	size_t n;
	if (edgeless_init_arg(payload, payload_len, "arrival", &v, &n) && n > 3 && (v[0] == 'c' || v[0] == 'e') &&
	    v[1] == '(' && v[n - 1] == ')') {
		double ms;
		if (edgeless_parse_f64(v + 2, n - 3, &ms) && ms > 0) {
			g.mean = ms;
			g.exponential = v[0] == 'e';
		}
	}
	g.buf = malloc(ID_LEN + g.size);
	if (!g.buf) {
		edgeless_telemetry_log(EDGELESS_LOG_ERROR, "trigger", "out of memory");
		return;
	}
	for (size_t i = 0; i < g.size; i++) {
		g.buf[ID_LEN + i] = (uint8_t)next_rand();
	}
	edgeless_delayed_cast(next_delay(), "self", TICK, sizeof TICK - 1);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (!g.buf || payload_len != sizeof TICK - 1 || memcmp(payload, TICK, payload_len) != 0) {
		return;
	}
	g.txn++;
	char text[EDGELESS_I64_BUF];
	edgeless_format_i64((int64_t)g.txn, text);
	edgeless_telemetry_log(EDGELESS_LOG_TRACE, "tbegin", text);
	memcpy(g.buf, &g.txn, ID_LEN);
	edgeless_cast("out", g.buf, ID_LEN + g.size);
	edgeless_delayed_cast(next_delay(), "self", TICK, sizeof TICK - 1);
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
