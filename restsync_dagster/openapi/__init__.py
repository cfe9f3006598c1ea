"""From an OpenAPI 3 or Swagger 2 document to a working restsync connector file.

Pure: reads the document (a file or an ``http(s)`` URL), writes YAML text, imports nothing of
Dagster. :func:`generate` is the entry point; :mod:`restsync_dagster.openapi.command` is
``restsync init NAME --from-openapi PATH_OR_URL``.
"""

from restsync_dagster.openapi.errors import OpenApiError
from restsync_dagster.openapi.generate import Generated, generate

__all__ = ["Generated", "OpenApiError", "generate"]
