/* bench_payload: one stage of the payload-sweep benchmark, a ring
 * client -> f0 -> ... -> client that carries a payload of a fixed size and
 * does no work on it, so that what is measured is the cost of moving the
 * bytes between functions (and nodes).
 *
 * The client (is_client=true) runs a closed loop as vector_mul's does: it
 * starts transaction n by logging telemetry "tbegin" n and casting
 * [n, size - 8 bytes] to "out"; when n comes back round the ring it logs
 * "tend" n and starts n+1, so window transactions (default 1) are in flight.
 * A watchdog ticking every timeout_ms refills the window when nothing
 * completed for a whole period. Other stages cast what they receive to "out"
 * unchanged, straight from the received buffer.
 *
 * init-payload: is_client=true|false, size=N bytes on the wire including the
 * 8-byte little-endian transaction id (8 .. 33554432, default 1024),
 * window=N (1 .. 4096, default 1), timeout_ms=N (default 1000),
 * start_ms=N (delay of the first transactions, default 250). No state. */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

#define TICK "tick"
#define ID_LEN 8
#define MAX_SIZE (32 << 20)

static struct {
	int client;
	size_t size;
	int64_t timeout, window, start;
	uint8_t *buf;
	uint64_t txn, done, watched;
} g;

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
	g.client = flag(payload, payload_len, "is_client");
	int64_t n = edgeless_init_arg_i64(payload, payload_len, "size", 1024);
	g.size = n >= ID_LEN && n <= MAX_SIZE ? (size_t)n : 1024;
	g.timeout = edgeless_init_arg_i64(payload, payload_len, "timeout_ms", 1000);
	if (g.timeout <= 0) {
		g.timeout = 1000;
	}
	g.start = edgeless_init_arg_i64(payload, payload_len, "start_ms", 250);
	if (g.start < 0) {
		g.start = 250;
	}
	g.window = edgeless_init_arg_i64(payload, payload_len, "window", 1);
	if (g.window < 1 || g.window > 4096) {
		g.window = 1;
	}
	if (!g.client) {
		return;
	}
	/* Only the client keeps a buffer: the relays forward the one they
	 * receive. Its content is arbitrary but fixed. */
	g.buf = malloc(g.size);
	if (g.buf == NULL) {
		edgeless_telemetry_log(EDGELESS_LOG_ERROR, "bench_payload", "out of memory");
		g.size = 0;
		return;
	}
	for (size_t i = 0; i < g.size; i++) {
		g.buf[i] = (uint8_t)i;
	}
	edgeless_delayed_cast((uint64_t)g.start, "self", TICK, sizeof TICK - 1);
}

static void start(void) {
	g.txn++;
	log_txn("tbegin", g.txn);
	memcpy(g.buf, &g.txn, ID_LEN);
	edgeless_cast("out", g.buf, g.size);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (!g.client) {
		edgeless_cast("out", payload, payload_len);
		return;
	}
	if (g.size == 0) {
		return;
	}
	if (payload_len == sizeof TICK - 1 && memcmp(payload, TICK, payload_len) == 0) {
		if (g.txn == 0 || g.done == g.watched) {
			for (int64_t k = 0; k < g.window; k++) {
				start();
			}
		}
		g.watched = g.done;
		edgeless_delayed_cast((uint64_t)g.timeout, "self", TICK, sizeof TICK - 1);
		return;
	}
	if (payload_len != g.size) {
		return;
	}
	uint64_t id;
	memcpy(&id, payload, ID_LEN);
	log_txn("tend", id);
	/* Only transactions of the current window refill it, so that a
	 * straggler after a watchdog restart does not widen the window. */
	if (id + (uint64_t)g.window > g.txn) {
		g.done++;
		start();
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
