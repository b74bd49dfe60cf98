"""Which host this process is, and (for several hosts) XGBoost's collective communicator.

Single host: nothing to coordinate. Several hosts: not supported yet, refused up front with a
ClientError rather than silently training independent models.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from .environment import AlgorithmEnvironment
from .errors import ClientError


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The hosts of the job (``algo-1``... in order) and this process's place among them."""

    hosts: tuple[str, ...]
    current_host: str
    master_port: int = 0

    @classmethod
    def from_environment(cls, env: AlgorithmEnvironment) -> Cluster:
        cluster = cls(hosts=env.hosts, current_host=env.current_host, master_port=env.master_port)
        if cluster.current_host not in cluster.hosts:
            raise ClientError(f"Current host {cluster.current_host} is not one of the hosts {list(cluster.hosts)}")
        if len(cluster.hosts) > 1:
            raise ClientError("Multi-host training with the built-in XGBoost algorithm is not supported by modelyard yet")
        return cluster

    @property
    def is_master(self) -> bool:
        """The first host saves the model; every host writes its own checkpoints."""
        return self.current_host == self.hosts[0]

    @contextlib.contextmanager
    def communicator(self) -> Iterator[None]:
        """The context training runs in: plain on one host."""
        yield
