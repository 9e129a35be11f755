# syntax=docker/dockerfile:1
# Hinge Coach: the bot, the bundled model and the library in one image. Data lives in /data.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# The CPU build of torch: without it pip would fetch a multi-GB CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV TORCH_INDEX_URL=${TORCH_INDEX_URL} PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY scripts/ scripts/
COPY bot/ bot/
COPY index/ index/
# The same install script as `make run`, so the image and the Makefile cannot drift.
RUN scripts/install.sh /opt/venv

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --create-home --uid 10001 coach && mkdir -p /data && chown coach /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --from=build /app /app
COPY knowledge/ knowledge/
COPY docker/entrypoint.sh /usr/local/bin/hinge-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HINGE_DATA_DIR=/data \
    HINGE_KNOWLEDGE_DIR=/data/knowledge \
    HINGE_HTTP_HOST=0.0.0.0 \
    HINGE_HTTP_PORT=8080
USER coach
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"
ENTRYPOINT ["hinge-entrypoint"]
CMD ["hinge", "run"]
