"""Runs as fine-tuning data: the run log's conversations in the formats people train with.

`examples.py` turns one recorded run into a `Conversation` (the exact messages the model saw and
the replies it gave, each assistant turn marked trainable or not); `formats.py` writes it as
OpenAI chat fine-tuning, ShareGPT (LLaMA-Factory), TRL conversational or CodeActInstruct rows;
`writer.py` selects runs, removes duplicates, redacts and scans for secrets, checks the token
budget and splits train/validation.
"""

from codeact.export.examples import Conversation, Turn, conversation_of
from codeact.export.formats import FORMATS
from codeact.export.writer import ExportOptions, ExportReport, export_runs

__all__ = ["FORMATS", "Conversation", "ExportOptions", "ExportReport", "Turn", "conversation_of", "export_runs"]
