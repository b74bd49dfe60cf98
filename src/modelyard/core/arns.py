"""ARNs as SageMaker builds them: ``arn:aws:sagemaker:{region}:{account}:{type}/{name}``.

The service lower-cases the name part of most ARNs while names keep their case in Describe
output; modelyard does the same.
"""

from __future__ import annotations

import re

_ARN = re.compile(r"^arn:aws[a-z\-]*:(?P<service>[a-z0-9\-]+):(?P<region>[a-z0-9\-]*):"
                  r"(?P<account>\d*):(?P<resource>.+)$")


def make_arn(region: str, account: str, resource_type: str, name: str) -> str:
    """The ARN of one SageMaker resource.

    >>> make_arn("us-east-1", "000000000000", "training-job", "My-Job")
    'arn:aws:sagemaker:us-east-1:000000000000:training-job/my-job'
    """
    return f"arn:aws:sagemaker:{region}:{account}:{resource_type}/{name.lower()}"


def name_from_arn(arn_or_name: str) -> str:
    """The resource name at the end of an ARN; a plain name is returned unchanged."""
    match = _ARN.match(arn_or_name)
    if not match:
        return arn_or_name
    return match["resource"].rsplit("/", 1)[-1]


def is_arn(text: str) -> bool:
    return bool(_ARN.match(text))
