"""Helpers shared by the gateway and the engine adapter: OpenAI error bodies, the SSE relay, depth-limited
JSON bodies, the aiohttp server both run (quiet on malformed requests), what a request carries between layers.

May import: the standard library and aiohttp only.
"""
