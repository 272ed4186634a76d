/* busy: a function that does a fixed amount of work per call, for load
 * tests: the "work" parameter of the call's JSON object (default 1) is in
 * units of a million loop iterations. It replies "done". */
#include "edgeless.h"

#include <stdlib.h>
#include <string.h>

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	(void)payload;
	(void)payload_len;
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	long work = 1;
	for (size_t i = 0; i + 7 < payload_len; i++) {
		if (memcmp(payload + i, "\"work\"", 6) == 0) {
			size_t j = i + 6;
			while (j < payload_len && (payload[j] == ':' || payload[j] == ' ' || payload[j] == '"')) {
				j++;
			}
			work = 0;
			while (j < payload_len && payload[j] >= '0' && payload[j] <= '9') {
				work = work * 10 + (payload[j++] - '0');
			}
			break;
		}
	}
	/* volatile keeps the compiler from removing the loop. */
	volatile long x = 0;
	for (long k = 0; k < work * 1000000; k++) {
		x += k;
	}
	(void)x;
	static const char done[] = "done";
	*reply = malloc(sizeof done - 1);
	if (*reply == NULL) {
		return EDGELESS_ERR;
	}
	memcpy(*reply, done, sizeof done - 1);
	*reply_len = sizeof done - 1;
	return EDGELESS_REPLY;
}

void handle_stop(void) {
}
