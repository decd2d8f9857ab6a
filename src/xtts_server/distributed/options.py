"""Ray Serve settings (flags or XTTS_RAY_* variables) and the deployment options derived from them."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from xtts_server.distributed.capacity import replica_capacity
from xtts_server.server.settings import Settings

APP_NAME = "xtts"
DEPLOYMENT_NAME = "XTTS"


class RaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XTTS_RAY_", extra="ignore")

    address: str | None = Field(
        default=None, description="Ray cluster to join (e.g. ray://head:10001 or auto); none = start one here"
    )
    replicas: int = Field(default=1, ge=1, description="replicas at start; the minimum when autoscaling")
    max_replicas: int | None = Field(
        default=None, ge=1, description="autoscale between `replicas` and this many; none = a fixed count"
    )
    target_utilization: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description="autoscaling keeps each replica's ongoing requests near this share of its capacity",
    )
    autoscaling: dict[str, float] = Field(
        default_factory=dict,
        description="more fields of Ray's autoscaling_config (upscale_delay_s, downscale_delay_s, "
        "metrics_interval_s, look_back_period_s, ...); env XTTS_RAY_AUTOSCALING as JSON",
    )
    gpus_per_replica: float | None = Field(
        default=None, ge=0, description="GPUs each replica holds; none = 1, or 0 when the device is cpu"
    )
    cpus_per_replica: float = Field(default=1.0, ge=0, description="CPUs Ray reserves for each replica")
    torch_threads: int | None = Field(
        default=None, ge=1, description="torch.set_num_threads in each replica; none = torch's default"
    )
    max_queued_requests: int | None = Field(
        default=None,
        ge=-1,
        description="requests each proxy holds for a free replica before 503; none = one replica's "
        "capacity, -1 = no limit",
    )
    health_check_period_s: float = Field(default=10.0, gt=0, description="how often Ray probes /ready")
    health_check_timeout_s: float = Field(default=30.0, gt=0)
    graceful_shutdown_timeout_s: float | None = Field(
        default=None,
        ge=0,
        description="how long a stopping replica lets its streams finish; none = shutdown_timeout_s + 5",
    )

    @model_validator(mode="after")
    def _replica_range(self) -> RaySettings:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below replicas ({self.replicas}); "
                "it is the upper bound of autoscaling"
            )
        return self


def deployment_options(settings: Settings, ray: RaySettings) -> dict[str, Any]:
    """Keyword arguments of `Deployment.options()` for one engine per replica: capacity from
    `replica_capacity`, autoscaling on ongoing requests, overload answered like the single server
    (503 with Retry-After), health probed through /ready."""
    capacity = replica_capacity(settings)
    gpus = ray.gpus_per_replica
    if gpus is None:
        gpus = 0.0 if settings.device == "cpu" else 1.0
    options: dict[str, Any] = {
        "max_ongoing_requests": capacity,
        "max_queued_requests": capacity if ray.max_queued_requests is None else ray.max_queued_requests,
        "backpressure_config": {"status_code": 503, "retry_after_s": settings.retry_after_s},
        "ray_actor_options": {"num_cpus": ray.cpus_per_replica, "num_gpus": gpus},
        "health_check_period_s": ray.health_check_period_s,
        "health_check_timeout_s": ray.health_check_timeout_s,
        "graceful_shutdown_timeout_s": (
            settings.shutdown_timeout_s + 5
            if ray.graceful_shutdown_timeout_s is None
            else ray.graceful_shutdown_timeout_s
        ),
    }
    if ray.max_replicas is None or ray.max_replicas == ray.replicas:
        options["num_replicas"] = ray.replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": ray.replicas,
            "initial_replicas": ray.replicas,
            "max_replicas": ray.max_replicas,
            "target_ongoing_requests": max(1, math.floor(capacity * ray.target_utilization)),
            **ray.autoscaling,
        }
    return options
