"""Durable runs: the event log, resume, replay, budgets' prices, compaction and telemetry.

Every run writes its events to a `RunStore` (SQLite) as they happen, within its `LogLimits`;
`agent.resume(run_id)` continues a run that crashed or stopped, `agent.replay(run_id)` (or
`replay_run`) re-runs one without its model and reports where it diverges, and `Telemetry`
turns runs into OpenTelemetry spans.
"""

from codeact.runs.compaction import Compaction
from codeact.runs.feed import Divergence
from codeact.runs.limits import LogLimits, Truncated
from codeact.runs.pricing import Price, PriceTable, load_prices
from codeact.runs.recording import Recording
from codeact.runs.redact import Redactor
from codeact.runs.replay import ReplayReport, replay_run
from codeact.runs.store import RunRecord, RunStore
from codeact.runs.telemetry import Telemetry

__all__ = [
    "Compaction",
    "Divergence",
    "LogLimits",
    "Price",
    "PriceTable",
    "Recording",
    "Redactor",
    "ReplayReport",
    "RunRecord",
    "RunStore",
    "Telemetry",
    "Truncated",
    "load_prices",
    "replay_run",
]
