/* bench_mapreduce: a stage s<k> of the map-reduce benchmark workflow
 * trigger -> s0 -> {p0-j} -> s1 -> {p1-j} -> ... -> sN. A stage waits until
 * every one of its inputs has delivered transaction n (the first stage has
 * one input, the trigger), then casts the payload to every output
 * "out-<j>"; the last stage (is_last=true) logs telemetry "tend" n instead.
 *
 * init-payload: is_first=true|false, is_last=true|false, inputs=0:1:...
 * (the workers of the previous stage; empty for the first stage),
 * outputs=0:1:... (the workers of the next stage), use_base64 (accepted and
 * ignored). Payload: 8-byte little-endian transaction id, then data.
 * Partial transactions are kept in a table of PENDING slots indexed by id:
 * one that is overwritten before it completes is lost. No state. */
#include "edgeless.h"

#include <string.h>

#define ID_LEN 8
#define MAX_OUTPUTS 64
#define PENDING 256

static struct {
	int last;
	size_t n_inputs, n_outputs;
	int outputs[MAX_OUTPUTS];
	struct {
		uint64_t id;
		size_t got;
	} pending[PENDING];
} g;

/* count_list parses "0:1:5" into out (when not NULL) and returns how many
 * numbers it holds. */
static size_t count_list(const uint8_t *p, size_t len, const char *key, int *out) {
	const uint8_t *v;
	size_t n, count = 0;
	if (!edgeless_init_arg(p, len, key, &v, &n)) {
		return 0;
	}
	size_t i = 0;
	while (i < n && count < MAX_OUTPUTS) {
		size_t j = i;
		while (j < n && v[j] != ':') {
			j++;
		}
		int64_t k;
		if (edgeless_parse_i64(v + i, j - i, &k) && k >= 0) {
			if (out) {
				out[count] = (int)k;
			}
			count++;
		}
		i = j + 1;
	}
	return count;
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	const uint8_t *v;
	size_t n;
	g.last = edgeless_init_arg(payload, payload_len, "is_last", &v, &n) && n == 4 && memcmp(v, "true", 4) == 0;
	g.n_inputs = count_list(payload, payload_len, "inputs", NULL);
	if (g.n_inputs == 0) {
		g.n_inputs = 1;
	}
	g.n_outputs = count_list(payload, payload_len, "outputs", g.outputs);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (payload_len < ID_LEN) {
		return;
	}
	uint64_t id;
	memcpy(&id, payload, ID_LEN);
	if (g.n_inputs > 1) {
		size_t slot = (size_t)(id % PENDING);
		if (g.pending[slot].id != id) {
			g.pending[slot].id = id;
			g.pending[slot].got = 0;
		}
		if (++g.pending[slot].got < g.n_inputs) {
			return;
		}
		g.pending[slot].id = 0;
	}
	if (g.last) {
		char text[EDGELESS_I64_BUF];
		edgeless_format_i64((int64_t)id, text);
		edgeless_telemetry_log(EDGELESS_LOG_TRACE, "tend", text);
		return;
	}
	for (size_t k = 0; k < g.n_outputs; k++) {
		char name[8 + EDGELESS_I64_BUF] = "out-";
		edgeless_format_i64(g.outputs[k], name + 4);
		edgeless_cast(name, payload, payload_len);
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
