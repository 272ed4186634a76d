/*
 * edgeless.h - C API for writing EDGELESS functions.
 *
 * A function is one C file that includes this header and defines the four
 * handlers below (handle_init, handle_cast, handle_call, handle_stop). It
 * talks to the platform only through the edgeless_* calls declared here, so
 * the same source builds for every target the SDK supports:
 *
 *   wasm32 (clang --target=wasm32-wasi -mexec-model=reactor): link with
 *   edgeless.c and edgeless_wasm.c. edgeless_wasm.c exports the module ABI
 *   (handle_*_asm, edgeless_mem_*, memory; the reactor start-up code adds
 *   _initialize, which the host calls once after instantiation) and adapts
 *   it to the handlers; the host calls are imports from module "env".
 *   A function's source never sees any of this.
 *
 *   native (gcc -shared -fPIC -fvisibility=hidden -I../native): link with
 *   edgeless.c and edgeless_native.c, which implements the C ABI of
 *   native/edgeless_native.h: the node loads the .so into its own process
 *   and makes the host calls through a table it hands over at load time.
 *   The node maps a separate copy of the library per instance, so statics
 *   are per instance on both targets. Nothing isolates a native function
 *   from the node: a crash in it stops the node.
 *
 * Memory ownership, in one place:
 *
 *   - Buffers passed TO a handler (payload, state) are owned by the
 *     platform and valid only until the handler returns. Copy what you keep.
 *     A missing payload or state is passed as NULL with length 0.
 *   - A reply returned FROM handle_call must be allocated with malloc (or be
 *     NULL with length 0). The SDK takes ownership and frees it once the
 *     platform has copied it; the function must not touch it afterwards.
 *   - Buffers passed TO an edgeless_* host call (output names, payloads, log
 *     messages, state) are borrowed: the platform copies them during the
 *     call and the caller may reuse or free them as soon as it returns.
 *   - A reply returned FROM edgeless_call / edgeless_call_raw is allocated
 *     with malloc and owned by the caller, who releases it with free().
 *
 * Payloads are byte strings with explicit lengths and may contain NUL bytes.
 * Output names and log targets are NUL-terminated C strings. The reference
 * platform moves payloads as UTF-8 text, so binary data meant to cross nodes
 * should be encoded (e.g. base64).
 *
 * Handlers of one instance never run concurrently; a blocking edgeless_call
 * holds the instance until the callee answers.
 */
#ifndef EDGELESS_H
#define EDGELESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* edgeless_instance_id names one function instance: the UUID of the node it
 * runs on and the UUID of the instance, each as 16 raw bytes in RFC 4122
 * byte order. */
typedef struct edgeless_instance_id {
	uint8_t node[16];
	uint8_t component[16];
} edgeless_instance_id;

/* edgeless_call_ret is the outcome of a call, both for handle_call and for
 * edgeless_call. The values are the ones on the wire. */
typedef enum edgeless_call_ret {
	EDGELESS_NO_REPLY = 0, /* handled, nothing to answer */
	EDGELESS_REPLY = 1,    /* handled, the reply buffer holds the answer */
	EDGELESS_ERR = 2       /* failed; also the result of an unknown output */
} edgeless_call_ret;

/* edgeless_log_level is the severity of a telemetry log entry. */
typedef enum edgeless_log_level {
	EDGELESS_LOG_ERROR = 1,
	EDGELESS_LOG_WARN = 2,
	EDGELESS_LOG_INFO = 3,
	EDGELESS_LOG_DEBUG = 4,
	EDGELESS_LOG_TRACE = 5
} edgeless_log_level;

/* ------------------------------------------------------------------------
 * Handlers: defined by the function author, called by the platform.
 * ------------------------------------------------------------------------ */

/* handle_init runs once, before any other handler. payload is the
 * workflow's init-payload (NULL, 0 when the workflow sets none); state is
 * the last buffer the instance (or its predecessor) passed to edgeless_sync
 * (NULL, 0 when there is none). Both are valid only during the call. */
void handle_init(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len);

/* handle_cast handles an asynchronous event from src. payload is valid only
 * during the call; an empty payload is passed as NULL, 0. */
void handle_cast(edgeless_instance_id src, const uint8_t *payload, size_t payload_len);

/* handle_call handles a synchronous request from src and returns its
 * outcome. On EDGELESS_REPLY the function stores in *reply a buffer it
 * allocated with malloc (or NULL) and its length in *reply_len; the SDK frees
 * it after the platform has copied it. *reply and *reply_len are NULL and 0
 * on entry; for the other outcomes a buffer left in *reply is freed and not
 * sent. payload is valid only during the call; an empty payload is passed as
 * NULL, 0. Return values other than the three outcomes count as
 * EDGELESS_ERR. */
edgeless_call_ret handle_call(edgeless_instance_id src, const uint8_t *payload, size_t payload_len,
                              uint8_t **reply, size_t *reply_len);

/* handle_stop runs once when the instance is stopped; no other handler runs
 * after it. */
void handle_stop(void);

/* ------------------------------------------------------------------------
 * Host calls: provided by the platform, callable from any handler.
 * Output names are the workflow's output channels; "self" is the instance
 * itself. All input buffers are borrowed for the duration of the call.
 * ------------------------------------------------------------------------ */

/* edgeless_cast sends payload asynchronously to the instance mapped to
 * output. An output that is not mapped is ignored. */
void edgeless_cast(const char *output, const void *payload, size_t payload_len);

/* edgeless_cast_raw sends payload asynchronously to an explicit instance. */
void edgeless_cast_raw(edgeless_instance_id target, const void *payload, size_t payload_len);

/* edgeless_call sends payload to the instance mapped to output and blocks
 * until it answers. On EDGELESS_REPLY *reply is a malloc'd buffer of
 * *reply_len bytes owned by the caller (free it with free(); it may be NULL
 * when the reply is empty); otherwise *reply is NULL and *reply_len is 0.
 * reply and reply_len must not be NULL. Calling an output that is not
 * mapped is an error the platform may answer by stopping the instance. */
edgeless_call_ret edgeless_call(const char *output, const void *payload, size_t payload_len,
                                uint8_t **reply, size_t *reply_len);

/* edgeless_call_raw is edgeless_call to an explicit instance. */
edgeless_call_ret edgeless_call_raw(edgeless_instance_id target, const void *payload, size_t payload_len,
                                    uint8_t **reply, size_t *reply_len);

/* edgeless_delayed_cast casts payload to output after delay_ms
 * milliseconds. It returns at once; the platform owns the timer. */
void edgeless_delayed_cast(uint64_t delay_ms, const char *output, const void *payload, size_t payload_len);

/* edgeless_slf stores the identity of the calling instance in *id. */
void edgeless_slf(edgeless_instance_id *id);

/* edgeless_sync persists state; the platform hands the latest state back to
 * handle_init when the instance is re-created (after a migration or a node
 * failure). Each call replaces the previous state. */
void edgeless_sync(const void *state, size_t state_len);

/* edgeless_telemetry_log emits a log entry at level. target names the
 * source of the entry (the orchestrator may turn it into a metric name) and
 * msg is the text; both are NUL-terminated. */
void edgeless_telemetry_log(edgeless_log_level level, const char *target, const char *msg);

/* edgeless_telemetry_log_n is edgeless_telemetry_log with a message of
 * explicit length, e.g. a payload that is not NUL-terminated. */
void edgeless_telemetry_log_n(edgeless_log_level level, const char *target, const void *msg, size_t msg_len);

/* ------------------------------------------------------------------------
 * Helpers: plain C, the same on every target (edgeless.c).
 * ------------------------------------------------------------------------ */

/* edgeless_init_arg looks up key in an init-payload of the form
 * "k1=v1,k2=v2". Items are separated by ',', the key ends at the first '='
 * and the value runs to the next ',' (so a value cannot contain ',', but may
 * contain '='); spaces around keys and values are ignored. When key occurs
 * more than once the last occurrence wins. On success *value points INTO
 * payload (not NUL-terminated, valid as long as payload is) and *value_len is
 * its length; it returns false when key is absent or payload is NULL. */
bool edgeless_init_arg(const uint8_t *payload, size_t payload_len, const char *key,
                       const uint8_t **value, size_t *value_len);

/* edgeless_init_arg_i64 returns the value of key in an init-payload parsed
 * as a decimal integer, or fallback when the key is absent or its value is
 * not a valid integer. */
int64_t edgeless_init_arg_i64(const uint8_t *payload, size_t payload_len, const char *key, int64_t fallback);

/* edgeless_parse_i64 parses text as a decimal integer with an optional sign,
 * ignoring surrounding ASCII whitespace. It stores the result in *out and
 * returns true, or returns false (leaving *out alone) on empty input, any
 * other character, or overflow. */
bool edgeless_parse_i64(const uint8_t *text, size_t text_len, int64_t *out);

/* EDGELESS_I64_BUF is the buffer size edgeless_format_i64 needs: 20
 * characters for "-9223372036854775808" and a NUL. */
#define EDGELESS_I64_BUF 21

/* edgeless_format_i64 writes v in decimal to buf, which must hold at least
 * EDGELESS_I64_BUF bytes, NUL-terminates it and returns the number of
 * characters written (without the NUL). */
size_t edgeless_format_i64(int64_t v, char *buf);

/* EDGELESS_F64_BUF is the buffer size edgeless_format_f64 needs. */
#define EDGELESS_F64_BUF 32

/* edgeless_parse_f64 parses text as a decimal number ("-12", "3.25",
 * "1e3"), ignoring surrounding ASCII whitespace. It stores the result in *out
 * and returns true, or returns false (leaving *out alone) on empty input or
 * any other character. */
bool edgeless_parse_f64(const uint8_t *text, size_t text_len, double *out);

/* edgeless_format_f64 writes v in fixed-point decimal with `decimals` digits
 * after the point (at most 9) to buf, which must hold EDGELESS_F64_BUF
 * bytes, NUL-terminates it and returns its length. Values beyond +-9.2e18
 * and NaN are written as "nan". */
size_t edgeless_format_f64(double v, int decimals, char *buf);

/* edgeless_reply is a convenience for handle_call: it copies len bytes of
 * data into a new malloc'd buffer, stores it in *reply and *reply_len and
 * returns EDGELESS_REPLY, or EDGELESS_ERR when the allocation fails. */
edgeless_call_ret edgeless_reply(uint8_t **reply, size_t *reply_len, const void *data, size_t len);

/* ------------------------------------------------------------------------
 * wasm32 module ABI. Implemented by edgeless_wasm.c; function authors never
 * call these. Pointers and lengths are 32-bit in wasm32; ids are 16 raw
 * bytes each.
 * ------------------------------------------------------------------------ */
#ifdef __wasm__

#define EDGELESS_WASM_EXPORT(name) __attribute__((export_name(#name)))
#define EDGELESS_WASM_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))

/* Exports: memory management. The host allocates every buffer it passes in
 * with edgeless_mem_alloc and releases it with edgeless_mem_free after the
 * handler returns; it also allocates replies to the guest's calls with
 * edgeless_mem_alloc, which the guest then owns. edgeless_mem_clear is
 * called before each event; with malloc there is nothing to reset. */
EDGELESS_WASM_EXPORT(edgeless_mem_alloc) uint8_t *edgeless_mem_alloc(size_t len);
EDGELESS_WASM_EXPORT(edgeless_mem_free) void edgeless_mem_free(uint8_t *ptr, size_t len);
EDGELESS_WASM_EXPORT(edgeless_mem_clear) void edgeless_mem_clear(void);

/* Exports: handlers. handle_call_asm returns an edgeless_call_ret; on
 * EDGELESS_REPLY it writes the reply's address and length (4 bytes each,
 * little-endian) into the host-provided slots. The host copies the reply
 * and does not free it. A payload or state of length 0 means "none". */
EDGELESS_WASM_EXPORT(handle_init_asm)
void handle_init_asm(const uint8_t *payload, size_t payload_len, const uint8_t *state, size_t state_len);
EDGELESS_WASM_EXPORT(handle_cast_asm)
void handle_cast_asm(const uint8_t *node_id, const uint8_t *component_id, const uint8_t *payload,
                     size_t payload_len);
EDGELESS_WASM_EXPORT(handle_call_asm)
int32_t handle_call_asm(const uint8_t *node_id, const uint8_t *component_id, const uint8_t *payload,
                        size_t payload_len, uint32_t *out_ptr, uint32_t *out_len);
EDGELESS_WASM_EXPORT(handle_stop_asm) void handle_stop_asm(void);

/* Imports from module "env". Every buffer is borrowed for the call. For
 * call_asm and call_raw_asm the host writes the reply's address and length
 * into the two slots after allocating the reply with edgeless_mem_alloc. */
EDGELESS_WASM_IMPORT(cast_raw_asm)
void edgeless_import_cast_raw(const uint8_t *node_id, const uint8_t *component_id, const void *payload,
                              size_t payload_len);
EDGELESS_WASM_IMPORT(cast_asm)
void edgeless_import_cast(const char *target, size_t target_len, const void *payload, size_t payload_len);
EDGELESS_WASM_IMPORT(call_raw_asm)
int32_t edgeless_import_call_raw(const uint8_t *node_id, const uint8_t *component_id, const void *payload,
                                 size_t payload_len, void *out_ptr, void *out_len);
EDGELESS_WASM_IMPORT(call_asm)
int32_t edgeless_import_call(const char *target, size_t target_len, const void *payload, size_t payload_len,
                             void *out_ptr, void *out_len);
EDGELESS_WASM_IMPORT(telemetry_log_asm)
void edgeless_import_telemetry_log(int32_t level, const char *target, size_t target_len, const void *msg,
                                   size_t msg_len);
EDGELESS_WASM_IMPORT(slf_asm) void edgeless_import_slf(uint8_t *node_id, uint8_t *component_id);
EDGELESS_WASM_IMPORT(delayed_cast_asm)
void edgeless_import_delayed_cast(int64_t delay_ms, const char *target, size_t target_len, const void *payload,
                                  size_t payload_len);
EDGELESS_WASM_IMPORT(sync_asm) void edgeless_import_sync(const void *state, size_t state_len);

#endif /* __wasm__ */

#ifdef __cplusplus
}
#endif

#endif /* EDGELESS_H */
