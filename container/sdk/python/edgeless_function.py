"""Container functions for edgeless (and EDGELESS) in Python.

A function is a class with the handlers below; run(fn) serves it as
EDGELESS's GuestAPIFunction gRPC service and hands it a Host whose methods
are the host calls of GuestAPIHost. Only the standard library and the grpc
package are used: the few protobuf messages of the contract are encoded here,
so the image needs no protobuf runtime and no generated code.

    class Double(edgeless_function.Function):
        def handle_cast(self, src, msg):
            self.host.cast("output", str(2 * int(msg)).encode())

    edgeless_function.run(Double())

Handlers run one at a time, as on every edgeless runtime. Host calls are
accepted while a handler runs (and from handle_init).
"""

import logging
import os
import signal
import sys
import threading
from concurrent import futures

import grpc

# CallRetType
NO_REPLY, REPLY, ERR = 0, 1, 2
# TelemetryLogLevel
LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE = 0, 1, 2, 3, 4

DEFAULT_PORT = 7101


# --- protobuf wire format, for the messages of the contract ---------------

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _encode(fields):
    """Encodes [(number, value)]: int as varint, str/bytes as length-delimited.
    Zero and empty values are left out, as proto3 does."""
    out = bytearray()
    for num, v in fields:
        if v is None:
            continue
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, int):
            if v == 0:
                continue
            out += _varint(num << 3) + _varint(v)
            continue
        if isinstance(v, str):
            v = v.encode()
        if len(v) == 0:
            continue
        out += _varint(num << 3 | 2) + _varint(len(v)) + v
    return bytes(out)


def _decode(buf):
    """Decodes a message into {number: value}: ints for varints, bytes for
    length-delimited fields; other wire types are skipped."""
    fields = {}
    i, n = 0, len(buf)
    while i < n:
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            fields[num], i = _read_varint(buf, i)
        elif wt == 2:
            ln, i = _read_varint(buf, i)
            fields[num] = bytes(buf[i:i + ln])
            i += ln
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        else:
            raise ValueError("unsupported protobuf wire type %d" % wt)
    return fields


def _read_varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


class InstanceId:
    """The address of a function instance: node UUID and instance UUID."""

    __slots__ = ("node_id", "function_id")

    def __init__(self, node_id="", function_id=""):
        self.node_id, self.function_id = node_id, function_id

    def encode(self):
        return _encode([(1, self.node_id), (2, self.function_id)])

    @classmethod
    def decode(cls, buf):
        f = _decode(buf or b"")
        return cls(f.get(1, b"").decode(), f.get(2, b"").decode())

    def __eq__(self, other):
        return isinstance(other, InstanceId) and (self.node_id, self.function_id) == (other.node_id, other.function_id)

    def __repr__(self):
        return "InstanceId(%s, %s)" % (self.node_id, self.function_id)


def _identity(b):
    return b


# --- the host -------------------------------------------------------------

class Host:
    """The host calls of a function, made to the node's GuestAPIHost."""

    def __init__(self, endpoint, instance_id):
        target = endpoint.split("://", 1)[-1]
        self._channel = grpc.insecure_channel(target)
        self.instance_id = instance_id
        me = instance_id.encode()
        self._me = me

        def rpc(name):
            return self._channel.unary_unary("/edgeless_api.GuestAPIHost/" + name,
                                             request_serializer=_identity, response_deserializer=_identity)

        self._cast, self._cast_raw = rpc("Cast"), rpc("CastRaw")
        self._call, self._call_raw = rpc("Call"), rpc("CallRaw")
        self._log, self._slf = rpc("TelemetryLog"), rpc("Slf")
        self._delayed, self._sync = rpc("DelayedCast"), rpc("Sync")

    def cast(self, alias, msg):
        """Sends msg (bytes) to the instance mapped to output alias."""
        self._cast(_encode([(1, self._me), (2, alias), (3, msg)]))

    def cast_raw(self, dst, msg):
        """Sends msg to the instance dst (an InstanceId)."""
        self._cast_raw(_encode([(1, self._me), (2, dst.encode()), (3, msg)]))

    def call(self, alias, msg):
        """Calls the instance mapped to alias; returns (type, reply bytes)."""
        return _call_return(self._call(_encode([(1, self._me), (2, alias), (3, msg)])))

    def call_raw(self, dst, msg):
        """Calls the instance dst; returns (type, reply bytes)."""
        return _call_return(self._call_raw(_encode([(1, self._me), (2, dst.encode()), (3, msg)])))

    def telemetry_log(self, level, target, msg):
        """Logs msg at level (LOG_ERROR … LOG_TRACE) on the node."""
        self._log(_encode([(1, self._me), (2, level), (3, target), (4, msg)]))

    def slf(self):
        """Returns this instance's InstanceId, as the node knows it."""
        return InstanceId.decode(self._slf(b""))

    def delayed_cast(self, delay_ms, alias, msg):
        """Casts msg to alias after delay_ms milliseconds."""
        self._delayed(_encode([(1, self._me), (2, alias), (3, msg), (4, int(delay_ms))]))

    def sync(self, state):
        """Persists state (bytes); handle_init gets it back on re-creation."""
        self._sync(_encode([(1, self._me), (2, state)]))

    def close(self):
        self._channel.close()


def _call_return(buf):
    f = _decode(buf)
    return f.get(1, NO_REPLY), f.get(2, b"")


# --- the function ---------------------------------------------------------

class Function:
    """Base class of a container function; override the handlers you need.

    self.host is the Host, set at Boot, before handle_init."""

    host = None

    def handle_init(self, payload, state):
        """payload: the init-payload annotation (str); state: bytes last
        given to host.sync, or None."""

    def handle_cast(self, src, msg):
        """src: InstanceId of the sender; msg: bytes."""

    def handle_call(self, src, msg):
        """Returns bytes (the reply), None (no reply), or raises (an error)."""
        return None

    def handle_stop(self):
        """Called once before the container is removed."""


class _Servicer:
    def __init__(self, fn, stopped):
        self.fn = fn
        self.stopped = stopped
        self.lock = threading.Lock()  # one handler at a time
        self.log = logging.getLogger("edgeless_function")

    def boot(self, req, ctx):
        f = _decode(req)
        endpoint = f.get(1, b"").decode()
        self.fn.host = Host(endpoint, InstanceId.decode(f.get(2, b"")))
        return b""

    def init(self, req, ctx):
        f = _decode(req)
        with self.lock:
            self.fn.handle_init(f.get(1, b"").decode(), f.get(10))
        return b""

    def cast(self, req, ctx):
        f = _decode(req)
        with self.lock:
            try:
                self.fn.handle_cast(InstanceId.decode(f.get(1)), f.get(2, b""))
            except Exception:
                self.log.exception("handle_cast failed")
        return b""

    def call(self, req, ctx):
        f = _decode(req)
        with self.lock:
            try:
                reply = self.fn.handle_call(InstanceId.decode(f.get(1)), f.get(2, b""))
            except Exception as e:
                self.log.exception("handle_call failed")
                return _encode([(1, ERR), (2, str(e))])
        if reply is None:
            return b""
        if isinstance(reply, str):
            reply = reply.encode()
        return _encode([(1, REPLY), (2, reply)])

    def stop(self, req, ctx):
        with self.lock:
            try:
                self.fn.handle_stop()
            finally:
                self.stopped.set()
        return b""


def run(fn, port=None):
    """Serves fn on port (default $EDGELESS_PORT or 7101) until Stop or
    SIGTERM."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    port = port or int(os.environ.get("EDGELESS_PORT", DEFAULT_PORT))
    stopped = threading.Event()
    s = _Servicer(fn, stopped)

    def h(method):
        return grpc.unary_unary_rpc_method_handler(method, request_deserializer=_identity,
                                                   response_serializer=_identity)

    service = grpc.method_handlers_generic_handler("edgeless_api.GuestAPIFunction", {
        "Boot": h(s.boot), "Init": h(s.init), "Cast": h(s.cast), "Call": h(s.call), "Stop": h(s.stop),
    })
    # Handlers are serialised by the lock; more threads let host calls made
    # by a handler and the node's next request overlap without deadlock.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((service,))
    server.add_insecure_port("0.0.0.0:%d" % port)
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    server.stop(grace=0.5).wait()
