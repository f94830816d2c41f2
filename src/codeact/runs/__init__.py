"""The durable record of runs: the event log, what it keeps, its readers, prices and telemetry.

Every run writes its events to a `RunStore` (SQLite) as they happen, within its `LogLimits`,
with secrets removed by a `Redactor`; `Recording` reads a run back by step; `PriceTable` prices
a run's usage; `Telemetry` turns runs into OpenTelemetry spans. What drives a run (resume,
replay, compaction) lives with the agent, in `codeact.agent`.
"""

from codeact.runs.limits import LogLimits, Truncated
from codeact.runs.pricing import Price, PriceTable, load_prices
from codeact.runs.recording import Recording
from codeact.runs.redact import Redactor
from codeact.runs.store import RunRecord, RunStore
from codeact.runs.telemetry import Telemetry

__all__ = [
    "LogLimits",
    "Price",
    "PriceTable",
    "Recording",
    "Redactor",
    "RunRecord",
    "RunStore",
    "Telemetry",
    "Truncated",
    "load_prices",
]
