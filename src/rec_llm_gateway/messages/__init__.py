"""Anthropic's Messages API served by the gateway (``POST /v1/messages``, ``/v1/messages/count_tokens``).

- ``wire``: the request models (validated loosely: content blocks stay dicts, so that block types this
  code has never heard of still reach Anthropic untouched) and the error envelope;
- ``to_chat``: an Anthropic request -> the gateway's OpenAI chat request (for every other provider);
- ``from_chat``: an OpenAI ``chat.completion`` -> an Anthropic ``message``;
- ``events``: OpenAI chunks -> Anthropic's named SSE events (one block type per block);
- ``native``: Claude on Anthropic, Bedrock and Vertex: the client's body passed through, usage read.
"""
