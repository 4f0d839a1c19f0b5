# loadgen in a container: the venue, a master or a worker, by its command (README.md, "Across
# machines"; deploy/compose.yaml and deploy/k8s/loadgen.yaml run it).
#   docker build -t loadgen .
#   docker run --rm loadgen run profiles/smoke.toml
FROM python:3.11-slim
WORKDIR /opt/loadgen
# The project's files, then the install the README gives (`pip install -e .`); nothing else.
COPY pyproject.toml README.md ./
COPY loadgen ./loadgen
COPY locustfiles ./locustfiles
COPY profiles ./profiles
RUN pip install --no-cache-dir -e . && mkdir -p results
# 5557: a master's port for its workers; 8089: Locust's web UI (--ui); 8080-8082: the venue
EXPOSE 5557 8089 8080 8081 8082
ENTRYPOINT ["loadgen"]
CMD ["--help"]
