# The twinwatch services (capture, windower, trainer, evaluator) and the CLI in one image.
#   docker build -t twinwatch .
# On CPU-only hosts a smaller torch comes from PyTorch's CPU index:
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu -t twinwatch .
FROM python:3.11-slim

ARG TORCH_INDEX=""
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpcap0.8 tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY twinwatch twinwatch
COPY schemas schemas
COPY services services
COPY model_repository model_repository
RUN if [ -n "$TORCH_INDEX" ]; then pip install --no-cache-dir --extra-index-url "$TORCH_INDEX" torch==2.9.1; fi \
    && pip install --no-cache-dir .

USER 10001
ENV PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
ENTRYPOINT ["tini", "--"]
CMD ["twinwatch", "--help"]
