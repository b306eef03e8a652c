"""Inbound APIs: how clients talk to the gateway (OpenAI Chat Completions, Anthropic
Messages). Each module parses its API's request into the internal OpenAI-shaped
request, and encodes answers, stream events and errors back in its API's format."""
