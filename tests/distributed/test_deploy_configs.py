"""The committed Serve config and KubeRay manifest are valid, agree, and refuse an open cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ray_helpers import import_ray

ROOT = Path(__file__).resolve().parents[2]
SERVE_YAML = ROOT / "deploy" / "ray" / "serve.yaml"
KUBERAY_YAML = ROOT / "deploy" / "kuberay" / "xtts-rayservice.yaml"


def serve_configs() -> list[tuple[str, dict[str, Any]]]:
    import yaml

    service, volume = yaml.safe_load_all(KUBERAY_YAML.read_text())
    assert service["kind"] == "RayService" and volume["kind"] == "PersistentVolumeClaim"
    assert volume["spec"]["accessModes"] == ["ReadWriteMany"]  # voices shared by every pod
    return [
        ("serve.yaml", yaml.safe_load(SERVE_YAML.read_text())),
        ("rayservice", yaml.safe_load(service["spec"]["serveConfigV2"])),
    ]


@pytest.mark.parametrize("name", ["serve.yaml", "rayservice"])
def test_configs_parse_and_build(name: str, tmp_path: Path) -> None:
    import_ray()
    from ray.serve.schema import ServeDeploySchema

    from xtts_server.distributed.deployment import app_builder
    from xtts_server.distributed.options import APP_NAME, RaySettings, deployment_options
    from xtts_server.server.auth import InsecureConfig
    from xtts_server.server.settings import Settings

    config = dict(serve_configs())[name]
    ServeDeploySchema.model_validate(config)  # what `serve deploy` and KubeRay check
    (app,) = config["applications"]
    assert app["name"] == APP_NAME and app["route_prefix"] == "/"
    assert app["import_path"] == "xtts_server.distributed.deployment:app_builder"
    args = app["args"]
    options = deployment_options(Settings(**args["settings"]), RaySettings(**args["ray"]))
    assert options["max_ongoing_requests"] == 64 and options["ray_actor_options"]["num_gpus"] == 1
    assert options["autoscaling_config"]["max_replicas"] == 8

    keys = tmp_path / "api-keys"
    keys.write_text("# the cluster's keys\n" + "k" * 32 + "\n")
    app_builder({**args, "settings": {**args["settings"], "api_key_file": str(keys)}})
    open_cluster = {k: v for k, v in args["settings"].items() if k != "api_key_file"}
    with pytest.raises(InsecureConfig, match="without API keys"):  # even with host left at loopback
        app_builder({**args, "settings": open_cluster})
    with pytest.raises(ValueError, match="unknown args"):
        app_builder({**args, "replicas": 2})


def test_the_gpu_pods_match_the_replicas() -> None:
    import yaml

    service = next(yaml.safe_load_all(KUBERAY_YAML.read_text()))
    args = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]["args"]
    (group,) = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    (container,) = group["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == args["ray"]["gpus_per_replica"]
    assert group["maxReplicas"] == args["ray"]["max_replicas"]
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # no replica on the CPU-only head
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {args["settings"]["voices_dir"], str(Path(args["settings"]["api_key_file"]).parent)} <= mounts
