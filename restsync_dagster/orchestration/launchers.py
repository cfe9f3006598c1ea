"""Whether runs of an instance stay on the machine that holds a local destination.

A DuckDB file is one machine's: under a run launcher that puts each run somewhere else (Dagster's
``K8sRunLauncher``, ``DockerRunLauncher``, ``EcsRunLauncher``, any launcher of one's own), each
run writes its own file in its own container, lost with it; the next run restores its cursor
from an empty file, reads everything again, and every check passes. So a run under such a
launcher refuses DuckDB before any request, saying what to use instead.

The launchers that keep runs here are named by class (dagster 1.13): ``DefaultRunLauncher`` (a
process on this machine) and the in-memory launchers of ``execute_in_process`` and tests. A
subclass is another launcher (it may move runs anywhere), so the class must match exactly. The
class is read from the instance's configuration without building the launcher, which for some
(Kubernetes) needs credentials a run worker may not have.
"""

from __future__ import annotations

from typing import Any

from restsync_dagster.failures.errors import DestinationConfigError
from restsync_dagster.load.destination import SINGLE_WRITER_DESTINATIONS, destination_kind
from restsync_dagster.settings import Settings

#: ``module.Class`` of the run launchers that start runs on this machine (dagster 1.13).
LOCAL_LAUNCHERS = frozenset(
    {
        "dagster._core.launcher.default_run_launcher.DefaultRunLauncher",
        "dagster._core.launcher.sync_in_memory_run_launcher.SyncInMemoryRunLauncher",
        "dagster._core.launcher.DefaultRunLauncher",
        "dagster.DefaultRunLauncher",
        "dagster.core.launcher.DefaultRunLauncher",
    }
)


def run_launcher_class(instance: Any) -> str:
    """``module.Class`` of ``instance``'s run launcher."""
    launcher = getattr(instance, "_run_launcher", None)
    if launcher is not None:
        return f"{type(launcher).__module__}.{type(launcher).__qualname__}"
    ref = instance.get_ref()
    data = ref.run_launcher_data
    if data is None:
        return "dagster._core.launcher.default_run_launcher.DefaultRunLauncher"
    return f"{data.module_name}.{data.class_name}"


def refuse_local_destination_off_machine(instance: Any, settings: Settings) -> None:
    """Raise when the destination is a local file and the instance launches runs elsewhere.

    Raises:
        DestinationConfigError: one line: why, and what to use.
    """
    kind = destination_kind(settings)
    if kind not in SINGLE_WRITER_DESTINATIONS:
        return
    launcher = run_launcher_class(instance)
    if launcher in LOCAL_LAUNCHERS:
        return
    raise DestinationConfigError(
        f"RESTSYNC_DESTINATION={settings.destination!r} is a file on the run's own machine, and "
        f"this instance's run launcher ({launcher.rsplit('.', 1)[-1]}) starts runs elsewhere, "
        "where each run would write a file of its own and lose it: load into PostgreSQL "
        "(RESTSYNC_DESTINATION=postgres) or another shared destination."
    )
