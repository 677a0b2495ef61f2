"""Helpers shared by the gateway and the engine adapter: OpenAI error bodies, SSE framing, JSON logs.

May import: the standard library and aiohttp only.
"""
