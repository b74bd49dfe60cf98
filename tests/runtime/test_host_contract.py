"""The /opt/ml contract as a script sees it: config files, SM_* variables, arguments."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

from host_helpers import DUMP_SCRIPT, channel, run, script_hps, write_code

from modelyard.runtime.plan import ChannelPlan


def _data(root: Path, name: str, files: dict[str, str]) -> Path:
    return write_code(root / "s3in" / name, files)


def test_config_files_have_the_container_shapes(make_job, tmp_path):
    train = _data(tmp_path, "train", {"a.csv": "1,2\n"})
    code = write_code(tmp_path / "code", {"train.py": DUMP_SCRIPT})
    hps = script_hps(code, epochs="2", lr="0.1")
    job = make_job(
        hyperparameters=hps,
        hosts=["algo-2", "algo-1"],
        channels=[
            channel("train", train, content_type="text/csv"),
            ChannelPlan(
                name="validation",
                source_uri=str(train) + "/",
                input_mode="FastFile",
                distribution="ShardedByS3Key",
                compression="Gzip",
            ),
        ],
        checkpoint_uri=str(tmp_path / "ckpt"),
        upload_outputs=True,
    )
    run(job)
    assert job.returncode == 0, job.logs()
    assert job.config("hyperparameters.json") == hps
    assert job.config("inputdataconfig.json") == {
        "train": {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
            "ContentType": "text/csv",
        },
        "validation": {
            "TrainingInputMode": "FastFile",
            "S3DistributionType": "ShardedByS3Key",
            "RecordWrapperType": "None",
            "CompressionType": "Gzip",
        },
    }
    assert job.config("resourceconfig.json") == {
        "current_host": "algo-1",
        "current_instance_type": "ml.m5.xlarge",
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1", "algo-2"],
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": "ml.m5.xlarge",
                "hosts": ["algo-1", "algo-2"],
            }
        ],
        "network_interface_name": "eth0",
    }
    assert job.config("checkpointconfig.json") == {
        "LocalPath": str(job.tree.resolve() / "checkpoints"),
        "S3Uri": str(tmp_path / "ckpt"),
    }
    training = job.config("trainingjobconfig.json")
    assert training["TrainingJobName"] == "job"
    assert training["HyperParameters"] == hps
    assert [c["ChannelName"] for c in training["InputDataConfig"]] == ["train", "validation"]
    assert (job.tree / "input/data/train/a.csv").read_text() == "1,2\n"
    assert job.statuses() == ["Downloading", "Training", "Uploading"]
    assert job.exit_event()["code"] == 0 and job.exit_event()["failure"] is None
    assert (job.tree / "output" / "success").exists()


def test_sm_environment_matches_the_toolkit(make_job, tmp_path):
    train = _data(tmp_path, "train", {"a.csv": "1\n"})
    code = write_code(tmp_path / "code", {"train.py": DUMP_SCRIPT})
    hps = script_hps(
        code,
        **{"learning-rate": "0.1", "epochs": "3", "_tuning_objective_metric": "auc"},
        sagemaker_pytorch_ddp_enabled="false",
    )
    job = make_job(
        hyperparameters=hps,
        channels=[channel("train", train)],
        environment={"MY_VAR": "hello"},
        region="eu-west-1",
        master_port=29555,
    )
    run(job)
    assert job.returncode == 0, job.logs()
    dump = job.dump()
    env, tree = dump["env"], str(job.tree.resolve())
    expected = {
        "SM_MODEL_DIR": f"{tree}/model",
        "SM_CHANNELS": '["train"]',
        "SM_CHANNEL_TRAIN": f"{tree}/input/data/train",
        "SM_HPS": '{"epochs":3,"learning-rate":0.1}',
        "SM_HP_EPOCHS": "3",
        "SM_HP_LEARNING-RATE": "0.1",
        "SM_HOSTS": '["algo-1"]',
        "SM_CURRENT_HOST": "algo-1",
        "SM_CURRENT_INSTANCE_TYPE": "ml.m5.xlarge",
        "SM_CURRENT_INSTANCE_GROUP": "homogeneousCluster",
        "SM_CURRENT_INSTANCE_GROUP_HOSTS": '["algo-1"]',
        "SM_INSTANCE_GROUPS": '["homogeneousCluster"]',
        "SM_IS_HETERO": "false",
        "SM_LOG_LEVEL": "20",
        "SM_NETWORK_INTERFACE_NAME": "eth0",
        "SM_USER_ARGS": '["--epochs","3","--learning-rate","0.1"]',
        "SM_INPUT_DIR": f"{tree}/input",
        "SM_INPUT_CONFIG_DIR": f"{tree}/input/config",
        "SM_OUTPUT_DIR": f"{tree}/output",
        "SM_OUTPUT_DATA_DIR": f"{tree}/output/data",
        "SM_OUTPUT_INTERMEDIATE_DIR": f"{tree}/output/intermediate",
        "SM_MODULE_NAME": "train",
        "SM_MODULE_DIR": str(code),
        "SM_USER_ENTRY_POINT": "train.py",
        "SM_FRAMEWORK_PARAMS": '{"sagemaker_pytorch_ddp_enabled":false}',
        "SM_NUM_GPUS": "0",
        "TRAINING_JOB_NAME": "job",
        "TRAINING_JOB_ARN": job.plan.job_arn,
        "SAGEMAKER_JOB_NAME": "job",
        "SAGEMAKER_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "CURRENT_HOST": "algo-1",
        "SAGEMAKER_BASE_DIR": tree,
        "MY_VAR": "hello",
        "PYTHONUNBUFFERED": "1",
        "MODELYARD_MASTER_PORT": "29555",
    }
    assert {k: env.get(k) for k in expected} == expected
    assert int(env["SM_NUM_CPUS"]) == len(os.sched_getaffinity(0))
    assert json.loads(env["SM_RESOURCE_CONFIG"]) == job.config("resourceconfig.json")
    assert json.loads(env["SM_INPUT_DATA_CONFIG"]) == job.config("inputdataconfig.json")
    assert json.loads(env["SM_INSTANCE_GROUPS_DICT"])["homogeneousCluster"]["hosts"] == ["algo-1"]
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["channel_input_dirs"] == {"train": f"{tree}/input/data/train"}
    assert training_env["hyperparameters"] == {"epochs": 3, "learning-rate": 0.1}
    assert training_env["job_name"] == "job"
    assert training_env["module_name"] == "train"
    assert training_env["model_dir"] == f"{tree}/model"
    assert training_env["hosts"] == ["algo-1"] and training_env["current_host"] == "algo-1"
    assert "_tuning_objective_metric" not in env["SM_HPS"]
    assert "MASTER_ADDR" not in env  # one host: no rendezvous
    assert Path(dump["cwd"]) == job.tree.resolve() / "code"
    assert dump["args"] == ["--epochs", "3", "--learning-rate", "0.1"]
    assert "dumped" in job.logs()


def test_arguments_are_built_as_the_toolkit_builds_them(make_job, tmp_path):
    code = write_code(tmp_path / "code", {"train.py": DUMP_SCRIPT})
    hps = script_hps(
        code,
        batch_size="64",  # generic Estimator: str(v)
        lr=json.dumps(0.01),  # Framework estimators JSON-encode
        optimizer=json.dumps("adam"),
        config=json.dumps({"b": 2, "a": "x"}),
        flag=json.dumps(True),
        off="false",
        nothing="null",
        k="5",
        text="not json {",
        sagemaker_distribution_instance_groups="[]",
    )
    job = make_job(hyperparameters=hps)
    run(job)
    assert job.returncode == 0, job.logs()
    assert job.dump()["args"] == [
        "--batch_size", "64",
        "--config", "a=x,b=2",
        "--flag", "True",
        "-k", "5",
        "--lr", "0.01",
        "--nothing", "",
        "--off", "False",
        "--optimizer", "adam",
        "--text", "not json {",
    ]  # fmt: skip


def test_model_and_output_archives_are_uploaded(make_job, tmp_path):
    code = write_code(
        tmp_path / "code",
        {
            "train.py": """\
                import os
                os.makedirs(os.path.join(os.environ["SM_MODEL_DIR"], "sub"))
                open(os.path.join(os.environ["SM_MODEL_DIR"], "sub", "w.bin"), "w").write("W")
                open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "report.txt"), "w").write("R")
            """
        },
    )
    job = make_job(hyperparameters=script_hps(code))
    run(job)
    assert job.returncode == 0, job.logs()
    with tarfile.open(job.plan.model_uri) as tar:
        assert sorted(tar.getnames()) == ["sub", "sub/w.bin"]
        assert tar.extractfile("sub/w.bin").read() == b"W"
    with tarfile.open(job.plan.output_uri) as tar:
        assert tar.extractfile("report.txt").read() == b"R"


def test_uncompressed_model_is_uploaded_as_files(make_job, tmp_path):
    code = write_code(
        tmp_path / "code",
        {"train.py": "import os\nopen(os.environ['SM_MODEL_DIR'] + '/m.txt', 'w').write('M')\n"},
    )
    prefix = tmp_path / "s3out" / "model"
    job = make_job(hyperparameters=script_hps(code), compress_model=False, model_uri=str(prefix))
    run(job)
    assert job.returncode == 0, job.logs()
    assert (prefix / "m.txt").read_text() == "M"


def test_non_uploading_host_uploads_nothing(make_job, tmp_path):
    code = write_code(tmp_path / "code", {"train.py": DUMP_SCRIPT})
    job = make_job(hyperparameters=script_hps(code), upload_outputs=False)
    run(job)
    assert job.returncode == 0
    assert not Path(job.plan.model_uri).exists()
    assert job.statuses() == ["Downloading", "Training"]
