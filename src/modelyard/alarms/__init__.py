"""CloudWatch metric alarms over the metrics modelyard serves (training jobs, endpoints)."""

from modelyard.alarms.controller import AlarmController, firing_alarms
from modelyard.alarms.service import AlarmService

__all__ = ["AlarmController", "AlarmService", "firing_alarms"]
