"""The shared translation core: what every native provider (and ``echo``) uses to speak OpenAI.

Output (answers):

- ``Reply`` (``reply.py``): the state machine. A provider's response or stream translation says
  what arrived, under the vendor's own keys; ``Reply`` numbers tool calls, completes silent ones,
  turns the ``response_format`` tool into content, settles the finish reason and keeps typed usage.
- ``ChunkWriter`` (``chunks.py``): renders those events as OpenAI ``chat.completion.chunk`` dicts.
- ``CompletionWriter`` (``completion.py``): renders them as one ``chat.completion``.
  Writers for other output shapes implement the same ``ReplyWriter`` protocol; ``read_chunk``
  (``openai_chunks.py``) feeds them from any provider's OpenAI chunks.

Input (requests): ``request.py`` (data URLs, tool arguments, the JSON tool, Claude thinking) and
``errors.py`` (reading an upstream error body).
"""

from __future__ import annotations

from .chunks import ChunkWriter
from .completion import CompletionWriter
from .reply import Reply, ReplyWriter, arguments_json

__all__ = ["ChunkWriter", "CompletionWriter", "Reply", "ReplyWriter", "arguments_json"]
