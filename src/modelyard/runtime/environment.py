"""The environment of the work: the toolkit's ``SM_*`` variables and the platform's own.

Values follow the toolkit's ``mapping.to_env_vars``: strings verbatim, None as ``""``, anything
else JSON with sorted keys and ``(",", ":")`` separators.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from modelyard.runtime.hyperparameters import Hyperparameters
from modelyard.runtime.layout import GROUP_NAME, NETWORK_INTERFACE, Layout, input_data_config
from modelyard.runtime.layout import resource_config as build_resource_config
from modelyard.runtime.plan import HostPlan


def encode(value: Any) -> str:
    """One value as the toolkit exports it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def count_cpus() -> int:
    """CPUs this process may run on (an executor's affinity mask is respected)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def count_gpus(env: Mapping[str, str]) -> int:
    """GPUs given to the job: the executor's CUDA_VISIBLE_DEVICES, else MODELYARD_GPUS."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    try:
        return int(env.get("MODELYARD_GPUS", "0") or 0)
    except ValueError:
        return 0


def module_name(program: str | None) -> str | None:
    """The toolkit's module name: the entry point without ``.py``."""
    if program is None:
        return None
    return program[:-3] if program.endswith(".py") else program


def training_env(
    plan: HostPlan, layout: Layout, hps: Hyperparameters, num_gpus: int
) -> dict[str, Any]:
    """The toolkit's ``Environment`` as a dict (SM_TRAINING_ENV, and the source of SM_*)."""
    hosts = sorted(plan.hosts)
    program = hps.text("sagemaker_program")
    group = {"instance_group_name": GROUP_NAME, "instance_type": plan.instance_type, "hosts": hosts}
    return {
        "additional_framework_parameters": hps.framework_params,
        "channel_input_dirs": {
            c.name: layout.shown(f"input/data/{c.name}") for c in plan.channels
        },
        "current_host": plan.host,
        "current_instance_group": GROUP_NAME,
        "current_instance_group_hosts": hosts,
        "current_instance_type": plan.instance_type,
        "distribution_hosts": hosts,
        "distribution_instance_groups": [GROUP_NAME],
        "framework_module": os.environ.get("SAGEMAKER_TRAINING_MODULE"),
        "hosts": hosts,
        "hyperparameters": hps.user,
        "input_config_dir": layout.shown("input/config"),
        "input_data_config": input_data_config(plan),
        "input_dir": layout.shown("input"),
        "instance_groups": [GROUP_NAME],
        "instance_groups_dict": {GROUP_NAME: group},
        "is_hetero": False,
        "is_master": plan.host == hosts[0],
        "job_name": plan.job_name,
        "log_level": hps.log_level(),
        "master_hostname": hosts[0],
        "model_dir": layout.shown("model"),
        "module_dir": hps.text("sagemaker_submit_directory"),
        "module_name": module_name(program),
        "network_interface_name": NETWORK_INTERFACE,
        "num_cpus": count_cpus(),
        "num_gpus": num_gpus,
        "num_neurons": 0,
        "output_data_dir": layout.shown("output/data"),
        "output_dir": layout.shown("output"),
        "output_intermediate_dir": layout.shown("output/intermediate"),
        "resource_config": build_resource_config(plan),
        "user_entry_point": program,
    }


def sm_variables(env: dict[str, Any], user_args: list[str]) -> dict[str, str]:
    """The ``SM_*`` variables the toolkit exports for ``env`` (see :func:`training_env`)."""
    names = {
        "hosts": "hosts",
        "network_interface_name": "network_interface_name",
        "hps": "hyperparameters",
        "user_entry_point": "user_entry_point",
        "framework_params": "additional_framework_parameters",
        "resource_config": "resource_config",
        "input_data_config": "input_data_config",
        "output_data_dir": "output_data_dir",
        "current_host": "current_host",
        "current_instance_type": "current_instance_type",
        "current_instance_group": "current_instance_group",
        "current_instance_group_hosts": "current_instance_group_hosts",
        "instance_groups": "instance_groups",
        "instance_groups_dict": "instance_groups_dict",
        "distribution_instance_groups": "distribution_instance_groups",
        "is_hetero": "is_hetero",
        "module_name": "module_name",
        "log_level": "log_level",
        "framework_module": "framework_module",
        "input_dir": "input_dir",
        "input_config_dir": "input_config_dir",
        "output_dir": "output_dir",
        "num_cpus": "num_cpus",
        "num_gpus": "num_gpus",
        "num_neurons": "num_neurons",
        "model_dir": "model_dir",
        "module_dir": "module_dir",
        "output_intermediate_dir": "output_intermediate_dir",
    }
    values: dict[str, Any] = {name: env[key] for name, key in names.items()}
    values["channels"] = sorted(env["channel_input_dirs"])
    values["training_env"] = env
    values["user_args"] = user_args
    for channel, path in env["channel_input_dirs"].items():
        values[f"channel_{channel}"] = path
    for key, value in env["hyperparameters"].items():
        values[f"hp_{key}"] = value
    return {f"SM_{name.upper()}": encode(value) for name, value in values.items()}


def platform_variables(plan: HostPlan, layout: Layout) -> dict[str, str]:
    """What SageMaker itself (not the toolkit) puts in the container's environment."""
    return {
        "TRAINING_JOB_NAME": plan.job_name,
        "TRAINING_JOB_ARN": plan.job_arn,
        "SAGEMAKER_JOB_NAME": plan.job_name,
        "SAGEMAKER_REGION": plan.region,
        "AWS_REGION": plan.region,
        "AWS_DEFAULT_REGION": plan.region,
        "CURRENT_HOST": plan.host,
        "SAGEMAKER_BASE_DIR": layout.visible,
        # Logs go line by line into logs.jsonl; a buffered child would hold them back.
        "PYTHONUNBUFFERED": "1",
    }


def s3_endpoint(env: Mapping[str, str]) -> dict[str, str]:
    """S3_ENDPOINT_URL for the toolkit and boto3 inside the work, when the store has one."""
    endpoint = env.get("MODELYARD_S3_ENDPOINT_URL")
    return {"S3_ENDPOINT_URL": endpoint} if endpoint else {}
