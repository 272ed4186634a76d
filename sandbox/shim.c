// shim.c implements shim.h. Nothing here allocates or formats on the success
// path of an event; messages are only built when something has failed.

#include "shim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "_cgo_export.h"

const char *const edg_export_names[EDG_NFN] = {
    [EDG_FN_ALLOC] = "edgeless_mem_alloc", [EDG_FN_FREE] = "edgeless_mem_free",
    [EDG_FN_CLEAR] = "edgeless_mem_clear", [EDG_FN_CAST] = "handle_cast_asm",
    [EDG_FN_CALL] = "handle_call_asm",     [EDG_FN_INIT] = "handle_init_asm",
    [EDG_FN_STOP] = "handle_stop_asm",
};

#define PAGE 65536

static uint64_t epoch_now(const edg_rt *rt) {
  return __atomic_load_n(&rt->epoch, __ATOMIC_ACQUIRE);
}

// ---- runtime ----

edg_rt *edg_rt_new(uint32_t max_instances, int64_t max_memory,
                   uint64_t budget, bool inherit_stdio,
                   wasmtime_error_t **err) {
  *err = NULL;
  edg_rt *rt = calloc(1, sizeof *rt);
  if (!rt) {
    *err = wasmtime_error_new("out of memory");
    return NULL;
  }
  wasm_config_t *cfg = wasm_config_new();
  wasmtime_config_epoch_interruption_set(cfg, true);
  // Linear memory never moves, so the shim keeps its address for the
  // instance's life and asks wasmtime for the size only when a range goes
  // past the size it saw last (in_guest). The pool's slots grow in place
  // anyway; this makes it the engine's promise.
  wasmtime_config_memory_may_move_set(cfg, false);

  // The pooling allocator reserves every slot up front, which makes
  // instantiation a matter of handing out a slot (about 1 µs instead of 3).
  wasmtime_pooling_allocation_config_t *pool =
      wasmtime_pooling_allocation_config_new();
  wasmtime_pooling_allocation_config_total_core_instances_set(pool,
                                                              max_instances);
  wasmtime_pooling_allocation_config_total_memories_set(pool, max_instances);
  wasmtime_pooling_allocation_config_total_tables_set(pool, max_instances);
  uint64_t slot = ((uint64_t)max_memory + PAGE - 1) / PAGE * PAGE;
  wasmtime_pooling_allocation_config_max_memory_size_set(pool, (size_t)slot);
  wasmtime_pooling_allocation_strategy_set(cfg, pool);
  wasmtime_pooling_allocation_config_delete(pool);

  rt->engine = wasm_engine_new_with_config(cfg);
  if (!rt->engine) {
    free(rt);
    *err = wasmtime_error_new("cannot create engine");
    return NULL;
  }
  rt->linker = wasmtime_linker_new(rt->engine);
  rt->budget = budget;
  rt->max_memory = max_memory;
  rt->inherit_stdio = inherit_stdio;
  *err = wasmtime_linker_define_wasi(rt->linker);
  if (*err) {
    edg_rt_delete(rt);
    return NULL;
  }
  return rt;
}

static wasm_valtype_vec_t valtypes(const char *sig) {
  wasm_valtype_t *ts[16];
  size_t n = 0;
  for (; sig[n] && n < 16; n++)
    ts[n] = wasm_valtype_new(sig[n] == 'I' ? WASM_I64 : WASM_I32);
  wasm_valtype_vec_t v;
  if (n == 0)
    wasm_valtype_vec_new_empty(&v);
  else
    wasm_valtype_vec_new(&v, n, ts);
  return v;
}

static wasm_trap_t *trampoline(void *env, wasmtime_caller_t *caller,
                               wasmtime_val_raw_t *args, size_t nargs);

// edg_rt_define defines import number index in module "env". params and
// results spell the wasm types, one letter each: i = i32, I = i64.
wasmtime_error_t *edg_rt_define(edg_rt *rt, int index, const char *name,
                                size_t name_len, const char *params,
                                const char *results) {
  wasm_valtype_vec_t ps = valtypes(params), rs = valtypes(results);
  wasm_functype_t *ty = wasm_functype_new(&ps, &rs);
  wasmtime_error_t *err = wasmtime_linker_define_func_unchecked(
      rt->linker, "env", 3, name, name_len, ty, trampoline,
      (void *)(uintptr_t)index, NULL);
  wasm_functype_delete(ty);
  return err;
}

void edg_rt_delete(edg_rt *rt) {
  if (rt->linker)
    wasmtime_linker_delete(rt->linker);
  wasm_engine_delete(rt->engine);
  free(rt);
}

void edg_rt_tick(edg_rt *rt) {
  // Engine first, so the mirror never runs ahead of the deadlines wasmtime
  // enforces.
  wasmtime_engine_increment_epoch(rt->engine);
  __atomic_add_fetch(&rt->epoch, 1, __ATOMIC_RELEASE);
}

// ---- module description ----

typedef struct {
  uint8_t *p;
  size_t len, cap;
  bool oom;
} buf_t;

static void put(buf_t *b, const void *src, size_t n) {
  if (b->oom)
    return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + n)
      cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, src, n);
  b->len += n;
}

static void put_u8(buf_t *b, uint8_t v) { put(b, &v, 1); }

static void put_u32(buf_t *b, uint32_t v) {
  uint8_t le[4] = {v, v >> 8, v >> 16, v >> 24};
  put(b, le, 4);
}

static void put_name(buf_t *b, const wasm_name_t *n) {
  put_u32(b, (uint32_t)n->size);
  put(b, n->data, n->size);
}

static void put_valtypes(buf_t *b, const wasm_valtype_vec_t *v) {
  put_u32(b, (uint32_t)v->size);
  for (size_t i = 0; i < v->size; i++)
    put_u8(b, wasm_valtype_kind(v->data[i]));
}

static void put_type(buf_t *b, const wasm_externtype_t *t) {
  wasm_externkind_t k = wasm_externtype_kind(t);
  put_u8(b, k);
  if (k == WASM_EXTERN_FUNC) {
    const wasm_functype_t *f = wasm_externtype_as_functype_const(t);
    put_valtypes(b, wasm_functype_params(f));
    put_valtypes(b, wasm_functype_results(f));
  }
}

// edg_module_describe lists the module's imports and exports in a compact
// binary form parsed by module.go: per item a tag ('i' or 'e'), for imports
// the module name, the item name, the extern kind, and for functions the
// parameter and result kinds. Names and lists are prefixed by a u32 LE count.
// The caller frees the result with free.
uint8_t *edg_module_describe(const wasmtime_module_t *m, size_t *len) {
  buf_t b = {0};
  wasm_importtype_vec_t imps;
  wasmtime_module_imports(m, &imps);
  for (size_t i = 0; i < imps.size; i++) {
    put_u8(&b, 'i');
    put_name(&b, wasm_importtype_module(imps.data[i]));
    put_name(&b, wasm_importtype_name(imps.data[i]));
    put_type(&b, wasm_importtype_type(imps.data[i]));
  }
  wasm_importtype_vec_delete(&imps);
  wasm_exporttype_vec_t exps;
  wasmtime_module_exports(m, &exps);
  for (size_t i = 0; i < exps.size; i++) {
    put_u8(&b, 'e');
    put_name(&b, wasm_exporttype_name(exps.data[i]));
    put_type(&b, wasm_exporttype_type(exps.data[i]));
  }
  wasm_exporttype_vec_delete(&exps);
  if (!b.p && !b.oom)
    b.p = malloc(1); // an empty module: an empty list, not a failure
  if (b.oom || !b.p) {
    free(b.p);
    return NULL;
  }
  *len = b.len;
  return b.p;
}

// ---- failures ----

static int host_fail(edg_inst *in, int cause, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int host_fail(edg_inst *in, int cause, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(in->msg, sizeof in->msg, fmt, ap);
  va_end(ap);
  in->msg_len = n < 0 ? 0 : (size_t)n < sizeof in->msg ? (size_t)n
                                                        : sizeof in->msg - 1;
  in->cause = cause;
  return EDG_FAIL_HOST;
}

void edg_clear_failure(edg_inst *in) {
  if (in->trap)
    wasm_trap_delete(in->trap);
  if (in->err)
    wasmtime_error_delete(in->err);
  in->trap = NULL;
  in->err = NULL;
  in->cause = EDG_CAUSE_NONE;
  in->msg_len = 0;
}

// ---- calls into the guest ----

static void refresh(edg_inst *in) {
  in->base = wasmtime_memory_data(in->ctx, &in->mem);
  in->size = wasmtime_memory_data_size(in->ctx, &in->mem);
}

// in_guest reports whether [ptr, ptr+len) lies in guest memory. Memory only
// grows and never moves (see edg_rt_new), so a range inside the size last
// seen is inside; wasmtime is asked again only for one that is not.
static bool in_guest(edg_inst *in, uint32_t ptr, uint32_t len) {
  if ((uint64_t)ptr + len <= in->size)
    return true;
  refresh(in);
  return (uint64_t)ptr + len <= in->size;
}

static int call(edg_inst *in, int fn, wasmtime_val_raw_t *args, size_t n) {
  wasm_trap_t *trap = NULL;
  wasmtime_error_t *err =
      wasmtime_func_call_unchecked(in->ctx, &in->fn[fn], args, n, &trap);
  if (err || trap) {
    in->err = err;
    in->trap = trap;
    return EDG_FAIL_WASM;
  }
  return EDG_OK;
}

static int guest_alloc(edg_inst *in, uint32_t len, uint32_t *ptr) {
  wasmtime_val_raw_t v[1] = {{.i64 = 0}};
  v[0].i32 = (int32_t)len;
  int rc = call(in, EDG_FN_ALLOC, v, 1);
  if (rc)
    return rc;
  *ptr = (uint32_t)v[0].i32;
  if (*ptr == 0 && len > 0)
    return host_fail(in, EDG_CAUSE_OOM, "edgeless_mem_alloc(%u) returned 0",
                     len);
  if (!in_guest(in, *ptr, len))
    return host_fail(in, EDG_CAUSE_FAULT,
                     "edgeless_mem_alloc(%u) returned %u, out of bounds of "
                     "%zu-byte memory",
                     len, *ptr, in->size);
  return EDG_OK;
}

static int guest_free(edg_inst *in, uint32_t ptr, uint32_t len) {
  wasmtime_val_raw_t v[2] = {{.i64 = 0}, {.i64 = 0}};
  v[0].i32 = (int32_t)ptr;
  v[1].i32 = (int32_t)len;
  return call(in, EDG_FN_FREE, v, 2);
}

static int guest_clear(edg_inst *in) {
  wasmtime_val_raw_t v[1];
  return call(in, EDG_FN_CLEAR, v, 0);
}

// copy_in allocates len bytes in the guest and copies src there; len 0 gives
// pointer 0 without asking the guest, as the ABI passes absent buffers.
static int copy_in(edg_inst *in, const uint8_t *src, size_t len,
                   uint32_t *ptr) {
  *ptr = 0;
  if (len == 0)
    return EDG_OK;
  int rc = guest_alloc(in, (uint32_t)len, ptr);
  if (rc)
    return rc;
  memcpy(in->base + *ptr, src, len);
  return EDG_OK;
}

static void arm(edg_inst *in) {
  in->deadline = epoch_now(in->rt) + in->rt->budget;
  wasmtime_context_set_epoch_deadline(in->ctx, in->rt->budget);
}

static int32_t load_le32(const uint8_t *p) {
  return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                   (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

// take_reply copies the reply the guest left in its two 4-byte slots. It
// copies at once: the reference guest has already freed the buffer, so the
// next guest call may reuse it.
static int take_reply(edg_inst *in, uint32_t ptr_slot, uint32_t len_slot) {
  // The slots were allocated in bounds, and memory does not move.
  uint32_t ptr = (uint32_t)load_le32(in->base + ptr_slot);
  uint32_t len = (uint32_t)load_le32(in->base + len_slot);
  if (!in_guest(in, ptr, len))
    return host_fail(in, EDG_CAUSE_FAULT,
                     "handle_call_asm returned reply [%u, +%u) out of bounds "
                     "of %zu-byte memory",
                     ptr, len, in->size);
  if (len > in->reply_cap) {
    size_t cap = in->reply_cap ? in->reply_cap : 256;
    while (cap < len)
      cap *= 2;
    uint8_t *p = realloc(in->reply, cap);
    if (!p)
      return host_fail(in, EDG_CAUSE_OOM, "cannot copy %u-byte reply", len);
    in->reply = p;
    in->reply_cap = cap;
  }
  memcpy(in->reply, in->base + ptr, len);
  in->reply_len = len;
  return EDG_OK;
}

// event runs a cast or call handler. Its arguments share one guest block,
// allocated and freed once: [out_ptr slot, out_len slot (calls only),
// component id, node id, payload]. The guest sees the same pointers it would
// with a block each (EDGELESS's allocators align to 4 at most, and a guest
// never frees its arguments), at a third of the calls into it.
static int event(edg_inst *in, int kind, const uint8_t *payload, size_t len) {
  int rc = guest_clear(in);
  if (rc)
    return rc;
  uint32_t slots = kind == EDG_CALL ? 8 : 0;
  uint64_t size = (uint64_t)slots + 32 + len;
  if (size > UINT32_MAX)
    return host_fail(in, EDG_CAUSE_OOM, "cannot pass a %zu-byte payload", len);
  uint32_t block;
  if ((rc = guest_alloc(in, (uint32_t)size, &block)))
    return rc;
  uint8_t *p = in->base + block;
  memset(p, 0, slots);
  memcpy(p + slots, in->src + 16, 16);
  memcpy(p + slots + 16, in->src, 16);
  if (len > 0)
    memcpy(p + slots + 32, payload, len);
  uint32_t comp = block + slots, node = comp + 16;
  uint32_t pl = len > 0 ? node + 16 : 0; // an absent buffer is pointer 0
  wasmtime_val_raw_t v[6];
  v[0].i32 = (int32_t)node;
  v[1].i32 = (int32_t)comp;
  v[2].i32 = (int32_t)pl;
  v[3].i32 = (int32_t)len;
  if (kind == EDG_CAST) {
    rc = call(in, EDG_FN_CAST, v, 4);
  } else {
    v[4].i32 = (int32_t)block;
    v[5].i32 = (int32_t)(block + 4);
    if (!(rc = call(in, EDG_FN_CALL, v, 6))) {
      in->ret = v[0].i32;
      in->reply_len = 0;
      if (in->ret == 1)
        rc = take_reply(in, block, block + 4);
    }
  }
  if (rc)
    return rc;
  return guest_free(in, block, (uint32_t)size);
}

static int init(edg_inst *in, const uint8_t *payload, size_t plen,
                const uint8_t *state, size_t slen) {
  uint32_t pp, sp;
  int rc;
  if ((rc = copy_in(in, payload, plen, &pp)) ||
      (rc = copy_in(in, state, slen, &sp)))
    return rc;
  wasmtime_val_raw_t v[4];
  v[0].i32 = (int32_t)pp;
  v[1].i32 = (int32_t)plen;
  v[2].i32 = (int32_t)sp;
  v[3].i32 = (int32_t)slen;
  if ((rc = call(in, EDG_FN_INIT, v, 4)))
    return rc;
  if (plen > 0 && (rc = guest_free(in, pp, (uint32_t)plen)))
    return rc;
  if (slen > 0)
    rc = guest_free(in, sp, (uint32_t)slen);
  return rc;
}

// edg_invoke runs one handler with everything around it: arming the time
// budget, resetting the guest arena, copying the arguments in, the call, and
// freeing the arguments. Lengths are at most UINT32_MAX (checked in Go).
int edg_invoke(edg_inst *in, int kind, const uint8_t *a, size_t alen,
               const uint8_t *b, size_t blen) {
  in->ctx = wasmtime_store_context(in->store);
  arm(in);
  int rc;
  switch (kind) {
  case EDG_CAST:
  case EDG_CALL:
    rc = event(in, kind, a, alen);
    break;
  case EDG_INIT:
    rc = init(in, a, alen, b, blen);
    break;
  default: {
    rc = guest_clear(in);
    wasmtime_val_raw_t v[1];
    if (!rc)
      rc = call(in, EDG_FN_STOP, v, 0);
  }
  }
  if (rc)
    refresh(in);
  return rc;
}

// edg_guest_alloc allocates for a host import (a call reply) while the guest
// is suspended in that import; the result is in in->alloc_ptr.
int edg_guest_alloc(edg_inst *in, uint32_t len) {
  int rc = guest_alloc(in, len, &in->alloc_ptr);
  if (rc == EDG_FAIL_WASM) {
    // The nested failure has to surface as a trap of the import; keep its
    // reason and message.
    wasmtime_trap_code_t code;
    if (in->trap && wasmtime_trap_code(in->trap, &code) &&
        code == WASMTIME_TRAP_CODE_INTERRUPT) {
      in->cause = EDG_CAUSE_TIMEOUT;
    } else {
      in->cause = EDG_CAUSE_FAULT;
    }
    wasm_message_t m = {0};
    if (in->trap)
      wasm_trap_message(in->trap, &m);
    else
      wasmtime_error_message(in->err, &m);
    int n = snprintf(in->msg, sizeof in->msg, "edgeless_mem_alloc failed: %.*s",
                     (int)m.size, m.data);
    in->msg_len = n < 0 ? 0 : (size_t)n < sizeof in->msg ? (size_t)n
                                                          : sizeof in->msg - 1;
    wasm_byte_vec_delete(&m);
    int cause = in->cause;
    edg_clear_failure(in);
    in->cause = cause;
    return EDG_FAIL_HOST;
  }
  return rc;
}

// ---- host imports ----

// queue_cast queues a cast_asm or cast_raw_asm for Go to send (see
// edg_inst.casts) and reports whether it did. A cast with an argument out
// of bounds, or that does not fit, is left to Go, which reports the one and
// sends the other after those queued.
static bool queue_cast(edg_inst *in, int fn, const wasmtime_val_raw_t *a) {
  // cast_asm(output_ptr, output_len, payload_ptr, payload_len);
  // cast_raw_asm(node_ptr, component_ptr, payload_ptr, payload_len).
  uint32_t a0 = (uint32_t)a[0].i32, a1 = (uint32_t)a[1].i32;
  uint32_t pptr = (uint32_t)a[2].i32, plen = (uint32_t)a[3].i32;
  bool raw = fn == EDG_IMP_CAST_RAW;
  uint32_t n = raw ? 32 : a1;
  if (raw ? !in_guest(in, a0, 16) || !in_guest(in, a1, 16)
          : !in_guest(in, a0, a1))
    return false;
  if (!in_guest(in, pptr, plen) ||
      (uint64_t)12 + n + plen > EDG_CASTS_CAP - in->casts_len)
    return false;
  if (!in->casts && !(in->casts = malloc(EDG_CASTS_CAP)))
    return false;
  uint8_t *p = in->casts + in->casts_len;
  uint32_t head[3] = {(uint32_t)fn, n, plen};
  memcpy(p, head, sizeof head);
  p += sizeof head;
  if (raw) {
    memcpy(p, in->base + a0, 16);
    memcpy(p + 16, in->base + a1, 16);
  } else {
    memcpy(p, in->base + a0, n);
  }
  memcpy(p + n, in->base + pptr, plen);
  in->casts_len += sizeof head + n + plen;
  return true;
}

static wasm_trap_t *trampoline(void *env, wasmtime_caller_t *caller,
                               wasmtime_val_raw_t *args, size_t nargs) {
  wasmtime_context_t *ctx = wasmtime_caller_context(caller);
  edg_inst *in = wasmtime_context_get_data(ctx);
  int fn = (int)(uintptr_t)env;
  wasmtime_context_t *outer = in->ctx;
  in->ctx = ctx;
  if ((fn == EDG_IMP_CAST || fn == EDG_IMP_CAST_RAW) &&
      queue_cast(in, fn, args)) {
    in->ctx = outer;
    return NULL;
  }
  refresh(in); // for Go's own bounds checks
  uint64_t before = epoch_now(in->rt);
  int rc = edgHostCall(in, fn, args, nargs);
  uint64_t after = epoch_now(in->rt);
  if (after != before) {
    // Time spent in the host (waiting for a call's reply, say) does not
    // count against the guest's budget: move the deadline by that much.
    in->deadline += after - before;
    wasmtime_context_set_epoch_deadline(
        ctx, in->deadline > after ? in->deadline - after : 1);
  }
  in->ctx = outer;
  if (rc)
    return wasmtime_trap_new(in->msg, in->msg_len);
  return NULL;
}

// ---- instances ----

static int lookup(edg_inst *in, const wasmtime_instance_t *inst,
                  const char *name, wasmtime_extern_t *item) {
  return wasmtime_instance_export_get(in->ctx, inst, name, strlen(name), item);
}

int edg_instantiate(edg_rt *rt, const wasmtime_instance_pre_t *pre, int flags,
                    int64_t max_memory, uintptr_t handle, edg_inst **out) {
  edg_inst *in = calloc(1, sizeof *in);
  *out = in;
  if (!in)
    return EDG_FAIL_HOST;
  in->rt = rt;
  in->handle = handle;
  in->store = wasmtime_store_new(rt->engine, in, NULL);
  in->ctx = wasmtime_store_context(in->store);
  wasmtime_store_limiter(in->store, max_memory, -1, -1, -1, -1);
  arm(in);
  if (flags & EDG_INST_WASI) {
    wasi_config_t *wasi = wasi_config_new();
    if (rt->inherit_stdio) {
      wasi_config_inherit_stdout(wasi);
      wasi_config_inherit_stderr(wasi);
    }
    if ((in->err = wasmtime_context_set_wasi(in->ctx, wasi)))
      return EDG_FAIL_WASM;
  }
  wasmtime_instance_t inst;
  if ((in->err = wasmtime_instance_pre_instantiate(pre, in->ctx, &inst,
                                                   &in->trap)) ||
      in->trap)
    return EDG_FAIL_WASM;
  wasmtime_extern_t item;
  // The module was checked at load, so the exports exist with the right
  // kinds and types.
  lookup(in, &inst, "memory", &item);
  in->mem = item.of.memory;
  for (int i = 0; i < EDG_NFN; i++) {
    lookup(in, &inst, edg_export_names[i], &item);
    in->fn[i] = item.of.func;
  }
  refresh(in);
  if (flags & EDG_INST_INITIALIZE) {
    lookup(in, &inst, "_initialize", &item);
    in->initializing = true;
    wasmtime_val_raw_t v[1];
    wasm_trap_t *trap = NULL;
    if ((in->err = wasmtime_func_call_unchecked(in->ctx, &item.of.func, v, 0,
                                                &trap)) ||
        (in->trap = trap)) {
      refresh(in);
      return EDG_FAIL_WASM;
    }
    in->initializing = false;
    refresh(in);
  }
  return EDG_OK;
}

// edg_inst_kill drops the store (and with it the instance's pool slot) of a
// dead instance; the struct stays for its failure details until deleted.
void edg_inst_kill(edg_inst *in) {
  if (in->store)
    wasmtime_store_delete(in->store);
  in->store = NULL;
  in->ctx = NULL;
  in->base = NULL;
  in->size = 0;
}

void edg_inst_delete(edg_inst *in) {
  edg_inst_kill(in);
  edg_clear_failure(in);
  free(in->reply);
  free(in->casts);
  free(in);
}
