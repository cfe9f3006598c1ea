"""``restsync init NAME --from-openapi PATH_OR_URL``: generate a connector file and write it.

Where the file goes: ``--out FILE``; else ``NAME.yaml`` in the first directory of
``RESTSYNC_CONNECTORS_DIR`` (``os.pathsep``-separated); else ``NAME.yaml`` in the current
directory. An existing file is never replaced without ``--force``. The command prints the path
written, the variables to set and the endpoints left out; on bad input it prints one line to
stderr and returns 1.

``--check`` reads the first page of every resource through ``restsync preview`` before the file
is written, and marks each resource that failed with a ``# check failed: <reason>`` comment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from restsync_dagster.openapi.errors import OpenApiError
from restsync_dagster.openapi.generate import Generated, generate
from restsync_dagster.openapi.validate import load_connector


def run_init(
    name: str,
    from_openapi: str,
    out: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    force: bool = False,
    check: bool = False,
    base_url: str | None = None,
    connectors_dir_env: str | None = os.environ.get("RESTSYNC_CONNECTORS_DIR"),
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Generate the connector ``name`` from an OpenAPI document and write it.

    Args:
        name: The connector's name; also the file's name unless ``out`` is given.
        from_openapi: The document's path or ``http(s)`` URL.
        out: Where to write the file.
        include: Only endpoints matching one of these (``/path/glob*`` or a tag).
        exclude: Leave out endpoints matching one of these.
        force: Replace an existing file.
        check: Read each resource's first page first, and mark the ones that fail.
        base_url: The connector's default base URL instead of the document's server.
        connectors_dir_env: The value of ``RESTSYNC_CONNECTORS_DIR``.
        stdout: Where the report goes (``sys.stdout``).
        stderr: Where an error goes (``sys.stderr``).

    Returns:
        0 when the file was written, 1 with one line on ``stderr`` otherwise.
    """
    out_stream = stdout or sys.stdout
    err_stream = stderr or sys.stderr
    target = output_path(name, out, connectors_dir_env)
    try:
        if target.exists() and not force:
            raise OpenApiError(f"{target}: already exists; use --force to replace it")
        if not target.parent.is_dir():
            raise OpenApiError(f"{target.parent}: no such directory for the connector file")
        generated = generate(
            from_openapi, name, include=include, exclude=exclude, base_url=base_url
        )
        text = generated.text
        failures: dict[str, str | None] = {}
        if check:
            failures = check_resources(text, os.environ)
            text = mark_failures(text, failures)
        target.write_text(text, encoding="utf-8")
    except OpenApiError as exc:
        print(f"restsync init: {exc}", file=err_stream)
        return 1
    except OSError as exc:
        print(f"restsync init: {target}: cannot write: {exc.strerror or exc}", file=err_stream)
        return 1
    _report(out_stream, target, generated, failures)
    return 0


def output_path(name: str, out: str | None, connectors_dir_env: str | None) -> Path:
    """``out``; else ``NAME.yaml`` in the first connector directory; else in the cwd."""
    if out:
        return Path(out)
    directories = [d for d in (connectors_dir_env or "").split(os.pathsep) if d.strip()]
    return (Path(directories[0]) if directories else Path.cwd()) / f"{name}.yaml"


def _report(
    stream: TextIO, target: Path, generated: Generated, failures: Mapping[str, str | None]
) -> None:
    resources = ", ".join(generated.resources)
    print(f"wrote {target}: {len(generated.resources)} resource(s): {resources}", file=stream)
    if generated.variables:
        print("set these environment variables:", file=stream)
        for variable in generated.variables:
            if variable.default is not None:
                kind = f"optional, default {variable.default!r}"
            else:
                kind = "secret, required" if variable.secret else "required"
            print(f"  {variable.name}  ({kind})", file=stream)
    if generated.skipped:
        print(f"left out {len(generated.skipped)} GET endpoint(s):", file=stream)
        for path, reason in generated.skipped:
            print(f"  {path}: {reason}", file=stream)
    failed = {r: reason for r, reason in failures.items() if reason}
    if failures:
        print(
            f"check: {len(failures) - len(failed)} of {len(failures)} resource(s) read a page",
            file=stream,
        )
        for resource, reason in failed.items():
            print(f"  {resource}: {reason}", file=stream)
    for note in generated.notes:
        print(f"note: {note}", file=stream)
    needed = [v.name for v in generated.variables if v.default is None]
    first = f"set {', '.join(needed)}, " if needed else ""
    print(
        f"{first}check the 'guessed:' comments in {target.name}, then: "
        f"restsync preview {shell_path(target)}",
        file=stream,
    )


def shell_path(target: Path) -> str:
    """How to name ``target`` on the command line from here: ``./shop.yaml`` (a path, which
    ``restsync preview``, ``validate`` and ``sync`` read as a connector file), relative when it
    is under the current folder."""
    import shlex

    try:
        relative = target.absolute().relative_to(Path.cwd())
    except ValueError:
        return shlex.quote(str(target))
    return shlex.quote(f"./{relative.as_posix()}")


# --------------------------------------------------------------------------------------------
# --check


def check_resources(text: str, env: Mapping[str, str]) -> dict[str, str | None]:
    """Read the first page of each resource of a generated file, as ``restsync preview`` would:
    resource -> ``None`` when it worked, else the reason in one line, worded by the same
    classifier as a failed sync and with the secrets masked by value."""
    from restsync_dagster.failures.classify import classify
    from restsync_dagster.failures.redaction import Redactor
    from restsync_dagster.load.preview import preview

    connector = load_connector(text, "generated.yaml")
    redactor = Redactor(env[n] for n in connector.secret_env if env.get(n))
    outcome: dict[str, str | None] = {}
    for info in connector.resources:
        try:
            preview(connector, env, resource=info.name, pages=1, samples=0)
            outcome[info.name] = None
        except Exception as exc:  # any failure is a finding to report, not a crash
            failure = classify(
                exc,
                connector=connector.name,
                retry_statuses=connector.config.retry.statuses,
                redactor=redactor,
                hints=connector.hints,
            )
            outcome[info.name] = " ".join(failure.message().split())[:300]
    return outcome


def mark_failures(text: str, failures: Mapping[str, str | None]) -> str:
    """``text`` with ``# check failed: <reason>`` above each resource that failed."""
    lines = text.splitlines(keepends=True)
    marked: list[str] = []
    for line in lines:
        for resource, reason in failures.items():
            if reason and line.rstrip("\n") == f"    - name: {resource}":
                marked.append(f"    # check failed: {reason}\n")
        marked.append(line)
    return "".join(marked)
