"""The python310 runtime: runs a Serverledge-style handler as a container
function.

Init carries the handler ("module.function") as init-payload and the code
as the state: a tar archive whose files are under code/ (a source file
named after the handler's module, or the files of the function's archive),
which the runtime unpacks into a private directory it imports from. A call's message is the invocation
parameters as JSON; the handler's return value, as JSON, is the reply. A cast
runs the handler too and casts a result that is not None to output "output".
"""

import importlib
import io
import json
import os
import sys
import tarfile
import tempfile

import edgeless_function


class Runtime(edgeless_function.Function):
    def __init__(self):
        self.handler = None

    def handle_init(self, payload, state):
        module, _, func = payload.strip().rpartition(".")
        if not module or not func:
            raise ValueError("handler %r: want module.function" % payload)
        if not state:
            raise ValueError("no code")
        root = tempfile.mkdtemp(prefix="edgeless-")
        with tarfile.open(fileobj=io.BytesIO(state)) as tar:
            # The node wrote the archive: regular files and directories
            # under code/, no links, no absolute or parent paths.
            tar.extractall(root)
        sys.path.insert(0, os.path.join(root, "code"))
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
