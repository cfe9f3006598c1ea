# The restsync code location: a gRPC code server that Dagster's webserver and daemon load, and
# the image of every run they launch (the K8sRunLauncher's run pods). See deploy/DEPLOYMENT.md.
#
#   docker build -t restsync-dagster:0.1.0 .
#
# The build steps live in scripts/image_build.sh; CI runs this file's steps in order on a fresh
# environment with scripts/check_image.py (CI has no Docker engine).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/restsync/venv \
    PATH=/opt/restsync/venv/bin:$PATH \
    RESTSYNC_INCLUDE_EXAMPLES=false \
    RESTSYNC_CONNECTORS_DIR=/opt/restsync/connectors \
    RESTSYNC_HOME=/tmp/restsync

WORKDIR /opt/restsync/src
COPY requirements/production.lock.txt requirements/production.lock.txt
COPY scripts/image_build.sh scripts/image_build.sh
RUN sh scripts/image_build.sh dependencies
COPY pyproject.toml README.md ./
COPY restsync_dagster restsync_dagster
RUN sh scripts/image_build.sh package

# Not root. No passwd entry is needed; the only place written is RESTSYNC_HOME under /tmp
# (dlt's working directories; mount an emptyDir there for a read-only root filesystem).
USER 10001:10001
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-m", "restsync_dagster.definitions", "-h", "0.0.0.0", "-p", "4000"]
