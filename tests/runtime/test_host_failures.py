"""How a host fails: script errors, failure files, client errors, platform errors."""

from __future__ import annotations

import json
import sys
import tarfile

from host_helpers import DUMP_SCRIPT, channel, make_tar_gz, run, script_hps, write_code

from modelyard.runtime.failures import MAX_REASON, script_error


def test_script_failure_exits_1_with_the_toolkit_reason(make_job, tmp_path):
    code = write_code(
        tmp_path / "code",
        {
            "train.py": """\
                import os, sys
                open(os.path.join(os.environ["SM_MODEL_DIR"], "partial.txt"), "w").write("p")
                open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "o.txt"), "w").write("o")
                print("about to fail")
                print("ValueError: bad learning rate", file=sys.stderr)
                sys.exit(3)
            """
        },
    )
    job = make_job(hyperparameters=script_hps(code, lr="0.5"))
    run(job)
    assert job.returncode == 1
    failure = job.exit_event()["failure"]
    assert failure == (
        "AlgorithmError: ExecuteUserScriptError:\n"
        "ExitCode 3\n"
        'ErrorMessage "ValueError: bad learning rate"\n'
        f'Command "{sys.executable} train.py --lr 0.5"'
    )
    assert job.exit_event()["code"] == 1
    assert (job.tree / "output" / "failure").read_text() == failure
    assert not (job.tree / "output" / "success").exists()
    assert "about to fail" in job.logs()
    # A failed job still uploads its output data, and the model when there is one.
    with tarfile.open(job.plan.output_uri) as tar:
        assert tar.extractfile("o.txt").read() == b"o"
    with tarfile.open(job.plan.model_uri) as tar:
        assert tar.getnames() == ["partial.txt"]


def test_failure_file_written_by_the_script_wins(make_job, tmp_path):
    code = write_code(
        tmp_path / "code",
        {
            "train.py": """\
                import os, sys
                path = os.path.join(os.environ["SM_OUTPUT_DIR"], "failure")
                open(path, "w").write("ClientError: label column missing" + "x" * 2000)
                sys.exit(1)
            """
        },
    )
    job = make_job(hyperparameters=script_hps(code))
    run(job)
    assert job.returncode == 1
    failure = job.exit_event()["failure"]
    assert failure.startswith("ClientError: label column missing")
    assert len(failure) == MAX_REASON


def test_killed_script_reports_out_of_memory(make_job, tmp_path):
    code = write_code(
        tmp_path / "code", {"train.py": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"}
    )
    job = make_job(hyperparameters=script_hps(code))
    run(job)
    assert job.returncode == 1
    failure = job.exit_event()["failure"]
    assert "ExitCode 137\n" in failure
    assert 'ErrorMessage "OutOfMemory: Process killed by SIGKILL' in failure


def test_script_error_keeps_the_end_of_a_long_message():
    text = script_error(1, ["x" * 3000, "KeyError: 'label'"], ["python", "train.py"])
    assert len(text) <= MAX_REASON
    assert text.startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n")
    assert "KeyError: 'label'\"\nCommand \"python train.py\"" in text


def test_sourcedir_tar_gz_is_extracted_into_code(make_job, tmp_path):
    source = write_code(
        tmp_path / "src",
        {
            "train.py": "import helper\nhelper.run()\n",
            "pkg/helper.py": "",
            "helper.py": DUMP_SCRIPT.replace('print("dumped")', "def run():\n    print('ok')"),
        },
    )
    tarball = make_tar_gz(source, tmp_path / "sourcedir.tar.gz")
    job = make_job(hyperparameters=script_hps("file://" + str(tarball)))
    run(job)
    assert job.returncode == 0, job.logs()
    assert sorted(p.name for p in (job.tree / "code").iterdir()) == ["helper.py", "pkg", "train.py"]
    assert "ok" in job.logs()
    assert job.dump()["env"]["SM_MODULE_DIR"] == "file://" + str(tarball)


def test_unsafe_sourcedir_is_refused(make_job, tmp_path):
    evil = tmp_path / "evil.tar.gz"
    (tmp_path / "payload").write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(tmp_path / "payload", arcname="../escaped.txt")
    job = make_job(hyperparameters=script_hps(str(evil)))
    run(job)
    assert job.returncode == 1
    assert job.exit_event()["failure"].startswith(f"ClientError: Cannot use the code at {evil}")
    assert not (job.host_dir / "opt_ml" / "escaped.txt").exists()
    assert not (job.host_dir / "escaped.txt").exists()


def test_shell_entry_point_runs_through_sh(make_job, tmp_path):
    code = write_code(
        tmp_path / "code",
        {"run.sh": 'echo "args: $@"\necho "$SM_HP_ALPHA" > "$SM_MODEL_DIR/alpha"\n'},
    )
    job = make_job(hyperparameters=script_hps(code, "run.sh", alpha="0.5", name='"a b"'))
    run(job)
    assert job.returncode == 0, job.logs()
    assert "args: --alpha 0.5 --name a b" in job.logs()
    assert (job.tree / "model" / "alpha").read_text() == "0.5\n"


def test_missing_input_objects_are_a_client_error(make_job, tmp_path):
    code = write_code(tmp_path / "code", {"train.py": DUMP_SCRIPT})
    missing = tmp_path / "nothing-here"
    job = make_job(hyperparameters=script_hps(code), channels=[channel("train", missing)])
    run(job)
    assert job.returncode == 1
    assert job.exit_event()["failure"] == (
        f"ClientError: No objects found at {missing}/ (channel train)."
    )
    assert job.statuses() == ["Downloading"]


def test_missing_entry_point_is_a_client_error(make_job, tmp_path):
    code = write_code(tmp_path / "code", {"other.py": ""})
    job = make_job(hyperparameters=script_hps(code, "train.py"))
    run(job)
    assert job.returncode == 1
    assert job.exit_event()["failure"].startswith(
        "ClientError: The entry point train.py is not in the submitted code"
    )


def test_no_program_and_no_algorithm_is_a_client_error(make_job):
    job = make_job(framework="sklearn")
    run(job)
    assert job.returncode == 1
    assert "sagemaker_program is not set" in job.exit_event()["failure"]


def test_unreadable_plan_is_a_platform_error(make_job):
    job = make_job()
    (job.host_dir / "plan.json").write_text(json.dumps({"job_name": "x"}))
    run(job)
    assert job.returncode == 2
    event = job.exit_event()
    assert event["code"] == 2 and event["failure"].startswith("InternalServerError: unreadable")
