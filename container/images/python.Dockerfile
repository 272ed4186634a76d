# The Python SDK on the Debian root file system; by default the python310
# runtime: it loads a Serverledge-style handler from /code.
ARG SUITE=bookworm
FROM edgeless-python-rootfs:${SUITE}
COPY edgeless_function.py edgeless_runtime.py /usr/lib/python3/dist-packages/
USER 0
RUN ["/usr/bin/python3", "-m", "compileall", "-q", "/usr/lib/python3/dist-packages/edgeless_function.py", "/usr/lib/python3/dist-packages/edgeless_runtime.py"]
USER 65534:65534
EXPOSE 7101
LABEL edgeless.runtime=python310
CMD ["/usr/bin/python3", "-m", "edgeless_runtime"]
