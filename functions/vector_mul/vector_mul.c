/* vector_mul: one stage of the vector-mul-chain benchmark workflow, a ring
 * client -> f0 -> ... -> client. Every stage holds a random input_size x
 * input_size matrix and multiplies the vector it receives by it before
 * casting the product to output "out".
 *
 * The client (is_client=true) runs a closed loop: it starts transaction n by
 * logging telemetry "tbegin" n and casting [n, random vector] to "out"; when
 * transaction n comes back round the ring it logs "tend" n and starts n+1 at
 * once, so window transactions (default 1) are in flight per workflow:
 * window=1 measures latency on an otherwise idle chain, a larger window
 * loads it. A watchdog ticking every timeout_ms refills the window when no
 * transaction completed for a whole period (casts dropped while the
 * workflow was being wired, or lost events): the abandoned ones then count
 * as lost.
 *
 * init-payload: seed=N, is_client=true|false, input_size=N (default 1000),
 * window=N (default 1, at most 4096), timeout_ms=N (default 1000),
 * start_ms=N (delay of the first transactions, default 250). Payload:
 * 8-byte little-endian transaction id, then input_size float32 values. No
 * state. */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

#define TICK "tick"
#define ID_LEN 8

static struct {
	int client;
	size_t n;
	int64_t timeout, window, start;
	float *matrix, *vec, *out;
	uint8_t *buf;
	uint64_t rng, txn, done, watched;
} g;

static uint64_t next_rand(void) {
	/* splitmix64: a fixed, seedable sequence on every target. */
	uint64_t z = (g.rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* rand_unit returns a float in [0, 1). */
static float rand_unit(void) { return (float)(next_rand() >> 40) / (float)(1 << 24); }

static int flag(const uint8_t *p, size_t len, const char *key) {
	const uint8_t *v;
	size_t n;
	return edgeless_init_arg(p, len, key, &v, &n) && n == 4 && memcmp(v, "true", 4) == 0;
}

static void log_txn(const char *what, uint64_t id) {
	char text[EDGELESS_I64_BUF];
	edgeless_format_i64((int64_t)id, text);
	edgeless_telemetry_log(EDGELESS_LOG_TRACE, what, text);
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	g.rng = (uint64_t)edgeless_init_arg_i64(payload, payload_len, "seed", 0);
	g.client = flag(payload, payload_len, "is_client");
	int64_t n = edgeless_init_arg_i64(payload, payload_len, "input_size", 1000);
	g.n = n > 0 && n <= 4096 ? (size_t)n : 1000;
	g.timeout = edgeless_init_arg_i64(payload, payload_len, "timeout_ms", 1000);
	g.start = edgeless_init_arg_i64(payload, payload_len, "start_ms", 250);
	if (g.start < 0) {
		g.start = 250;
	}
	if (g.timeout <= 0) {
		g.timeout = 1000;
	}
	g.window = edgeless_init_arg_i64(payload, payload_len, "window", 1);
	if (g.window < 1 || g.window > 4096) {
		g.window = 1;
	}
	g.matrix = malloc(g.n * g.n * sizeof(float));
	g.vec = malloc(g.n * sizeof(float));
	g.out = malloc(g.n * sizeof(float));
	g.buf = malloc(ID_LEN + g.n * sizeof(float));
	if (!g.matrix || !g.vec || !g.out || !g.buf) {
		edgeless_telemetry_log(EDGELESS_LOG_ERROR, "vector_mul", "out of memory");
		g.n = 0;
		return;
	}
	/* Entries average 1/n, so products keep the magnitude of their input. */
	for (size_t i = 0; i < g.n * g.n; i++) {
		g.matrix[i] = 2.0f * rand_unit() / (float)g.n;
	}
	for (size_t i = 0; i < g.n; i++) {
		g.vec[i] = rand_unit();
	}
	if (g.client) {
		/* The first transactions start once the workflow is likely
		 * wired (start_ms); if their casts are dropped all the same, the
		 * watchdog starts over one period later. */
		edgeless_delayed_cast((uint64_t)g.start, "self", TICK, sizeof TICK - 1);
	}
}

/* LANES partial sums: one accumulator would fix the order of the additions,
 * which neither gcc nor clang may change without -ffast-math, so the loop
 * would stay scalar. Sixteen independent sums become four 4-wide vector
 * accumulators (SSE2 natively, SIMD128 in wasm), enough to hide the latency
 * of the vector add. */
#define LANES 16

/* dot returns the dot product of the n floats at a and b. A pass takes
 * 2 * LANES floats and adds a lane's two products to its sum at once, so a
 * sum grows by one addition a pass. That is for wasm: wasmtime checks the
 * epoch at the loop's head, a check that may call out, so the sums, live
 * across it, are kept on the stack, and every addition to one waits for a
 * store and a load; half as many of them make the loop 1.6-1.8x faster
 * there, and leave the native build as fast as it was. */
static float dot(const float *a, const float *b, size_t n) {
	float acc[LANES] = {0};
	size_t j = 0;
	for (; j + 2 * LANES <= n; j += 2 * LANES) {
#pragma GCC unroll 16
		for (size_t k = 0; k < LANES; k++) {
			acc[k] += a[j + k] * b[j + k] + a[j + LANES + k] * b[j + LANES + k];
		}
	}
	for (; j + LANES <= n; j += LANES) {
#pragma GCC unroll 16
		for (size_t k = 0; k < LANES; k++) {
			acc[k] += a[j + k] * b[j + k];
		}
	}
	float s = 0;
	for (; j < n; j++) {
		s += a[j] * b[j];
	}
	for (size_t k = 0; k < LANES; k++) {
		s += acc[k];
	}
	return s;
}

static void send(uint64_t id, const float *v) {
	memcpy(g.buf, &id, ID_LEN);
	memcpy(g.buf + ID_LEN, v, g.n * sizeof(float));
	edgeless_cast("out", g.buf, ID_LEN + g.n * sizeof(float));
}

static void start(void) {
	g.txn++;
	log_txn("tbegin", g.txn);
	send(g.txn, g.vec);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (g.n == 0) {
		return;
	}
	if (payload_len == sizeof TICK - 1 && memcmp(payload, TICK, payload_len) == 0) {
		if (g.client) {
			if (g.txn == 0 || g.done == g.watched) {
				for (int64_t k = 0; k < g.window; k++) {
					start();
				}
			}
			g.watched = g.done;
			edgeless_delayed_cast((uint64_t)g.timeout, "self", TICK, sizeof TICK - 1);
		}
		return;
	}
	if (payload_len != ID_LEN + g.n * sizeof(float)) {
		return;
	}
	uint64_t id;
	memcpy(&id, payload, ID_LEN);
	if (g.client) {
		log_txn("tend", id);
		/* Only transactions of the current window refill it, so that a
		 * straggler after a watchdog restart does not widen the window. */
		if (id + (uint64_t)g.window > g.txn) {
			g.done++;
			start();
		}
		return;
	}
	memcpy(g.vec, payload + ID_LEN, g.n * sizeof(float));
	for (size_t i = 0; i < g.n; i++) {
		g.out[i] = dot(g.matrix + i * g.n, g.vec, g.n);
	}
	send(id, g.out);
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
