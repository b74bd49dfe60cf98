"""Longer-running behaviour: requirements envs, checkpoints, stopping, isolation, many hosts."""

from __future__ import annotations

import json
import os
import signal
import tarfile
import time
from pathlib import Path

import pytest
from host_helpers import DUMP_SCRIPT, channel, run, script_hps, start, tiny_wheel, write_code

OFFLINE_PIP = {"PIP_NO_INDEX": "1"}


def _wait_for_log(job, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in job.logs():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never logged: {job.logs()}")


def test_requirements_are_installed_into_a_cached_env(make_job, tmp_path):
    package = tiny_wheel(tmp_path / "wheels")
    script = DUMP_SCRIPT + "import tinypkg, numpy\nprint('value', tinypkg.VALUE)\n"
    code = write_code(tmp_path / "code", {"train.py": script, "requirements.txt": f"{package}\n"})
    first = run(make_job("first", hyperparameters=script_hps(code), environment=OFFLINE_PIP))
    assert first.returncode == 0, first.logs()
    assert "value 42" in first.logs()
    envs = tmp_path / "home" / "envs"
    [env_dir] = [p for p in envs.iterdir() if p.is_dir()]
    assert (env_dir / ".complete").exists()
    exe = first.dump()["exe"]
    assert Path(exe).parent == env_dir / "bin"
    assert first.dump()["env"]["VIRTUAL_ENV"] == str(env_dir)
    assert any("Successfully installed tinypkg" in line for line in first.logs())

    second = run(make_job("second", hyperparameters=script_hps(code), environment=OFFLINE_PIP))
    assert second.returncode == 0, second.logs()
    assert "value 42" in second.logs()
    assert second.dump()["exe"] == exe
    assert any("Reusing the Python environment" in line for line in second.logs())
    assert not any("Successfully installed" in line for line in second.logs())


def test_failing_requirements_are_a_client_error(make_job, tmp_path):
    code = write_code(
        tmp_path / "code",
        {"train.py": DUMP_SCRIPT, "requirements.txt": "surely-not-a-package-xyz==1.0\n"},
    )
    job = run(make_job(hyperparameters=script_hps(code), environment=OFFLINE_PIP))
    assert job.returncode == 1
    assert job.exit_event()["failure"].startswith("ClientError: pip install -r")
    assert not [p for p in (tmp_path / "home" / "envs").iterdir() if p.is_dir()]


def test_checkpoints_are_restored_and_uploaded_while_running(make_job, tmp_path):
    remote = write_code(tmp_path / "s3ckpt" / "run1", {"epoch-1.txt": "one"})
    code = write_code(
        tmp_path / "code",
        {
            "train.py": """\
                import json, os, time
                config = os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "checkpointconfig.json")
                local = json.load(open(config))["LocalPath"]
                print("restored", sorted(os.listdir(local)))
                open(os.path.join(local, "epoch-2.txt"), "w").write("two")
                remote = os.path.join(os.environ["CKPT_REMOTE"], "epoch-2.txt")
                deadline = time.time() + 30
                while not os.path.exists(remote) and time.time() < deadline:
                    time.sleep(0.1)
                print("synced while running", os.path.exists(remote))
                open(os.path.join(local, "epoch-3.txt"), "w").write("three")
            """
        },
    )
    job = make_job(
        hyperparameters=script_hps(code),
        checkpoint_uri=str(remote),  # no trailing "/": a folder all the same
        environment={"CKPT_REMOTE": str(remote)},
    )
    run(job)
    assert job.returncode == 0, job.logs()
    assert "restored ['epoch-1.txt']" in job.logs()
    assert "synced while running True" in job.logs()
    assert sorted(p.name for p in remote.iterdir()) == ["epoch-1.txt", "epoch-2.txt", "epoch-3.txt"]
    assert (remote / "epoch-3.txt").read_text() == "three"


STOPPABLE = """\
    import os, signal, sys, time
    model = os.environ["SM_MODEL_DIR"]
    open(os.path.join(model, "model.txt"), "w").write("m")
    def on_term(signum, frame):
        open(os.path.join(model, "stopped.txt"), "w").write("s")
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term if os.environ.get("GRACEFUL") else signal.SIG_IGN)
    print("ready", flush=True)
    while True:
        time.sleep(0.1)
"""


@pytest.mark.parametrize("graceful", [True, False])
def test_sigterm_stops_the_work_and_still_uploads_the_model(make_job, tmp_path, graceful):
    code = write_code(tmp_path / "code", {"train.py": STOPPABLE})
    environment = {"GRACEFUL": "1"} if graceful else {}
    job = make_job(hyperparameters=script_hps(code), environment=environment)
    proc = start(job, MODELYARD_STOP_GRACE_SECONDS="1")
    try:
        _wait_for_log(job, "ready")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert job.exit_event() | {"t": 0} == {"t": 0, "event": "exit", "code": 143, "failure": None}
    expected = ["model.txt", "stopped.txt"] if graceful else ["model.txt"]
    with tarfile.open(job.plan.model_uri) as tar:
        assert sorted(tar.getnames()) == expected
    if not graceful:
        assert any("did not exit within 1s: SIGKILL" in line for line in job.logs())


def test_rewrite_mode_rewrites_opt_ml_values(make_job, tmp_path):
    code = write_code(tmp_path / "code", {"train.py": DUMP_SCRIPT})
    hps = script_hps(
        code,
        model_path="/opt/ml/model/extra",
        data=json.dumps("/opt/ml/input/data"),
        other="/opt/mlx/keep",
    )
    job = make_job(
        hyperparameters=hps, isolation="rewrite", environment={"DATA": "/opt/ml/input/data/t"}
    )
    run(job)
    assert job.returncode == 0, job.logs()
    tree = str(job.tree.resolve())
    dump = job.dump()
    assert dump["args"] == [
        "--data", f"{tree}/input/data",
        "--model_path", f"{tree}/model/extra",
        "--other", "/opt/mlx/keep",
    ]  # fmt: skip
    assert dump["env"]["DATA"] == f"{tree}/input/data/t"
    assert dump["env"]["SAGEMAKER_BASE_DIR"] == tree
    assert job.config("hyperparameters.json")["data"] == json.dumps(f"{tree}/input/data")


@pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")
def test_namespace_mode_gives_the_script_a_real_opt_ml(make_job, tmp_path):
    code = write_code(
        tmp_path / "code",
        {
            "train.py": """\
                import json, os, socket
                hps = json.load(open("/opt/ml/input/config/hyperparameters.json"))
                with open("/opt/ml/model/x", "w") as f:
                    json.dump({"hps": hps, "algo-2": socket.gethostbyname("algo-2"),
                               "model_dir": os.environ["SM_MODEL_DIR"],
                               "base": os.environ["SAGEMAKER_BASE_DIR"],
                               "master": os.environ["MASTER_ADDR"], "cwd": os.getcwd()}, f)
            """
        },
    )
    hps = script_hps(code, lr="0.1", out=json.dumps("/opt/ml/model"))
    job = make_job(hyperparameters=hps, isolation="namespace", hosts=["algo-1", "algo-2"])
    run(job)
    assert job.returncode == 0, job.logs()
    written = json.loads((job.tree / "model" / "x").read_text())
    assert written == {
        "hps": hps,  # not rewritten: /opt/ml is real here
        "algo-2": "127.0.0.1",
        "model_dir": "/opt/ml/model",
        "base": "/opt/ml",
        "master": "algo-1",
        "cwd": "/opt/ml/code",
    }
    assert not Path("/opt/ml/model/x").exists()  # the mount stayed private to the job
    with tarfile.open(job.plan.model_uri) as tar:
        assert tar.getnames() == ["x"]


def test_two_hosts_get_disjoint_shards_and_rendezvous_variables(make_job, tmp_path):
    files = {f"part-{i}.csv": f"{i}\n" for i in range(5)}
    data = write_code(tmp_path / "s3in" / "train", files)
    code = write_code(tmp_path / "code", {"train.py": DUMP_SCRIPT})
    jobs = [
        make_job(
            host=host,
            hosts=["algo-1", "algo-2"],
            hyperparameters=script_hps(code),
            channels=[channel("train", data, distribution="ShardedByS3Key")],
            master_port=29600,
            upload_outputs=host == "algo-1",
        )
        for host in ("algo-1", "algo-2")
    ]
    procs = [start(job) for job in jobs]
    for job, proc in zip(jobs, procs):
        proc.communicate(timeout=120)
        assert proc.returncode == 0, job.logs()
    shards = [sorted(os.listdir(job.tree / "input/data/train")) for job in jobs]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == sorted(files)
    envs = [job.dump()["env"] for job in jobs]
    for rank, env in enumerate(envs):
        assert {k: env[k] for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")} == {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "29600",
            "WORLD_SIZE": "2",
            "RANK": str(rank),
        }
        assert env["SM_HOSTS"] == '["algo-1","algo-2"]'
    assert envs[1]["SM_CURRENT_HOST"] == "algo-2"
    assert Path(jobs[0].plan.model_uri).exists()
