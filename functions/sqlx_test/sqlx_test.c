/* sqlx_test: EDGELESS's sqlx example function. It keeps one row of table
 * WorkflowState, keyed by the workflow id (the sqlx resource binds $1 to
 * it), through the resource mapped to output "database":
 *   - handle_init INSERTs {"foo":<init-payload>,"bar":"initial"};
 *   - each cast (a reading from sensor_simulator) SELECTs the row and, when
 *     the reply is a row, UPDATEs it to {"foo":<reading>,"bar":"subsequent"};
 *   - handle_stop DELETEs the row.
 * Every reply is logged at info level with target "sqlx_test". No state. */
#include "edgeless.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* query calls the database with stmt, logs the reply and returns whether it
 * is a row (a JSON object). */
static bool query(const char *stmt) {
	uint8_t *reply = NULL;
	size_t reply_len = 0;
	edgeless_call_ret ret = edgeless_call("database", stmt, strlen(stmt), &reply, &reply_len);
	bool row = ret == EDGELESS_REPLY && reply_len > 0 && reply[0] == '{';
	if (ret == EDGELESS_REPLY) {
		edgeless_telemetry_log_n(EDGELESS_LOG_INFO, "sqlx_test", reply, reply_len);
	} else {
		edgeless_telemetry_log(EDGELESS_LOG_ERROR, "sqlx_test", "error when calling the database");
	}
	free(reply);
	return row;
}

/* value formats text as a JSON number with one decimal, as EDGELESS's f32. */
static void value(const uint8_t *text, size_t len, char *buf) {
	double v = 0;
	edgeless_parse_f64(text, len, &v);
	edgeless_format_f64(v, 1, buf);
}

void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len) {
	(void)state;
	(void)state_len;
	char v[EDGELESS_F64_BUF], stmt[160];
	value(payload, payload_len, v);
	snprintf(stmt, sizeof stmt, "INSERT INTO WorkflowState (id, metadata) Values($1, '{\"foo\":%s,\"bar\":\"initial\"}')", v);
	query(stmt);
}

void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len) {
	(void)src;
	if (!query("SELECT id, metadata FROM WorkflowState WHERE id=$1")) {
		return;
	}
	char v[EDGELESS_F64_BUF], stmt[160];
	value(payload, payload_len, v);
	snprintf(stmt, sizeof stmt, "UPDATE WorkflowState SET metadata='{\"foo\":%s,\"bar\":\"subsequent\"}'  WHERE id = $1", v);
	query(stmt);
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
	query("DELETE FROM WorkflowState WHERE id=$1");
}
