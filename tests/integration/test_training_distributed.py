"""Multi-host training jobs through boto3 against a live server: InstanceCount > 1.

Every host (algo-1 .. algo-N) is its own runtime process on this machine. The plain-script tests
check what each host sees and what the job keeps; the ``torch`` tests run real PyTorch
distributed training over gloo, once through torchrun (``distribution={"torch_distributed": ...}``)
and once as plain processes that rendezvous through ``env://``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import make_sourcedir, model_files, script_job
from tests.support.server import RunningServer, start_server, wait_for_job

PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
#: the prefix of the log line in which a host reports what it saw
DUMP = "HOST-DUMP "


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Enough declared capacity for two ml.m5.large hosts at once.
    env = {"MODELYARD_CPUS": "8", "MODELYARD_MEMORY_GIB": "64"}
    running = start_server(tmp_path_factory.mktemp("home"), env)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def rewrite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose jobs see rewritten paths and no algo-N names (what non-root users get)."""
    env = {"MODELYARD_CPUS": "8", "MODELYARD_MEMORY_GIB": "64", "MODELYARD_ISOLATION": "rewrite"}
    running = start_server(tmp_path_factory.mktemp("home-rewrite"), env)
    yield running
    running.stop()


@pytest.fixture
def torch_installed() -> None:
    """Skip without PyTorch, unless MODELYARD_REQUIRE_BACKENDS=1 (CI) demands it."""
    if importlib.util.find_spec("torch") is not None:
        return
    reason = "PyTorch is not installed (pip install 'modelyard[torch]')"
    if os.environ.get("MODELYARD_REQUIRE_BACKENDS") == "1":
        pytest.fail(f"{reason}, and MODELYARD_REQUIRE_BACKENDS=1 requires every backend")
    pytest.skip(reason)


def two_hosts(name: str, code: Path, output: str, **extra: Any) -> dict[str, Any]:
    """A script-mode CreateTrainingJob request for InstanceCount=2."""
    return script_job(name, code, output, ResourceConfig={"InstanceCount": 2}, **extra)


def log_streams(server: RunningServer, job: str) -> dict[str, list[str]]:
    """Every stream of ``job`` as the SDK reads them: stream name → messages."""
    logs = server.client("logs")
    streams = logs.describe_log_streams(
        logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/", orderBy="LogStreamName", limit=2
    )
    assert "nextToken" not in streams  # the SDK loops while it is present
    result: dict[str, list[str]] = {}
    for stream in streams["logStreams"]:
        name = stream["logStreamName"]
        events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=name, startFromHead=True)
        result[name] = [e["message"] for e in events["events"]]
    return result


def host_dumps(server: RunningServer, job: str) -> dict[str, dict[str, Any]]:
    """The DUMP record each host printed, by the host named in its log stream."""
    dumps: dict[str, dict[str, Any]] = {}
    for stream, messages in log_streams(server, job).items():
        host = stream.split("/", 1)[1].rsplit("-", 1)[0]
        found = [json.loads(m[len(DUMP):]) for m in messages if m.startswith(DUMP)]
        assert len(found) == 1, (stream, messages)
        dumps[host] = found[0]
    return dumps


HOST_VIEW = f"""
import json, os, socket
def listing(channel):
    root = os.environ["SM_CHANNEL_" + channel.upper()]
    return sorted(os.listdir(root))
config = json.load(open("/opt/ml/input/config/resourceconfig.json"))
dump = {{
    "hosts": os.environ["SM_HOSTS"],
    "current_host": os.environ["SM_CURRENT_HOST"],
    "resourceconfig": config,
    "sharded": listing("sharded"),
    "replicated": listing("replicated"),
    "rendezvous": {{
        k: os.environ.get(k) for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")
    }},
    "master_ip": socket.gethostbyname(os.environ["MASTER_ADDR"]),
}}
print({DUMP!r} + json.dumps(dump), flush=True)
model = os.environ["SM_MODEL_DIR"]
open(os.path.join(model, "host.txt"), "w").write(os.environ["SM_CURRENT_HOST"])
"""


def channel(name: str, source: Path, distribution: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": str(source) + "/",
            "S3DataDistributionType": distribution,
        }},
    }


def test_two_hosts_each_see_their_own_host_and_shard(
    server: RunningServer, sm: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    names = [f"part-{i}.csv" for i in range(4)]
    for index, file in enumerate(names):
        (data / file).write_text(f"{index}\n")
    code = make_sourcedir(tmp_path / "code", HOST_VIEW)
    request = two_hosts(
        "multi-host-1", code, "s3://dist-bucket/jobs",
        InputDataConfig=[
            channel("sharded", data, "ShardedByS3Key"),
            channel("replicated", data, "FullyReplicated"),
        ],
    )
    sm.create_training_job(**request)
    job = wait_for_job(sm, "multi-host-1")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ResourceConfig"]["InstanceCount"] == 2

    dumps = host_dumps(server, "multi-host-1")
    assert sorted(dumps) == ["algo-1", "algo-2"]
    for host, dump in dumps.items():
        assert json.loads(dump["hosts"]) == ["algo-1", "algo-2"]
        assert dump["current_host"] == host
        assert dump["resourceconfig"]["current_host"] == host
        assert dump["resourceconfig"]["hosts"] == ["algo-1", "algo-2"]
        assert dump["replicated"] == names
        assert len(dump["sharded"]) == 2
    one, two = dumps["algo-1"]["sharded"], dumps["algo-2"]["sharded"]
    assert set(one).isdisjoint(two) and sorted(one + two) == names
    rendezvous = {host: dump["rendezvous"] for host, dump in dumps.items()}
    assert rendezvous["algo-1"]["RANK"] == "0" and rendezvous["algo-2"]["RANK"] == "1"
    assert {r["WORLD_SIZE"] for r in rendezvous.values()} == {"2"}
    assert rendezvous["algo-1"]["MASTER_PORT"] == rendezvous["algo-2"]["MASTER_PORT"]
    assert rendezvous["algo-1"]["MASTER_ADDR"] == rendezvous["algo-2"]["MASTER_ADDR"]
    assert rendezvous["algo-1"]["MASTER_ADDR"] in ("algo-1", "127.0.0.1")  # by isolation mode
    assert {dump["master_ip"] for dump in dumps.values()} == {"127.0.0.1"}

    # Only the first host uploads: the model holds algo-1's file, and nothing of algo-2's.
    model = model_files(server, job["ModelArtifacts"]["S3ModelArtifacts"])
    assert model == {"host.txt": b"algo-1"}


def test_log_streams_are_one_per_host(server: RunningServer, sm: Any, tmp_path: Path) -> None:
    script = "import os\nprint('hello from', os.environ['SM_CURRENT_HOST'], flush=True)\n"
    code = make_sourcedir(tmp_path / "code", script)
    sm.create_training_job(**two_hosts("multi-logs-1", code, "s3://dist-bucket/jobs"))
    job = wait_for_job(sm, "multi-logs-1")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    streams = log_streams(server, "multi-logs-1")
    assert len(streams) == 2
    for host in ("algo-1", "algo-2"):
        [name] = [s for s in streams if s.startswith(f"multi-logs-1/{host}-")]
        assert name.rsplit("-", 1)[1].isdigit()  # {job}/algo-N-{epochSeconds}
        assert f"hello from {host}" in streams[name]


FAIL_ON_SECOND = """
import os, sys, time
if os.environ["SM_CURRENT_HOST"] == "algo-2":
    time.sleep(1)
    open("/opt/ml/output/failure", "w").write("algo-2 ran out of luck")
    sys.exit(3)
print("algo-1 is fine", flush=True)
time.sleep(120)  # as if blocked waiting for algo-2: the platform must end it
"""


def test_a_failure_on_the_second_host_fails_the_job(
    server: RunningServer, sm: Any, tmp_path: Path
) -> None:
    code = make_sourcedir(tmp_path / "code", FAIL_ON_SECOND)
    sm.create_training_job(**two_hosts("multi-fail-1", code, "s3://dist-bucket/jobs"))
    job = wait_for_job(sm, "multi-fail-1", timeout=60)  # well before algo-1's 120 s nap
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "algo-2 ran out of luck"
    streams = log_streams(server, "multi-fail-1")
    [first] = [m for s, m in streams.items() if "/algo-1-" in s]
    assert "algo-1 is fine" in first


DDP_SCRIPT = """
import json, os
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
total = torch.tensor([float(rank + 1)])
dist.all_reduce(total)

torch.manual_seed(0)  # the same start on every rank; DDP also broadcasts rank 0's weights
model = DistributedDataParallel(torch.nn.Linear(4, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
generator = torch.Generator().manual_seed(100 + rank)  # each rank its own batch
true_weight = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
for step in range(5):
    x = torch.randn(16, 4, generator=generator)
    loss = torch.nn.functional.mse_loss(model(x), x @ true_weight.T)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

# after every step the ranks hold the same weights: gather them to check
weights = [torch.zeros(5) for _ in range(world)]
flat = torch.cat([p.detach().flatten() for p in model.module.parameters()])
dist.all_gather(weights, flat)
if rank == 0:
    model_dir = os.environ["SM_MODEL_DIR"]
    torch.save(model.module.state_dict(), os.path.join(model_dir, "model.pt"))
    result = {
        "all_reduce": total.item(),
        "world_size": world,
        "same_weights": all(torch.equal(w, weights[0]) for w in weights),
        "torchrun": "TORCHELASTIC_RUN_ID" in os.environ,
    }
    json.dump(result, open(os.path.join(model_dir, "result.json"), "w"))
dist.barrier()
dist.destroy_process_group()
"""


def ddp_job(name: str, code: Path, torchrun: bool) -> dict[str, Any]:
    """A two-host PyTorch job, launched through torchrun or as plain processes."""
    hps = {"sagemaker_torch_distributed_enabled": "true"} if torchrun else {}
    return two_hosts(
        name, code, "s3://dist-bucket/jobs", hyperparameters=hps,
        AlgorithmSpecification={"TrainingImage": PYTORCH_IMAGE},
    )


def check_ddp_model(server: RunningServer, job: dict[str, Any], torchrun: bool) -> None:
    """The job completed, rank 0 saw both ranks and saved a loadable model."""
    import torch

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = model_files(server, job["ModelArtifacts"]["S3ModelArtifacts"])
    result = json.loads(model["result.json"])
    expected = {"all_reduce": 3.0, "world_size": 2, "same_weights": True, "torchrun": torchrun}
    assert result == expected
    state = torch.load(io.BytesIO(model["model.pt"]), weights_only=True)
    linear = torch.nn.Linear(4, 1)
    linear.load_state_dict(state)
    assert linear.weight.shape == (1, 4) and torch.isfinite(linear.weight).all()


@pytest.mark.torch
def test_torch_distributed_runs_torchrun_on_every_host(
    torch_installed: None, server: RunningServer, sm: Any, tmp_path: Path
) -> None:
    code = make_sourcedir(tmp_path / "code", DDP_SCRIPT)
    sm.create_training_job(**ddp_job("ddp-torchrun-1", code, torchrun=True))
    job = wait_for_job(sm, "ddp-torchrun-1")
    check_ddp_model(server, job, torchrun=True)


@pytest.mark.torch
@pytest.mark.parametrize("isolation", ["auto", "rewrite"])
def test_plain_processes_rendezvous_through_env(
    torch_installed: None, isolation: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # init_process_group's default init_method is env://: MASTER_ADDR, MASTER_PORT, WORLD_SIZE
    # and RANK come from the runtime alone, whether or not algo-N names resolve.
    fixture = "server" if isolation == "auto" else "rewrite_server"
    running: RunningServer = request.getfixturevalue(fixture)
    client = running.client("sagemaker")
    code = make_sourcedir(tmp_path / "code", DDP_SCRIPT)
    client.create_training_job(**ddp_job("ddp-env-1", code, torchrun=False))
    job = wait_for_job(client, "ddp-env-1")
    check_ddp_model(running, job, torchrun=False)


def test_torch_distributed_needs_a_python_script(
    server: RunningServer, sm: Any, tmp_path: Path
) -> None:
    # As the PyTorch container says: torchrun starts a script, not a shell command.
    code = make_sourcedir(tmp_path / "code", "", files={"train.sh": "echo ran\n"})
    request = ddp_job("ddp-shell-1", code, torchrun=True)
    request["HyperParameters"]["sagemaker_program"] = '"train.sh"'
    sm.create_training_job(**request)
    job = wait_for_job(sm, "ddp-shell-1")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: Unsupported entry point type for torch_distributed"
