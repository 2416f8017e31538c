# syntax=docker/dockerfile:1
# Inference Model Manager: one image for the API and console (gunicorn), the Celery worker and the
# controller; the command picks the process (the Helm chart and docker-compose.yml set it).
#   docker build --build-arg HTTP_PROXY --build-arg HTTPS_PROXY --build-arg NO_PROXY -t imm:latest .
# The proxy arguments are Docker's predefined build args: used by pip during the build, never kept
# in the image's history or environment.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# Every runtime dependency is a wheel (psycopg[binary], cryptography, ...): no compiler needed.
RUN python -m venv /opt/venv
COPY requirements/base.txt requirements/prod.txt /tmp/requirements/
RUN /opt/venv/bin/pip install --no-compile -r /tmp/requirements/prod.txt

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="Inference Model Manager" \
      org.opencontainers.image.description="Multi-tenant AI-inference control plane: API and console, worker, controller" \
      org.opencontainers.image.source="https://github.com/intel/inference-model-manager" \
      org.opencontainers.image.licenses="Apache-2.0"
# gunicorn: --no-control-socket, because gunicorn 27 otherwise opens a Unix control socket (reload,
# stop) in the user's home, which this image neither needs nor may write (read-only root filesystem).
# --access-logfile=-: gunicorn's access lines (request line with its query string) are written by
# the worker, whose Django setup redacts every log record (inferencemgmt/requestlog.py).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=inferencemgmt.settings \
    GUNICORN_CMD_ARGS="--bind=0.0.0.0:8000 --workers=2 --threads=4 --timeout=300 --worker-tmp-dir=/tmp --access-logfile=- --no-control-socket"
# A fixed numeric non-root user, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 imm \
 && useradd --system --uid 10001 --gid imm --home-dir /app --no-create-home --shell /usr/sbin/nologin imm
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root . /app
# Static files are collected at build time (whitenoise serves them); settings need a key to load,
# and this throwaway one is used for nothing else.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0 \
 && python -m compileall -q /app /opt/venv
# docker-compose.yml shares kubeconfigs through a volume mounted here; a new volume takes this owner.
RUN install -d -o 10001 -g 10001 -m 0755 /kube
USER 10001:10001
EXPOSE 8000
# Liveness of the API only (/healthz answers without touching any upstream); the worker and the
# controller override or disable it. The Host header must be in DJANGO_ALLOWED_HOSTS (localhost is by default).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': 'localhost'}), timeout=4)"]
CMD ["gunicorn", "inferencemgmt.wsgi:application"]
