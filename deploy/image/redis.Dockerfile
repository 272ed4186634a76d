# The context is the root file system deploy/image/build.sh assembles from the
# host's redis-server.
FROM scratch
COPY . /
COPY --chown=65532:65532 data /data
USER 65532:65532
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/redis-server"]
CMD ["--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
