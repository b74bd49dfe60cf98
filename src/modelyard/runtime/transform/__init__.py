"""What runs on a batch transform host: ``python -m modelyard.runtime.transform <host_dir>``.

The host starts a model server (:mod:`modelyard.runtime.serving`) for the job's model on a free
loopback port, then streams its share of the input objects through it and writes one ``.out``
object per input. Modules, outermost first:

- :mod:`.host`: the sequence, stop handling and the exit event;
- :mod:`.server`: the model-server child process, its readiness and its logs;
- :mod:`.pipeline`: requests in flight, answered in input order, per object;
- :mod:`.records`: reading, gunzip, splitting and batching the input;
- :mod:`.joins` and :mod:`.jsonpath`: DataProcessing's filters and joins.
"""

from modelyard.runtime.transform.plan import TransformPlan

__all__ = ["TransformPlan"]
