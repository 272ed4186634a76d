// shim.h is the C side of the sandbox: one call per event from Go into C,
// which drives the guest's allocator and handler through wasmtime's unchecked
// call path, and one trampoline through which every host import reaches Go.

#ifndef EDG_SHIM_H
#define EDG_SHIM_H

#include "wt.h"

// Guest exports the shim calls, indexing edg_inst.fn. The names are in
// edg_export_names; their signatures are checked in Go before a module is
// accepted, because unchecked calls trust them.
enum {
  EDG_FN_ALLOC,
  EDG_FN_FREE,
  EDG_FN_CLEAR,
  EDG_FN_CAST,
  EDG_FN_CALL,
  EDG_FN_INIT,
  EDG_FN_STOP,
  EDG_NFN,
};
extern const char *const edg_export_names[EDG_NFN];

// Host imports in module "env", numbered as Go's hostImports. The
// trampoline queues the two casts itself (edg_inst.casts).
enum {
  EDG_IMP_CAST_RAW,
  EDG_IMP_CAST,
  EDG_IMP_CALL_RAW,
  EDG_IMP_CALL,
  EDG_IMP_TELEMETRY_LOG,
  EDG_IMP_SELF,
  EDG_IMP_DELAYED_CAST,
  EDG_IMP_SYNC,
  EDG_NIMP,
};

// Handlers edg_invoke can run.
enum {
  EDG_CAST,
  EDG_CALL,
  EDG_INIT,
  EDG_STOP,
};

// Results of edg_invoke, edg_instantiate and edg_guest_alloc.
enum {
  EDG_OK,
  EDG_FAIL_WASM, // wasmtime reported a trap or error: edg_inst.trap or .err
  EDG_FAIL_HOST, // the host found a fault: edg_inst.msg and .cause
};

// Why an instance failed when the host decided it (edg_inst.cause).
enum {
  EDG_CAUSE_NONE,
  EDG_CAUSE_FAULT,   // bad pointer, length or reply from the guest
  EDG_CAUSE_OOM,     // the guest allocator returned 0
  EDG_CAUSE_PANIC,   // a host function panicked
  EDG_CAUSE_TIMEOUT, // the budget ran out in a nested guest call
};

// Flags for edg_instantiate.
enum {
  EDG_INST_WASI = 1,
  EDG_INST_INITIALIZE = 2,
};

// edg_rt is one engine with its linker. epoch mirrors the engine's epoch so
// the trampoline can tell how long a host call took without asking wasmtime.
typedef struct edg_rt {
  wasm_engine_t *engine;
  wasmtime_linker_t *linker;
  uint64_t epoch;  // accessed atomically
  uint64_t budget; // epoch ticks a handler may run
  int64_t max_memory;
  bool inherit_stdio;
} edg_rt;

#define EDG_MSG_CAP 512

// EDG_CASTS_CAP bounds the casts an instance queues before Go takes them; a
// cast that does not fit goes to Go at once, after those queued.
#define EDG_CASTS_CAP 4096

// edg_inst is one store with one instance. Only the goroutine that owns the
// Go Instance touches it.
typedef struct edg_inst {
  edg_rt *rt;
  uintptr_t handle; // cgo.Handle of the Go *Instance
  wasmtime_store_t *store;
  // ctx is the store's context, replaced by the caller's context while a
  // host import runs so nested guest calls use the right one.
  wasmtime_context_t *ctx;
  wasmtime_memory_t mem;
  wasmtime_func_t fn[EDG_NFN];
  uint64_t deadline; // absolute epoch at which the running handler times out

  // Guest memory as last seen; refreshed before every host import and after
  // every guest allocation, since memory can grow and move.
  uint8_t *base;
  size_t size;

  uint8_t src[32];    // in: node id ‖ component id of the event's source
  int32_t ret;        // out: handle_call_asm's return code
  uint8_t *reply;     // out: copy of the guest's call reply
  size_t reply_len;
  size_t reply_cap;
  uint32_t alloc_ptr; // out: result of edg_guest_alloc
  bool initializing;  // out: edg_instantiate failed in _initialize

  // Casts the guest made and Go has not sent yet, in order: per cast a
  // 12-byte header (u32 import, u32 target length, u32 payload length, host
  // byte order), the target (the output's name, or node id ‖ component id)
  // and the payload. Go sends them once edg_invoke returns, or before any
  // other host import reaches it, so a cast costs no transition into Go.
  // Allocated at the first cast.
  uint8_t *casts;
  size_t casts_len;

  wasm_trap_t *trap; // failure of the last call, owned here
  wasmtime_error_t *err;
  int cause;
  char msg[EDG_MSG_CAP];
  size_t msg_len;
} edg_inst;

edg_rt *edg_rt_new(uint32_t max_instances, int64_t max_memory,
                   uint64_t budget, bool inherit_stdio,
                   wasmtime_error_t **err);
wasmtime_error_t *edg_rt_define(edg_rt *rt, int index, const char *name,
                                size_t name_len, const char *params,
                                const char *results);
void edg_rt_delete(edg_rt *rt);
void edg_rt_tick(edg_rt *rt);

uint8_t *edg_module_describe(const wasmtime_module_t *m, size_t *len);

int edg_instantiate(edg_rt *rt, const wasmtime_instance_pre_t *pre, int flags,
                    int64_t max_memory, uintptr_t handle, edg_inst **out);
void edg_inst_kill(edg_inst *in);
void edg_inst_delete(edg_inst *in);
int edg_invoke(edg_inst *in, int kind, const uint8_t *a, size_t alen,
               const uint8_t *b, size_t blen);
int edg_guest_alloc(edg_inst *in, uint32_t len);
void edg_clear_failure(edg_inst *in);

#endif // EDG_SHIM_H
