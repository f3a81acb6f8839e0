"""The local stack: template.yaml's resources in moto, the real ASL executed, the real handlers.

What is real here: the resources' settings (read from template.yaml), the S3 -> SQS notification,
the state machine definition executed by moto's Step Functions interpreter, the three handlers,
the Datalab client talking HTTP to the emulator (or to ``DATALAB_API_URL``).
What is emulated by hand, and why:
- Lambda: moto would need Docker to run a function; we call the handler named in the template
  in-process instead, concurrently as Lambda does (each on its own thread, as its own role; the
  handlers keep no per-invocation state at module level, and powertools' log context is kept
  per thread).
- The SQS event source mapping: moto's runs inside SendMessage, so an S3 upload would block on
  the submit function and partial batch failures would be ignored; ours polls the queue with up
  to ``MaximumConcurrency`` threads, honours ``batchItemFailures`` and leaves failed messages for
  redelivery and the DLQ.
- Time: Wait states, Retry intervals, visibility timeouts and deadlines all shrink by
  ``time_scale`` so long scenarios run in seconds.

The package, by concern:
- ``lifecycle``: LocalStack itself, starting and stopping everything in order (``options``:
  StackOptions);
- ``resources``: template.yaml's resources created in moto, the deployed roles included;
- ``functions``: the handlers invoked in-process, the SQS event source mappings, the fake context;
- ``iam``: every request checked against its caller's deployed role;
- ``patches``: moto and powertools patched for all this, once per process;
- ``operations``: what users of a running stack do (upload, records, executions, review queue).
- ``watch``: where each document stands (its stages) and what Datalab is doing to all of them,
  read as the operator: what the CLI's progress shows (doctriage_local.cli.progress).
"""

from doctriage_local.stack.lifecycle import LocalStack, local_stack
from doctriage_local.stack.options import StackOptions
from doctriage_local.stack.resources import ACCOUNT_ID, PREFIX

__all__ = ["ACCOUNT_ID", "PREFIX", "LocalStack", "StackOptions", "local_stack"]
