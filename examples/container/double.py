"""double: casts twice the decimal integer it receives to output "output";
a call is answered with the doubled value."""

import edgeless_function


class Double(edgeless_function.Function):
    def handle_cast(self, src, msg):
        self.host.cast("output", str(2 * int(msg)).encode())

    def handle_call(self, src, msg):
        return str(2 * int(msg)).encode()


if __name__ == "__main__":
    edgeless_function.run(Double())
