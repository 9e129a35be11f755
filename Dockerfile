# syntax=docker/dockerfile:1
# Hinge Coach: the bot, the bundled model and the shipped library in one image. Data lives in /data.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 coach && mkdir -p /data && chown coach /data
WORKDIR /src
# 1. The dependencies, torch's CPU build first (scripts/install.sh explains how it picks it). This
#    layer depends on pyproject.toml and the script only: a code change does not reinstall torch.
COPY pyproject.toml ./
COPY scripts/install.sh scripts/install.sh
RUN scripts/install.sh --deps-only /opt/venv
# 2. The code, installed as a regular package (not editable) on top, with its data files.
COPY README.md ./
COPY bot/ bot/
COPY index/ index/
RUN scripts/install.sh --package /opt/venv && rm -rf build ./*.egg-info
# The bundled model's ONNX graph, exported once here (from the package's weights) so that no container
# start pays for it; the bot runs it with onnxruntime and never loads torch.
ENV HINGE_MODEL_CACHE_DIR=/opt/hinge-models
RUN HF_HUB_OFFLINE=1 /opt/venv/bin/python -c "from pathlib import Path; from index.engine import make_embedder; \
make_embedder('bundled', Path('/tmp')).encode(['hip hinge'])"
# 3. The shipped library, read from here at run time; the team's own documents live in /data/library.
WORKDIR /app
COPY knowledge/ knowledge/
COPY docker/entrypoint.sh /usr/local/bin/hinge-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HINGE_DATA_DIR=/data \
    HINGE_KNOWLEDGE_DIR=/app/knowledge \
    HINGE_HTTP_HOST=0.0.0.0 \
    HINGE_HTTP_PORT=8080
USER coach
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"
ENTRYPOINT ["hinge-entrypoint"]
CMD ["hinge", "run"]
