"""Application Auto Scaling for endpoint variants: target tracking on invocations per instance."""

from modelyard.autoscaling.controller import ScalingController
from modelyard.autoscaling.service import AutoScalingService

__all__ = ["AutoScalingService", "ScalingController"]
