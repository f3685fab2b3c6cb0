"""What a request handler may touch: one :class:`ServerState` per app, on ``app.state.kira``."""

from dataclasses import dataclass

from kira.config import KiraConfig
from kira.serve import service
from kira.serve.batching import MicroBatcher
from kira.serve.jobs import JobManager
from kira.serve.metrics import Metrics
from kira.serve.snapshot import SnapshotHolder


@dataclass
class ServerState:
    """The config, the workspace view, the snapshot holder, the micro-batcher, jobs and metrics."""

    cfg: KiraConfig
    workspace: service.Workspace
    holder: SnapshotHolder
    batcher: MicroBatcher
    jobs: JobManager
    metrics: Metrics
