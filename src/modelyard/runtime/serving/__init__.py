"""What runs inside a model-server instance: the SageMaker inference container contract.

``python -m modelyard.runtime.serving <instance_dir>`` (:mod:`.instance`) reads the
:class:`ServePlan`, fetches the model, starts worker processes (:mod:`.worker`) that serve
``/ping``, ``/invocations`` and ``/execution-parameters`` on ``127.0.0.1:<port>`` and reports
through ``events.jsonl``/``logs.jsonl``. Layers, outermost first:

- :mod:`.instance`, :mod:`.startup`, :mod:`.workers`: the supervising instance process;
- :mod:`.worker`, :mod:`.httpserver`, :mod:`.app`: one worker's event loop, HTTP and routes;
- :mod:`.handlers`, :mod:`.context`, :mod:`.frameworks`, :mod:`.codecs`: the toolkit's
  handler contract and the default handlers per framework.
- :mod:`.batching`, :mod:`.batch_inference`: adaptive batching of concurrent invocations
  (``SAGEMAKER_TS_BATCH_SIZE``), off by default.

Importing this package is cheap on purpose: every worker imports it.
"""

from modelyard.runtime.serving.plan import EVENTS_FILE, LOGS_FILE, PLAN_FILE, ServePlan

__all__ = ["EVENTS_FILE", "LOGS_FILE", "PLAN_FILE", "ServePlan"]
