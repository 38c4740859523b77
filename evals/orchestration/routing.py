"""Where tasks run: GPU work on the GPU queue and pool, with a pod override under KubernetesExecutor."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Routing:
    """The parse-time settings a DAG needs to route tasks (read from EVALS_* like every other setting)."""

    gpu_queue: str
    gpu_pool: str
    retries: int
    schedule: str
    approval_timeout_s: float = 24 * 3600.0
    retry_delay_s: float = 30.0

    @classmethod
    def from_settings(cls) -> Routing:
        # Only names and numbers: reading them at parse time costs microseconds and touches no service.
        from evals.settings import get_settings

        settings = get_settings()
        return cls(
            settings.gpu_queue,
            settings.gpu_pool,
            settings.task_retries,
            settings.schedule,
            settings.approval_timeout_s,
            settings.task_retry_delay_s,
        )

    def gpu_task_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"queue": self.gpu_queue, "pool": self.gpu_pool}
        pod_override = _kubernetes_gpu_pod_override()
        if pod_override is not None:
            kwargs["executor_config"] = {"pod_override": pod_override}
        return kwargs


def _kubernetes_gpu_pod_override() -> Any:
    """A V1Pod requesting one ``nvidia.com/gpu``, only when a KubernetesExecutor is configured."""
    executor = os.environ.get("AIRFLOW__CORE__EXECUTOR", "")
    if "Kubernetes" not in executor:
        return None
    from kubernetes.client import models as k8s  # present wherever KubernetesExecutor runs

    return k8s.V1Pod(
        spec=k8s.V1PodSpec(
            containers=[
                k8s.V1Container(
                    name="base",
                    resources=k8s.V1ResourceRequirements(limits={"nvidia.com/gpu": "1"}),
                )
            ],
            tolerations=[k8s.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
        )
    )
