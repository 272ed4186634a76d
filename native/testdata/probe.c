/* probe: a test function exercising the host calls and the threading rules
 * of the native ABI through the C SDK. Each cast payload is a command:
 *
 *   raw     call_raw the sender with "q" and cast the reply to "out"
 *   self    cast_raw "me" to its own id (edgeless_slf)
 *   bin     sync the 3 bytes "a\0b" and log them at level 2
 *   thread  cast "from-thread" from a new thread (refused by the node),
 *           then "after-thread" from the handler's thread
 *
 * A call answers with its payload, an empty payload with an empty reply. */
#include "edgeless.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static bool is(const uint8_t *p, size_t n, const char *cmd) {
	return n == strlen(cmd) && memcmp(p, cmd, n) == 0;
}

static void *stray(void *arg) {
	(void)arg;
	edgeless_cast("out", "from-thread", 11);
	return NULL;
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)payload;
	(void)payload_len;
	(void)state;
	(void)state_len;
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	if (is(payload, payload_len, "raw")) {
		uint8_t *reply;
		size_t reply_len;
		if (edgeless_call_raw(src, "q", 1, &reply, &reply_len) == EDGELESS_REPLY) {
			edgeless_cast("out", reply, reply_len);
			free(reply);
		}
	} else if (is(payload, payload_len, "self")) {
		edgeless_instance_id id;
		edgeless_slf(&id);
		edgeless_cast_raw(id, "me", 2);
	} else if (is(payload, payload_len, "bin")) {
		edgeless_sync("a\0b", 3);
		edgeless_telemetry_log_n(EDGELESS_LOG_WARN, "probe", "a\0b", 3);
	} else if (is(payload, payload_len, "thread")) {
		pthread_t t;
		if (pthread_create(&t, NULL, stray, NULL) == 0) {
			pthread_join(t, NULL);
		}
		edgeless_cast("out", "after-thread", 12);
	}
}

edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len) {
	(void)src;
	return edgeless_reply(reply, reply_len, payload, payload_len);
}

void handle_stop(void) {
}
