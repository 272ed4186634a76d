# The context is the root file system deploy/image/build.sh assembles: the
# edgeless binary and the libraries it links (glibc: cgo and wasmtime).
FROM scratch
COPY . /
COPY --chown=65532:65532 data /data
COPY --chown=65532:65532 tmp /tmp
USER 65532:65532
WORKDIR /data
ENV HOME=/data TMPDIR=/tmp
ENTRYPOINT ["/usr/local/bin/edgeless"]
CMD ["inabox"]
# Healthy once the mode serves its /metrics (each mode's default port).
HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=3 CMD ["/usr/local/bin/edgeless", "health"]
