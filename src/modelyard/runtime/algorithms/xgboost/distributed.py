"""Which host this process is and, for several hosts, XGBoost's collective communicator.

With several hosts every host trains on its own channel data (FullyReplicated or ShardedByS3Key,
as the platform laid it out) and XGBoost's Rabit collective merges the gradient statistics, so
all hosts grow the same trees. The master host (the first, ``algo-1``) runs the Rabit tracker on
``127.0.0.1:$MODELYARD_MASTER_PORT``; every host, the master included, joins it as a worker
with its host name as task id, so ranks follow host order and rank 0 (which prints the eval
lines) is the master. Only the master saves the model; each host writes its own checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from .environment import AlgorithmEnvironment
from .errors import ClientError

TRACKER_ADDRESS = "127.0.0.1"
# Bootstrap may wait for the slowest host to load its data; training itself has no limit.
BOOTSTRAP_TIMEOUT_S = 1800
CONNECT_RETRIES = 30
SHUTDOWN_TIMEOUT_S = 120


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The hosts of the job (``algo-1``... in order) and this process's place among them."""

    hosts: tuple[str, ...]
    current_host: str
    master_port: int = 0

    @classmethod
    def from_environment(cls, env: AlgorithmEnvironment) -> Cluster:
        """Read the cluster from ``SM_HOSTS``/``SM_CURRENT_HOST``/``MODELYARD_MASTER_PORT``."""
        cluster = cls(hosts=env.hosts, current_host=env.current_host, master_port=env.master_port)
        if cluster.current_host not in cluster.hosts:
            raise ClientError(f"Current host {cluster.current_host} is not one of the hosts {list(cluster.hosts)}")
        if cluster.is_distributed and cluster.master_port <= 0:
            raise ClientError("Multi-host built-in XGBoost needs MODELYARD_MASTER_PORT for its tracker")
        return cluster

    @property
    def is_distributed(self) -> bool:
        return len(self.hosts) > 1

    @property
    def is_master(self) -> bool:
        """The first host runs the tracker and saves the model."""
        return self.current_host == self.hosts[0]

    @contextlib.contextmanager
    def communicator(self) -> Iterator[None]:
        """The context DMatrix construction and training run in (plain on a single host).

        DMatrix objects must be built inside it: XGBoost agrees on the number of features
        across workers while it constructs them.
        """
        if not self.is_distributed:
            yield
            return
        import xgboost.collective
        from xgboost.tracker import RabitTracker

        tracker = None
        if self.is_master:
            tracker = RabitTracker(
                n_workers=len(self.hosts),
                host_ip=TRACKER_ADDRESS,
                port=self.master_port,
                sortby="task",
                timeout=BOOTSTRAP_TIMEOUT_S,
            )
            tracker.start()
        worker_args = {
            "dmlc_communicator": "rabit",
            "dmlc_tracker_uri": TRACKER_ADDRESS,
            "dmlc_tracker_port": self.master_port,
            "dmlc_task_id": self._task_id(),
            "dmlc_retry": CONNECT_RETRIES,
        }
        try:
            with xgboost.collective.CommunicatorContext(**worker_args):
                yield
            if tracker is not None:
                tracker.wait_for(SHUTDOWN_TIMEOUT_S)  # every worker has finalised
        finally:
            if tracker is not None:
                tracker.free()

    def _task_id(self) -> str:
        # Sorting by task id must follow host order, also past algo-9 (algo-10 < algo-2 as text).
        return f"{self.hosts.index(self.current_host):06d}-{self.current_host}"
