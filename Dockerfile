# The router (`atomicsite serve`) as a container: small base, non-root, configured by ATOMICSITE_* env.
#
#   docker build -t atomicsite-router .
#   docker run -p 8080:8080 -e ATOMICSITE_TARGET=s3://my-bucket/site atomicsite-router
#
# Settings: ATOMICSITE_TARGET (required), ATOMICSITE_CHANNEL, ATOMICSITE_ENDPOINT_URL, ATOMICSITE_REGION,
# ATOMICSITE_PROJECT …, ATOMICSITE_HOST/ATOMICSITE_PORT (default 0.0.0.0:8080 here),
# ATOMICSITE_WORKERS, ATOMICSITE_METRICS_PORT, or a mounted atomicsite.toml ([serve] table,
# ATOMICSITE_CONFIG=/path). Health: GET /_atomicsite/healthz. See docs/deploy-router.md.

FROM python:3.12-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY atomicsite ./atomicsite
# wheels of atomicsite and every dependency, so the final image needs no compiler and no cache
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[serve,s3,gcs]"

FROM python:3.12-slim-bookworm
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin atomicsite
USER 10001:10001
WORKDIR /srv
ENV ATOMICSITE_HOST=0.0.0.0 \
    ATOMICSITE_PORT=8080 \
    PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_atomicsite/healthz' % os.environ.get('ATOMICSITE_PORT', '8080'), timeout=2)"]
# exec form: the router is PID 1 and gets SIGTERM directly (graceful shutdown)
ENTRYPOINT ["atomicsite", "serve"]
