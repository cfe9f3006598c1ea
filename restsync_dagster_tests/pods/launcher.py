"""A Dagster run launcher that runs every run in a pod of its own (``namespaces.py``), the way
``K8sRunLauncher`` runs it in a Kubernetes Job: the command is ``dagster api execute_run`` with
the run's origin and the instance's reference, in the launcher's environment, with nothing of the
launching machine's local state.

Set it in ``dagster.yaml``::

    run_launcher:
      module: restsync_dagster_tests.pods.launcher
      class: PodRunLauncher
      config: {root: /path/for/pod/scratch, hostname: optional-same-for-all, first_pid: 4000}

Each pod is named ``run-<run id>``; the pod's ``DAGSTER_HOME`` gets this instance's
``dagster.yaml``. It does not report worker health (so run monitoring cannot tell a killed pod:
only restsync's own liveness check can, which is what the scenarios prove).

Written against dagster 1.13.27: ``RunLauncher``, ``LaunchRunContext``, ``ConfigurableClass``
and ``ExecuteRunArgs`` are Dagster's documented extension points for run launchers, under
private module paths (``dagster._core``, ``dagster._serdes``, ``dagster._grpc``); every pod
scenario fails at once if they move.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.launcher import LaunchRunContext, RunLauncher
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from restsync_dagster_tests.helpers import REPO
from restsync_dagster_tests.pods.namespaces import Pod, kill_pods, pod_pids, start_pod

_NOT_STARTED = (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING)
#: The tag naming the pod a run was launched into.
POD_TAG = "restsync-test/pod"


def run_pod_name(run_id: str) -> str:
    return f"run-{run_id}"


class PodRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run as ``dagster api execute_run`` in a new pod."""

    def __init__(
        self,
        root: str,
        hostname: str | None = None,
        first_pid: int | None = None,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        self._inst_data = inst_data
        self.root = Path(root)
        self.hostname = hostname
        self.first_pid = first_pid
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "root": dg.Field(str),
            "hostname": dg.Field(str, is_required=False),
            "first_pid": dg.Field(int, is_required=False),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: dict[str, Any]
    ) -> PodRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = context.job_code_origin
        assert origin is not None, "runs launched from a code location carry their origin"
        command = ExecuteRunArgs(
            job_origin=origin,
            run_id=run.run_id,
            instance_ref=self._instance.get_ref(),
            set_exit_code_on_failure=True,
        ).get_command_args()
        home = Path(os.environ["DAGSTER_HOME"])
        pod = Pod(
            name=run_pod_name(run.run_id),
            hostname=self.hostname or f"run-{run.run_id[:8]}",
            root=self.root,
            files={str(home / "dagster.yaml"): (home / "dagster.yaml").read_text()},
            first_pid=self.first_pid,
        )
        process = start_pod(pod, command, os.environ, cwd=REPO)
        threading.Thread(target=self._reap, args=(process, pod), daemon=True).start()
        self._instance.add_run_tags(run.run_id, {POD_TAG: pod.name})
        self._instance.report_engine_event(
            f"Launched in pod {pod.name} (hostname {pod.hostname}, machine pid {process.pid})",
            run,
            cls=self.__class__,
        )

    def _reap(self, process: subprocess.Popen[bytes], pod: Pod) -> None:
        """Wait for the pod's end (a dead pod must not linger as a zombie). A pod that ended
        before its run started (a broken image, a bad command) fails the run with the pod's last
        lines, as run monitoring does for a Job that never started; a run that started is left
        to what restsync and Dagster do about a worker that died."""
        code = process.wait()
        run = self._instance.get_run_by_id(pod.name.removeprefix("run-"))
        if run is not None and run.status in _NOT_STARTED:
            tail = pod.log.read_text(errors="replace")[-2000:] if pod.log.exists() else ""
            self._instance.report_run_failed(
                run, message=f"pod {pod.name} exited {code} before the run started:\n{tail}"
            )

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished or not pod_pids(run_pod_name(run_id)):
            return False
        self._instance.report_run_canceling(run)
        kill_pods(run_pod_name(run_id))
        self._instance.report_run_canceled(run, message="its pod was deleted")
        return True
