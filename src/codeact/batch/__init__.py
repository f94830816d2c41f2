"""Many runs at once: one agent configuration over a task file, on a local process pool or on Ray.

`run_batch` is the one entry point; the engines differ only in where a task runs. Every task is
one run in the run log, found again by the batch and task ids kept in its meta, so a task that
was cut short is resumed from its record instead of paid for twice.
"""

from codeact.batch.config import AgentConfig
from codeact.batch.engine import run_batch
from codeact.batch.results import BatchResult, ResultsFile, TaskResult

__all__ = ["AgentConfig", "BatchResult", "ResultsFile", "TaskResult", "run_batch"]
