"""The ``modelyard`` command: start the platform, run the demo, watch and manage jobs.

Known errors (a ModelyardError, an API error answer, no server) print a one-line headline and
exit 1; anything unexpected prints its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from botocore.exceptions import ClientError

from modelyard.core.errors import ModelyardError
from modelyard.sdk.session import ModelyardClientError


@click.group()
@click.version_option(package_name="modelyard")
def cli() -> None:
    """modelyard: a self-hostable machine-learning platform that speaks SageMaker's API."""


@cli.command()
@click.option("--home", type=click.Path(path_type=Path), help="Data directory (default ~/.modelyard).")
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8080; 0 picks a free one).")
@click.option(
    "--s3", "managed_s3", is_flag=True,
    help="Also run a local SeaweedFS S3 gateway as the artifact store (needs modelyard[s3]).",
)
@click.option(
    "--s3-port", type=int, default=None,
    help="Port of the --s3 gateway on 127.0.0.1 (default 8333; 0 picks a free one).",
)
def server(
    home: Path | None, host: str | None, port: int | None, managed_s3: bool, s3_port: int | None
) -> None:
    """Run the control plane: SageMaker API, CloudWatch Logs subset and STS on one port.

    With --s3, s3:// URIs go to a SeaweedFS gateway that the server starts and stops; S3
    clients reach it with the same key pair as the API (see `modelyard credentials`).
    """
    import logging

    from modelyard.core.settings import Settings
    from modelyard.server.main import serve

    if s3_port is not None and not managed_s3:
        raise click.UsageError("--s3-port only applies together with --s3.")
    if managed_s3 and s3_port is None:
        from modelyard.artifacts.seaweedfs import DEFAULT_S3_PORT

        s3_port = DEFAULT_S3_PORT
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(Settings.load(home=home, host=host, port=port), s3_port=s3_port)


@cli.command()
@click.option("--home", type=click.Path(path_type=Path), help="Data directory (default ~/.modelyard).")
def credentials(home: Path | None) -> None:
    """Print the platform's access key pair (created on first use) as shell exports."""
    from modelyard.core.credentials import load_or_create_credentials
    from modelyard.core.settings import Settings

    settings = Settings.load(home=home)
    creds = load_or_create_credentials(settings.home)
    click.echo(f"export AWS_ACCESS_KEY_ID={creds.access_key_id}")
    click.echo(f"export AWS_SECRET_ACCESS_KEY={creds.secret_access_key}")
    click.echo(f"export AWS_DEFAULT_REGION={settings.region}")


def _register_subcommands() -> None:
    from modelyard.cli.demo import demo
    from modelyard.cli.endpoints import endpoints
    from modelyard.cli.experiments import experiments, trial_components
    from modelyard.cli.training import logs, training_jobs
    from modelyard.cli.transform import transform_jobs
    from modelyard.cli.tuning import tuning_jobs

    cli.add_command(training_jobs)
    cli.add_command(transform_jobs)
    cli.add_command(tuning_jobs)
    cli.add_command(logs, "logs")  # `modelyard logs -f JOB`, short for training-jobs logs
    cli.add_command(demo)
    cli.add_command(endpoints)
    cli.add_command(experiments)
    cli.add_command(trial_components)


def main() -> None:
    _register_subcommands()
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except ClientError as e:
        error = e.response.get("Error", {})
        click.echo(f"error: {error.get('Code')}: {error.get('Message')}", err=True)
        sys.exit(1)
    except (ModelyardError, ConnectionError, ModelyardClientError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
