# One image for every Shouwang process; the command picks which (worker, topics, …).

# The household detectors compiled with mypyc (scripts/compile_detectors.py), in an image that has
# a C compiler; the slim image below only receives the built modules. If the build fails, the
# directory stays empty and the detectors run as plain Python (the worker's metric
# shouwang_worker_detectors_compiled says which).
FROM python:3.11 AS compiled
WORKDIR /src
RUN pip install --no-cache-dir "mypy>=2.4" "numpy>=1.26"
COPY detectors ./detectors
COPY scripts/compile_detectors.py ./scripts/
RUN python scripts/compile_detectors.py && mkdir -p detectors/_compiled

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shouwang ./shouwang
COPY streams ./streams
COPY detectors ./detectors
COPY --from=compiled /src/detectors/_compiled ./detectors/_compiled
COPY alerts ./alerts
COPY api ./api
COPY cli ./cli
# /app/var: the processes' data (a volume in docker-compose.yml, owned by shouwang as created here).
# /app/metrics-key: where the compose file's metrics-key job writes Prometheus's token; owned by nobody (65534),
# the user that job and Prometheus's image run as, so a new volume mounted there is theirs alone.
RUN pip install --no-cache-dir . && useradd --system --home /app shouwang && mkdir -p /app/var \
    && chown shouwang /app/var && install -d -o 65534 -g 65534 -m 0700 /app/metrics-key
USER shouwang
ENV SHOUWANG_VAR_DIR=/app/var
ENTRYPOINT ["shouwang"]
CMD ["worker"]
