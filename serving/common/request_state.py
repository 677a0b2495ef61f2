"""What a request carries between the services' layers (aiohttp request storage): set by handlers and
backends, read by the access log."""

from __future__ import annotations

from aiohttp import web

REQUEST_ID = web.RequestKey("emd_request_id", str)
MODEL = web.RequestKey("emd_model", str)
BACKEND = web.RequestKey("emd_backend", str)
STREAM = web.RequestKey("emd_stream", bool)
