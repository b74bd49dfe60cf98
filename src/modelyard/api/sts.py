"""The one STS action SDKs need: ``GetCallerIdentity`` (query protocol, XML answers).

The SageMaker SDK calls it to name its default bucket (``sagemaker-{region}-{account}``), so the
answer must carry a 12-digit ``Account``. Every other action is refused with ``InvalidAction``,
as STS does for an action it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.etree import ElementTree

from modelyard.api.errors import STS_NAMESPACE, XML_CONTENT_TYPE, new_request_id, query_xml_error
from modelyard.api.sigv4 import Principal
from modelyard.core.errors import ModelyardError

__all__ = ["STS_VERSION", "USER_NAME", "caller_arn", "handle_sts"]

STS_VERSION = "2011-06-15"
#: The IAM user name modelyard reports for its key pairs.
USER_NAME = "modelyard"


class _InvalidAction(ModelyardError):
    """An STS action modelyard does not serve (STS's own ``InvalidAction``)."""

    code = "InvalidAction"
    status = 400

    def __init__(self, action: str, version: str) -> None:
        super().__init__(f"Could not find operation {action} for version {version}")


def caller_arn(account_id: str) -> str:
    """The ARN GetCallerIdentity reports: an IAM user of the platform's account."""
    return f"arn:aws:iam::{account_id}:user/{USER_NAME}"


def handle_sts(
    form: Mapping[str, str], principal: Principal, account_id: str
) -> tuple[int, dict[str, str], bytes]:
    """Answer a decoded STS query/form request; returns ``(status, headers, body)``."""
    request_id = new_request_id()
    action = form.get("Action", "")
    if action != "GetCallerIdentity":
        version = form.get("Version", STS_VERSION)
        return query_xml_error(_InvalidAction(action, version), request_id=request_id)
    body = _caller_identity_xml(principal, account_id, request_id)
    return 200, {"Content-Type": XML_CONTENT_TYPE, "x-amzn-RequestId": request_id}, body


def _caller_identity_xml(principal: Principal, account_id: str, request_id: str) -> bytes:
    root = ElementTree.Element("GetCallerIdentityResponse", xmlns=STS_NAMESPACE)
    result = ElementTree.SubElement(root, "GetCallerIdentityResult")
    ElementTree.SubElement(result, "Arn").text = caller_arn(account_id)
    # For an IAM user AWS reports its unique id here; the key id identifies the caller as well.
    ElementTree.SubElement(result, "UserId").text = principal.access_key_id
    ElementTree.SubElement(result, "Account").text = account_id
    metadata = ElementTree.SubElement(root, "ResponseMetadata")
    ElementTree.SubElement(metadata, "RequestId").text = request_id
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
