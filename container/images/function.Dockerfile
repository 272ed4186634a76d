# A Python container function: FILE runs edgeless_function.run.
FROM edgeless-python:latest
ARG FILE
COPY ${FILE} /app/function.py
CMD ["/usr/bin/python3", "/app/function.py"]
