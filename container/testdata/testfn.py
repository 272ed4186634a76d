"""testfn: a container function for the tests of package container and of
the node. A call's message is a command; a cast counts, syncs the count and
casts it to output "out"."""

import os
import threading
import time

import edgeless_function as ef


class TestFn(ef.Function):
    def handle_init(self, payload, state):
        self.payload = payload
        self.state = state
        self.count = int(state) if state and state.isdigit() else 0
        self.host.telemetry_log(ef.LOG_INFO, "testfn", "init " + payload)

    def handle_cast(self, src, msg):
        self.count += 1
        self.host.sync(str(self.count).encode())
        self.host.cast("out", str(self.count).encode())
        if msg in (b"crash", b"hang"):
            self.handle_call(src, msg)

    def handle_call(self, src, msg):
        cmd, _, arg = msg.decode().partition(" ")
        if cmd == "hostcalls":
            me = self.host.slf()
            self.host.cast("out", b"cast")
            self.host.cast_raw(src, b"cast_raw")
            t1, r1 = self.host.call("peer", b"21")
            t2, r2 = self.host.call_raw(src, b"call_raw")
            self.host.delayed_cast(50, "out", b"delayed")
            self.host.telemetry_log(ef.LOG_WARN, "testfn", "telemetry")
            self.host.sync(b"synced")
            return ("%s %s %d %s %d %s" % (me.node_id, me.function_id, t1, r1.decode(), t2, r2.decode())).encode()
        if cmd == "init":
            return self.payload.encode()
        if cmd == "state":
            return self.state or b""
        if cmd == "count":
            return str(self.count).encode()
        if cmd == "crash":
            os._exit(3)
        if cmd == "hang":
            time.sleep(3600)
        if cmd == "alloc":
            block = b"\x01" * (int(arg) << 20)
            return str(len(block) >> 20).encode()
        if cmd == "later":
            # A host call from a thread of its own, after the handler.
            def late():
                time.sleep(0.2)
                try:
                    self.host.cast("out", b"late")
                    self.late = "accepted"
                except Exception as e:
                    self.late = e.code().name if hasattr(e, "code") else str(e)
            self.late = "pending"
            threading.Thread(target=late).start()
            return b"started"
        if cmd == "late":
            return self.late.encode()
        if cmd == "noreply":
            return None
        if cmd == "fail":
            raise RuntimeError("asked to fail")
        return msg


if __name__ == "__main__":
    ef.run(TestFn())
