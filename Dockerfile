# One image for every Shouwang process; the command picks which (worker, topics, …).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shouwang ./shouwang
COPY streams ./streams
COPY detectors ./detectors
COPY alerts ./alerts
COPY api ./api
RUN pip install --no-cache-dir . && useradd --system --home /app shouwang && mkdir -p /app/var \
    && chown shouwang /app/var
USER shouwang
ENV SHOUWANG_VAR_DIR=/app/var
ENTRYPOINT ["shouwang"]
CMD ["worker"]
