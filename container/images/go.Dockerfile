# A Go container function: one static binary.
FROM scratch
COPY function /function
USER 65534:65534
EXPOSE 7101
ENTRYPOINT ["/function"]
