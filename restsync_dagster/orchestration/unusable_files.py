"""A connector file that cannot be used, shown in Dagster where its connector's assets would be.

One bad file must not take the code location, and every valid connector in it, down: the code
location loads the rest, and the bad file becomes stand-in assets. They keep the keys of the
file's resources when the names can be read (``[shop, orders]``: the asset page a user already
knows, with its history, now says what is wrong), else one ``[<name>, connector_file]``; they
sit in the connector's group, carry the problem lines in their description (shown on the asset
page and in the graph) and in ``restsync/problems`` metadata, and are tagged
``restsync/unusable_file``. Materializing them (*Materialize all*, a backfill) fails at once with
the problem lines, as an ``invalid_config`` failure the retry sensor never retries: the problem is
in front of anyone who tries to load the data, as a failed run, not a silently missing asset.

No ``<connector>_sync`` job, schedule or env resource is built for such a file: nothing of it
runs on a timer until the file is fixed. ``restsync validate`` still fails on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import dagster as dg
import yaml

from restsync_dagster import names
from restsync_dagster.connector import Problem, declared_name, shown_path
from restsync_dagster.failures.errors import FailureKind

#: The tag that marks a stand-in asset.
UNUSABLE_FILE_TAG = f"{names.PREFIX}/unusable_file"
#: The asset name of a stand-in for a file whose resource names cannot be read.
FILE_ASSET = "connector_file"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def build_unusable_file_assets(
    bad_files: Mapping[Path, Sequence[Problem]], taken: Iterable[str]
) -> list[dg.AssetsDefinition]:
    """One multi-asset per unusable file.

    Args:
        bad_files: Each unusable file, with its problems.
        taken: Group names already used (the valid connectors'): a stand-in never shares one.
    """
    used = set(taken)
    built = []
    for path, problems in bad_files.items():
        group = _group_name(path, used)
        used.add(group)
        built.append(_stand_in(path, group, list(problems)))
    return built


def _stand_in(path: Path, group: str, problems: list[Problem]) -> dg.AssetsDefinition:
    lines = [str(p) for p in problems]
    description = (
        f"The connector file {shown_path(path)} cannot be used, so this connector is not loaded; the other "
        "connectors are. Fix the file (`restsync validate` lists the same problems):\n\n"
        + "\n".join(f"- `{line}`" for line in lines)
    )
    specs = [
        dg.AssetSpec(
            key=names.asset_key_path(group, resource),
            group_name=group,
            description=description,
            tags={UNUSABLE_FILE_TAG: "true"},
            kinds={"restsync"},
            metadata={
                names.CONNECTOR_FILE_KEY: shown_path(path),
                f"{names.PREFIX}/problems": dg.MetadataValue.text("\n".join(lines)),
            },
        )
        for resource in _resource_names(path) or [FILE_ASSET]
    ]

    @dg.multi_asset(specs=specs, name=f"{group}_unusable_file", can_subset=True)
    def unusable_file():  # type: ignore[no-untyped-def]  # Dagster reads a return annotation as outputs
        raise dg.Failure(
            description=f"connector file {shown_path(path)} cannot be used:\n" + "\n".join(lines),
            metadata={
                names.failure_key("connector"): group,
                names.failure_key("kind"): str(FailureKind.INVALID_CONFIG),
                names.failure_key("transient"): False,
                names.failure_key("detail"): "\n".join(lines),
            },
            allow_retries=False,
        )

    return unusable_file


def _group_name(path: Path, used: set[str]) -> str:
    """The file's declared connector name when usable and free, else its file name's stem."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", path.stem) or "connector"
    for candidate in (declared_name(path), stem):
        if candidate and _NAME.match(candidate) and candidate not in used:
            return candidate
    count = 2
    while f"{stem}_{count}" in used:
        count += 1
    return f"{stem}_{count}"


def _resource_names(path: Path) -> list[str]:
    """The names of ``source.resources`` when every one can be read, else none."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        resources = document["source"]["resources"]
        found = [r if isinstance(r, str) else r["name"] for r in resources]
    except Exception:  # any shape at all: the file is known to be broken
        return []
    valid = all(isinstance(n, str) and _NAME.match(n) for n in found)
    return found if found and valid and len(set(found)) == len(found) else []
