"""``restsync init --from-openapi`` names resources as a person would, as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

TRACKER = """
openapi: 3.0.3
info: {title: Tracker, version: "1"}
servers: [{url: "https://tracker.example.com"}]
paths:
  /issues.json:
    get:
      parameters:
        - {name: offset, in: query, schema: {type: integer}}
        - {name: limit, in: query, schema: {type: integer}}
      responses:
        "200":
          description: issues
          content:
            application/json:
              schema:
                type: object
                properties:
                  issues: {type: array, items: {$ref: "#/components/schemas/Issue"}}
                  total_count: {type: integer}
  /projects.xml:
    get:
      responses:
        "200":
          description: projects
          content:
            application/json:
              schema: {type: array, items: {$ref: "#/components/schemas/Issue"}}
components:
  schemas:
    Issue:
      type: object
      properties: {id: {type: integer}, subject: {type: string}}
"""


def test_a_format_extension_is_not_part_of_a_resource_name(tmp_path):
    spec = tmp_path / "tracker.yaml"
    spec.write_text(TRACKER)
    env = {**os.environ, "RESTSYNC_CONNECTORS_DIR": str(tmp_path / "out")}
    (tmp_path / "out").mkdir()
    written = subprocess.run(
        [sys.executable, "-m", "restsync_dagster.cli", "init", "tracker", "--from-openapi",
         str(spec)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    connector = yaml.safe_load((tmp_path / "out" / "tracker.yaml").read_text())
    resources = {r["name"]: r["endpoint"]["path"] for r in connector["source"]["resources"]}
    assert resources == {"issues": "/issues.json", "projects": "/projects.xml"}, resources
