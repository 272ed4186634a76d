/* matrix_mul: one stage of the matrix-mul-chain benchmark workflow
 * f0 -> f1 -> ... -> fn. Every stage holds a random matrix_size x
 * matrix_size matrix, multiplies the matrix it receives by it and casts the
 * product to each output "out-<k>" listed in outputs.
 *
 * The first stage (is_first=true) starts the transactions. With
 * inter_arrival=MS > 0 it starts one every MS milliseconds (open loop) and
 * the last stage (is_last=true) logs their end; with inter_arrival=0 the
 * chain is circular (the last stage's out-0 is mapped back to f0) and f0
 * starts transaction n+1 when n comes back, with a watchdog as in
 * vector_mul. A transaction starts with telemetry "tbegin" n and ends with
 * "tend" n.
 *
 * init-payload: seed=N, inter_arrival=MS, is_first=true|false,
 * is_last=true|false, matrix_size=N (default 10), outputs=0:1:... (default
 * none), timeout_ms=N (default 1000), start_ms=N (delay of the first
 * transaction of a circular chain, default 250). Payload: 8-byte little-endian
 * transaction id, then matrix_size^2 float32 values. No state. */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

#define TICK "tick"
#define NEXT "next"
#define ID_LEN 8
#define MAX_OUTPUTS 20

static struct {
	int first, last;
	int64_t interval, timeout, start;
	size_t n;
	int outputs[MAX_OUTPUTS];
	size_t n_outputs;
	float *matrix, *in, *out;
	uint8_t *buf;
	uint64_t rng, txn, watched;
} g;

static uint64_t next_rand(void) {
	uint64_t z = (g.rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

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

/* parse_outputs reads "0:1:5" into g.outputs. */
static void parse_outputs(const uint8_t *p, size_t len) {
	const uint8_t *v;
	size_t n;
	g.n_outputs = 0;
	if (!edgeless_init_arg(p, len, "outputs", &v, &n)) {
		return;
	}
	size_t i = 0;
	while (i < n && g.n_outputs < MAX_OUTPUTS) {
		size_t j = i;
		while (j < n && v[j] != ':') {
			j++;
		}
		int64_t k;
		if (edgeless_parse_i64(v + i, j - i, &k) && k >= 0 && k < MAX_OUTPUTS) {
			g.outputs[g.n_outputs++] = (int)k;
		}
		i = j + 1;
	}
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	g.rng = (uint64_t)edgeless_init_arg_i64(payload, payload_len, "seed", 0);
	g.first = flag(payload, payload_len, "is_first");
	g.last = flag(payload, payload_len, "is_last");
	g.interval = edgeless_init_arg_i64(payload, payload_len, "inter_arrival", 0);
	g.timeout = edgeless_init_arg_i64(payload, payload_len, "timeout_ms", 1000);
	g.start = edgeless_init_arg_i64(payload, payload_len, "start_ms", 250);
	if (g.start < 0) {
		g.start = 250;
	}
	if (g.timeout <= 0) {
		g.timeout = 1000;
	}
	int64_t n = edgeless_init_arg_i64(payload, payload_len, "matrix_size", 10);
	g.n = n > 0 && n <= 1024 ? (size_t)n : 10;
	parse_outputs(payload, payload_len);
	size_t cells = g.n * g.n;
	g.matrix = malloc(cells * sizeof(float));
	g.in = malloc(cells * sizeof(float));
	g.out = malloc(cells * sizeof(float));
	g.buf = malloc(ID_LEN + cells * sizeof(float));
	if (!g.matrix || !g.in || !g.out || !g.buf) {
		edgeless_telemetry_log(EDGELESS_LOG_ERROR, "matrix_mul", "out of memory");
		g.n = 0;
		return;
	}
	for (size_t i = 0; i < cells; i++) {
		g.matrix[i] = 2.0f * rand_unit() / (float)g.n;
		g.in[i] = rand_unit();
	}
	if (g.first) {
		edgeless_delayed_cast(g.interval > 0 ? (uint64_t)g.interval : (uint64_t)g.start, "self", TICK, sizeof TICK - 1);
	}
}

/* LANES columns per step of axpy: a fixed-count inner loop is vectorised
 * by gcc at -O2 (its cheap cost model refuses loops of unknown count that
 * would need a scalar epilogue) as by clang. */
#define LANES 16

/* axpy adds a*x to y, n floats each. */
static void axpy(float *restrict y, float a, const float *restrict x, size_t n) {
	size_t j = 0;
	for (; j + LANES <= n; j += LANES) {
#pragma GCC unroll 16
		for (size_t k = 0; k < LANES; k++) {
			y[j + k] += a * x[j + k];
		}
	}
	for (; j < n; j++) {
		y[j] += a * x[j];
	}
}

/* multiply multiplies g.in by the matrix into g.out. Row i of the product
 * is the sum over k of in[i][k] times row k of the matrix: the innermost
 * loop then walks both matrices with stride 1 and vectorises, and every
 * element still sums its terms in the order k = 0, 1, ... */
static void multiply(void) {
	size_t n = g.n;
	memset(g.out, 0, n * n * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < n; k++) {
			axpy(g.out + i * n, g.in[i * n + k], g.matrix + k * n, n);
		}
	}
}

/* multiply_send multiplies and casts [id, product] to every output. */
static void multiply_send(uint64_t id) {
	multiply();
	size_t len = ID_LEN + g.n * g.n * sizeof(float);
	memcpy(g.buf, &id, ID_LEN);
	memcpy(g.buf + ID_LEN, g.out, g.n * g.n * sizeof(float));
	for (size_t k = 0; k < g.n_outputs; k++) {
		char name[8 + EDGELESS_I64_BUF] = "out-";
		edgeless_format_i64(g.outputs[k], name + 4);
		edgeless_cast(name, g.buf, len);
	}
}

static void start(void) {
	g.txn++;
	log_txn("tbegin", g.txn);
	if (!g.last) {
		multiply_send(g.txn);
		return;
	}
	/* A chain of one: the transaction is the multiplication, and a
	 * circular one continues through the instance's own mailbox. */
	multiply();
	log_txn("tend", g.txn);
	if (g.interval == 0) {
		edgeless_cast("self", NEXT, sizeof NEXT - 1);
	}
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (g.n == 0) {
		return;
	}
	if (payload_len == sizeof TICK - 1 && memcmp(payload, TICK, payload_len) == 0) {
		if (!g.first) {
			return;
		}
		if (g.interval > 0) {
			start();
			edgeless_delayed_cast((uint64_t)g.interval, "self", TICK, sizeof TICK - 1);
			return;
		}
		if (g.txn == 0 || g.txn == g.watched) {
			start();
		}
		g.watched = g.txn;
		edgeless_delayed_cast((uint64_t)g.timeout, "self", TICK, sizeof TICK - 1);
		return;
	}
	if (payload_len == sizeof NEXT - 1 && memcmp(payload, NEXT, payload_len) == 0) {
		start();
		return;
	}
	if (payload_len != ID_LEN + g.n * g.n * sizeof(float)) {
		return;
	}
	uint64_t id;
	memcpy(&id, payload, ID_LEN);
	if (g.first && g.interval == 0) {
		/* Circular chain: the transaction came back round. */
		log_txn("tend", id);
		if (id == g.txn) {
			start();
		}
		return;
	}
	memcpy(g.in, payload + ID_LEN, g.n * g.n * sizeof(float));
	multiply_send(id);
	if (g.last && g.interval > 0) {
		log_txn("tend", id);
	}
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
