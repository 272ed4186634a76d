"""The python310 runtime: runs a Serverledge-style handler as a container
function.

The node copies the function's code into /code (a source file named after
the handler's module, or the files of a tar archive) and sends the handler
("module.function") as init-payload. A call's message is the invocation
parameters as JSON; the handler's return value, as JSON, is the reply. A cast
runs the handler too and casts a result that is not None to output "output".
"""

import importlib
import json
import sys

import edgeless_function

CODE_DIR = "/code"


class Runtime(edgeless_function.Function):
    def __init__(self):
        self.handler = None

    def handle_init(self, payload, state):
        module, _, func = payload.strip().rpartition(".")
        if not module or not func:
            raise ValueError("handler %r: want module.function" % payload)
        if CODE_DIR not in sys.path:
            sys.path.insert(0, CODE_DIR)
        self.handler = getattr(importlib.import_module(module), func)

    def _run(self, msg):
        params = json.loads(msg) if msg else {}
        context = {"instance": self.host.instance_id.function_id if self.host else ""}
        return self.handler(params, context)

    def handle_call(self, src, msg):
        return json.dumps(self._run(msg)).encode()

    def handle_cast(self, src, msg):
        out = self._run(msg)
        if out is not None:
            self.host.cast("output", json.dumps(out).encode())


if __name__ == "__main__":
    edgeless_function.run(Runtime())
