"""A training job's metrics as a time series, read through the CloudWatch metrics API.

The same reads the SageMaker SDK's ``TrainingJobAnalytics`` makes (namespace
``/aws/sagemaker/TrainingJobs``, dimension ``TrainingJobName``), so what this shows is what that
class would show against modelyard. ::

    from modelyard.sdk.analytics import training_job_metrics
    frame = training_job_metrics(modelyard.Session(), "my-job")
    frame[frame.metric_name == "train:loss"].plot(x="timestamp", y="value")
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.sdk.session import Session

__all__ = ["NAMESPACE", "metric_rows", "training_job_metrics"]

NAMESPACE = "/aws/sagemaker/TrainingJobs"
# GetMetricData takes at most this many queries per call.
_QUERIES_PER_CALL = 500
# CloudWatch drops a point at the very end of a window (EndTime is exclusive); pad past it.
_END_PADDING = dt.timedelta(seconds=1)


def metric_rows(
    sagemaker: Any, cloudwatch: Any, job_name: str, period: int = 1, statistic: str = "Average"
) -> list[dict[str, Any]]:
    """``{"timestamp", "metric_name", "value"}`` rows, ordered by metric then time.

    Values are the ``statistic`` of each ``period``-second bucket; with the default (one
    second), a job that logs a metric less often than once a second gets its points unchanged.
    """
    job = sagemaker.describe_training_job(TrainingJobName=job_name)
    start = job.get("TrainingStartTime") or job["CreationTime"]
    end = job.get("TrainingEndTime") or dt.datetime.now(dt.UTC)
    names = _metric_names(cloudwatch, job_name)
    rows: list[dict[str, Any]] = []
    for first in range(0, len(names), _QUERIES_PER_CALL):
        batch = names[first : first + _QUERIES_PER_CALL]
        queries = [_query(f"m{first + i}", name, job_name, period, statistic) for i, name in enumerate(batch)]
        for result in _metric_data(cloudwatch, queries, start, end + _END_PADDING):
            rows.extend(
                {"timestamp": at, "metric_name": result["Label"], "value": value}
                for at, value in zip(result["Timestamps"], result["Values"])
            )
    rows.sort(key=lambda r: (r["metric_name"], r["timestamp"]))
    return rows


def training_job_metrics(session: Session, job_name: str, period: int = 1) -> pd.DataFrame:
    """The job's metrics as a DataFrame with columns ``timestamp`` (UTC), ``metric_name``, ``value``.

    Unlike ``TrainingJobAnalytics.dataframe()``, whose ``timestamp`` is seconds since the first
    datapoint, ``timestamp`` here is the time of the bucket itself.
    """
    import pandas as pd

    rows = metric_rows(session.sagemaker, session.client("cloudwatch"), job_name, period)
    frame = pd.DataFrame(rows, columns=["timestamp", "metric_name", "value"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def _metric_names(cloudwatch: Any, job_name: str) -> list[str]:
    names: set[str] = set()
    pages = cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=NAMESPACE, Dimensions=[{"Name": "TrainingJobName", "Value": job_name}]
    )
    for page in pages:
        names.update(m["MetricName"] for m in page["Metrics"])
    return sorted(names)


def _query(query_id: str, name: str, job_name: str, period: int, statistic: str) -> dict[str, Any]:
    metric = {
        "Namespace": NAMESPACE,
        "MetricName": name,
        "Dimensions": [{"Name": "TrainingJobName", "Value": job_name}],
    }
    return {
        "Id": query_id,
        "Label": name,
        "MetricStat": {"Metric": metric, "Period": period, "Stat": statistic},
    }


def _metric_data(
    cloudwatch: Any, queries: list[dict[str, Any]], start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """Every page of one GetMetricData call, merged per query Id."""
    merged: dict[str, dict[str, Any]] = {}
    pages = cloudwatch.get_paginator("get_metric_data").paginate(
        MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
    )
    for page in pages:
        for result in page["MetricDataResults"]:
            into = merged.setdefault(result["Id"], {"Label": result["Label"], "Timestamps": [], "Values": []})
            into["Timestamps"].extend(result["Timestamps"])
            into["Values"].extend(result["Values"])
    return list(merged.values())
