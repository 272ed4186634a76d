/*
 * edgeless_native.h - the C ABI between an edgeless node and a native
 * function: a shared object (ELF .so) that the node loads into its own
 * process with dlopen. docs/abi.md ("Native functions") explains it in
 * prose; this header is the normative definition.
 *
 * Any language with a C FFI can implement it. Functions written with the C
 * SDK (functions/sdk/c) never see it: edgeless_native.c implements it on top
 * of the SDK's handlers and host calls, so the same source builds to a .so
 * and to a wasm32 module.
 *
 * Life of an instance, all on one thread at a time:
 *
 *   1. The node writes the code to a new file, dlopens it (RTLD_NOW |
 *      RTLD_LOCAL) and removes the file. Every instance gets its own file,
 *      so the dynamic linker maps a separate copy of the library for each:
 *      static variables are per instance.
 *   2. It reads edgeless_native_abi_version and refuses the library unless
 *      it equals EDGELESS_NATIVE_ABI_VERSION.
 *   3. It calls edgeless_native_init(host, ctx) once. The function keeps
 *      both pointers; they stay valid until the library is unloaded.
 *   4. edgeless_native_handle_init once, then any number of
 *      edgeless_native_handle_cast and edgeless_native_handle_call, then
 *      edgeless_native_handle_stop once (not when the instance failed).
 *   5. dlclose.
 *
 * Buffer ownership, in one place:
 *
 *   - Buffers the node passes TO a handler (payload, state, source ids) are
 *     owned by the node and valid only until the handler returns. Copy what
 *     you keep. An empty payload or state is passed as NULL with length 0.
 *   - The reply of edgeless_native_handle_call is owned by the function. It
 *     must stay valid until the next edgeless_native_handle_* call on the
 *     instance, or until the library is unloaded; the node copies it as soon
 *     as the handler returns and never frees it.
 *   - Buffers the function passes TO a host call (output names, payloads,
 *     state, log text) are borrowed: the node copies what it keeps before
 *     the host call returns.
 *   - The reply a host call (call, call_raw) returns is owned by the node
 *     and valid until the next host call of the instance or the end of the
 *     running handler, whichever comes first. Copy it to keep it; never free
 *     it.
 *
 * Payloads are byte strings with explicit lengths and may contain NUL bytes;
 * output names and log targets also carry explicit lengths and need no NUL.
 * Instance ids are 16-byte UUIDs in RFC 4122 byte order: a node id and a
 * component id.
 *
 * Threads: host calls are accepted only from the thread running a handler
 * of the instance, while it runs. Anything else (a call from edgeless_native_init,
 * from a thread the function started, or after the handler returned) is
 * refused: casts are dropped and calls return EDGELESS_NATIVE_ERR. A
 * function must not leave threads running in the library after
 * edgeless_native_handle_stop: the node unloads it afterwards.
 *
 * Isolation: none. The function runs in the node's address space with the
 * node's privileges; a crash, an abort or a stray write takes the node
 * down, and a handler that never returns blocks its instance forever. Run
 * native functions only on nodes dedicated to them, from trusted sources.
 */
#ifndef EDGELESS_NATIVE_H
#define EDGELESS_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* EDGELESS_NATIVE_ABI_VERSION is the version this header describes. Any
 * change to the symbols, their types or the table below changes it. */
#define EDGELESS_NATIVE_ABI_VERSION 1u

/* EDGELESS_NATIVE_EXPORT marks the symbols a function exports. Build with
 * -fvisibility=hidden so that nothing else is exported. */
#define EDGELESS_NATIVE_EXPORT __attribute__((visibility("default")))

/* Outcomes of a call, for edgeless_native_handle_call and the host's call
 * and call_raw; the values are the ones on the wire. Any other value
 * returned by edgeless_native_handle_call counts as EDGELESS_NATIVE_ERR. */
#define EDGELESS_NATIVE_NO_REPLY 0
#define EDGELESS_NATIVE_REPLY 1
#define EDGELESS_NATIVE_ERR 2

/* edgeless_native_host is the node's table of host calls, handed to
 * edgeless_native_init. It is immutable and shared by every instance in the
 * process; ctx, the first argument of every entry, tells the node which
 * instance calls. All ids are 16 bytes. */
typedef struct edgeless_native_host {
	/* abi_version is EDGELESS_NATIVE_ABI_VERSION as the node knows it. */
	uint32_t abi_version;
	/* size is sizeof(edgeless_native_host) as the node knows it, so that
	 * a function can check the entries it uses are there. */
	uint32_t size;

	/* cast sends payload to the instance mapped to output channel
	 * output ("self" is the instance itself). An unmapped output is
	 * dropped. */
	void (*cast)(void *ctx, const char *output, size_t output_len, const uint8_t *payload, size_t payload_len);
	/* cast_raw sends payload to an explicit instance. */
	void (*cast_raw)(void *ctx, const uint8_t *node, const uint8_t *component, const uint8_t *payload,
	                 size_t payload_len);
	/* call sends payload to the instance mapped to output and blocks until
	 * it answers, returning the outcome. On EDGELESS_NATIVE_REPLY *reply and
	 * *reply_len hold the answer (owned by the node, see above; NULL and 0
	 * when it is empty); otherwise they are NULL and 0. reply and reply_len
	 * must not be NULL. */
	int32_t (*call)(void *ctx, const char *output, size_t output_len, const uint8_t *payload, size_t payload_len,
	                const uint8_t **reply, size_t *reply_len);
	/* call_raw is call to an explicit instance. */
	int32_t (*call_raw)(void *ctx, const uint8_t *node, const uint8_t *component, const uint8_t *payload,
	                    size_t payload_len, const uint8_t **reply, size_t *reply_len);
	/* delayed_cast casts payload to output after delay_ms milliseconds; it
	 * returns at once. */
	void (*delayed_cast)(void *ctx, int64_t delay_ms, const char *output, size_t output_len, const uint8_t *payload,
	                     size_t payload_len);
	/* slf writes the calling instance's node id and component id. */
	void (*slf)(void *ctx, uint8_t *node, uint8_t *component);
	/* sync persists state; the node hands the latest state back to
	 * edgeless_native_handle_init when the instance is re-created. */
	void (*sync)(void *ctx, const uint8_t *state, size_t state_len);
	/* telemetry_log records a log entry; level is 1 error, 2 warn, 3 info,
	 * 4 debug, 5 trace. */
	void (*telemetry_log)(void *ctx, int32_t level, const char *target, size_t target_len, const char *msg,
	                      size_t msg_len);
} edgeless_native_host;

/* ------------------------------------------------------------------------
 * Symbols a native function exports. The node resolves all of them before
 * running anything and refuses a library that lacks one.
 * ------------------------------------------------------------------------ */

/* edgeless_native_abi_version is a data symbol holding the version the
 * function was built for, EDGELESS_NATIVE_ABI_VERSION. */
EDGELESS_NATIVE_EXPORT extern const uint32_t edgeless_native_abi_version;

/* edgeless_native_init receives the node's table and the instance's
 * context, to pass back as the first argument of every host call. It returns
 * 0, or anything else to refuse the node (e.g. a table older than the
 * function needs), which fails the instance's start. It must not make host
 * calls. */
EDGELESS_NATIVE_EXPORT int32_t edgeless_native_init(const edgeless_native_host *host, void *ctx);

/* edgeless_native_handle_init runs once, before any other handler, with the
 * workflow's init-payload and the last state passed to sync (each NULL, 0
 * when absent). */
EDGELESS_NATIVE_EXPORT void edgeless_native_handle_init(const uint8_t *payload, size_t payload_len,
                                                        const uint8_t *state, size_t state_len);

/* edgeless_native_handle_cast handles an asynchronous event from the
 * instance (src_node, src_component). */
EDGELESS_NATIVE_EXPORT void edgeless_native_handle_cast(const uint8_t *src_node, const uint8_t *src_component,
                                                        const uint8_t *payload, size_t payload_len);

/* edgeless_native_handle_call handles a call and returns its outcome. On
 * EDGELESS_NATIVE_REPLY it stores the reply (owned by the function, see
 * above) in *reply and *reply_len, which are NULL and 0 on entry; for the
 * other outcomes they are ignored. */
EDGELESS_NATIVE_EXPORT int32_t edgeless_native_handle_call(const uint8_t *src_node, const uint8_t *src_component,
                                                           const uint8_t *payload, size_t payload_len,
                                                           const uint8_t **reply, size_t *reply_len);

/* edgeless_native_handle_stop runs once when the instance is stopped; no
 * handler runs after it. */
EDGELESS_NATIVE_EXPORT void edgeless_native_handle_stop(void);

#ifdef __cplusplus
}
#endif

#endif /* EDGELESS_NATIVE_H */
