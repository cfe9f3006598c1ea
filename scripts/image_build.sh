#!/bin/sh
# The Dockerfile's build steps, one argument per RUN. Kept here, not inline in the Dockerfile,
# so that CI, which has no Docker engine, runs exactly these steps in a fresh environment
# (scripts/check_image.py). Uses VIRTUAL_ENV and RESTSYNC_CONNECTORS_DIR from the Dockerfile's ENV.
set -eu

case "${1:-}" in
  dependencies)
    # Every package pinned with its hashes: the production extras, no test tools.
    python -m venv "$VIRTUAL_ENV"
    "$VIRTUAL_ENV/bin/pip" install --quiet --require-hashes --no-deps \
      -r requirements/production.lock.txt
    ;;
  package)
    # The package itself, built by the pinned setuptools installed above.
    "$VIRTUAL_ENV/bin/pip" install --quiet --no-deps --no-build-isolation .
    # Where connector files are mounted (a ConfigMap) or copied in by a derived image.
    mkdir -p "$RESTSYNC_CONNECTORS_DIR"
    # Fail the build, not the first run, if the code location cannot load: the bundled
    # example connectors validate and the definitions import.
    RESTSYNC_INCLUDE_EXAMPLES=true "$VIRTUAL_ENV/bin/restsync" validate >/dev/null
    "$VIRTUAL_ENV/bin/python" -c "import restsync_dagster.definitions"
    ;;
  *)
    echo "usage: sh scripts/image_build.sh dependencies|package" >&2
    exit 2
    ;;
esac
