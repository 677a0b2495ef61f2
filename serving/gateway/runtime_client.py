"""SageMaker real-time inference on the event loop: InvokeEndpoint and InvokeEndpointWithResponseStream
sent with aiohttp, no thread per call.

botocore does everything but the I/O, so the wire format is boto3's: its serializer builds the request from
the boto3 sagemaker-runtime client's service model, at that client's endpoint URL (region, partition, FIPS,
the AWS_ENDPOINT_URL[_SAGEMAKER_RUNTIME] overrides, all resolved by botocore); SigV4Auth signs it with the
session's credentials (refreshed as botocore refreshes them, the refresh off the event loop), the body's
SHA-256 included; its parsers turn HTTP error answers and `:message-type: exception` events into the
ClientError classes the boto3 client raises, and transport failures become botocore's exceptions
(EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError), so serving/gateway/upstream_errors.py maps
both alike. The response stream is parsed as its bytes arrive and read only as fast as the caller asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import ssl
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, create_request_object, prepare_request_dict
from botocore.eventstream import EventStreamBuffer, EventStreamMessage
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    EventStreamError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.httpsession import get_cert_path
from botocore.parsers import EventStreamJSONParser, create_parser
from botocore.serialize import create_serializer
from yarl import URL

from serving.common.sse_relay import close_upstream

INVOKE = "InvokeEndpoint"
INVOKE_STREAM = "InvokeEndpointWithResponseStream"
MAX_ERROR_BODY = 64 * 1024
# bodies at least this large are hashed in a worker thread (hashlib releases the GIL): a 25 MiB upload must
# not hold the event loop for tens of milliseconds
HASH_OFFLOAD_BYTES = 1024 * 1024

Offload = Callable[..., Awaitable[Any]]  # (fn, *args) -> fn(*args), run in a worker thread


class Credentials:
    """The session's credentials for each request: cached ones as they are; ones botocore would refresh now
    (expiring within its advisory window) refreshed in a worker thread, once for all concurrent requests."""

    def __init__(self, credentials: Any, offload: Offload) -> None:
        self._credentials = credentials
        self._offload = offload
        self._refreshing: asyncio.Future[Any] | None = None

    async def frozen(self) -> Any:
        creds = self._credentials
        if creds is None:
            raise NoCredentialsError()
        refresh_needed = getattr(creds, "refresh_needed", None)  # RefreshableCredentials and its kin
        if refresh_needed is None or not refresh_needed():
            return creds.get_frozen_credentials()
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._offload(creds.get_frozen_credentials))
            self._refreshing.add_done_callback(self._refreshed)
        return await asyncio.shield(self._refreshing)

    def _refreshed(self, _: asyncio.Future[Any]) -> None:
        self._refreshing = None


@contextlib.contextmanager
def _as_botocore_errors(endpoint_url: str) -> Iterator[None]:
    """aiohttp's failures as the botocore exceptions the boto3 client would raise for them."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise ConnectTimeoutError(endpoint_url=endpoint_url, error=exc) from exc
    except TimeoutError as exc:  # aiohttp's SocketTimeoutError (sock_read) is one
        raise ReadTimeoutError(endpoint_url=endpoint_url, error=exc) from exc
    except aiohttp.ClientConnectorError as exc:
        raise EndpointConnectionError(endpoint_url=endpoint_url, error=exc) from exc
    except aiohttp.ClientError as exc:
        raise ConnectionClosedError(endpoint_url=endpoint_url, error=exc) from exc


class ResponseStream:
    """The PayloadPart bytes of one InvokeEndpointWithResponseStream, parsed as they arrive."""

    def __init__(self, response: aiohttp.ClientResponse, on_message: Callable[[EventStreamMessage], bytes]):
        self._response = response
        self._on_message = on_message
        self._buffer = EventStreamBuffer()
        self._error: BaseException | None = None
        self._url = str(response.url)

    async def read(self) -> bytes:
        """The bytes of the PayloadParts received so far (waiting for at least one), b'' at the end of the
        stream. An exception event raises its botocore error (after the parts before it were returned)."""
        while True:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            parts = []
            for message in self._buffer:
                try:
                    parts.append(self._on_message(message))
                except ClientError as exc:
                    self._error = exc
                    break
            data = b"".join(parts)
            if data:
                return data
            if self._error is not None:
                continue
            with _as_botocore_errors(self._url):
                chunk = await self._response.content.readany()
            if not chunk:
                return b""
            self._buffer.add_data(chunk)

    def close(self) -> None:
        """Released for reuse when read to its end; otherwise the connection is closed, which stops the
        endpoint's work for it."""
        close_upstream(self._response)


class RuntimeClient:
    """The real-time invoke calls of a boto3 sagemaker-runtime client, sent on the event loop."""

    def __init__(
        self,
        client: Any,
        credentials: Any,
        offload: Offload,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
    ) -> None:
        meta = client.meta
        self.endpoint_url: str = meta.endpoint_url
        self._region: str = meta.region_name
        self._service = meta.service_model
        self._signing_name: str = self._service.signing_name
        protocol = getattr(self._service, "resolved_protocol", self._service.protocol)  # botocore < 1.38
        self._serializer = create_serializer(protocol)
        self._parser = create_parser(protocol)
        self._event_parser = EventStreamJSONParser()
        self._exceptions = client.exceptions
        self._credentials = Credentials(credentials, offload)
        self._offload = offload
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None

    async def start(self) -> None:
        verify = os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True)
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            ttl_dns_cache=10,
            keepalive_timeout=30,
            ssl=ssl.create_default_context(cafile=verify),
        )
        # not trust_env: aiohttp would then look the proxy and ~/.netrc up in a thread for every request
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=False
        )
        self._proxy = proxy_for(self.endpoint_url)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def invoke(self, params: dict[str, Any]) -> tuple[str | None, bytes]:
        """InvokeEndpoint: (content type, body)."""
        response = await self._send(INVOKE, params)
        try:
            with _as_botocore_errors(self.endpoint_url):
                data = await response.read()
        finally:
            close_upstream(response)
        return response.headers.get("Content-Type"), data

    async def stream(self, params: dict[str, Any]) -> ResponseStream:
        """InvokeEndpointWithResponseStream: its events, to read and then close."""
        response = await self._send(INVOKE_STREAM, params)
        operation = self._service.operation_model(INVOKE_STREAM)
        output_shape = operation.get_event_stream_output()

        def payload(message: EventStreamMessage) -> bytes:
            headers = message.headers
            if headers.get(":message-type") == "event" and headers.get(":event-type") == "PayloadPart":
                return message.payload
            # an exception, an error, or an event this gateway does not know: botocore's reading of it
            response_dict = message.to_response_dict()
            parsed = self._event_parser.parse(response_dict, output_shape)
            if response_dict["status_code"] != 200:
                raise EventStreamError(parsed, INVOKE_STREAM)
            return b""

        return ResponseStream(response, payload)

    def prepare(
        self, operation: str, params: dict[str, Any], credentials: Any, body_hash: str
    ) -> AWSPreparedRequest:
        """The signed HTTP request for one call."""
        request_dict = self._serializer.serialize_to_request(params, self._service.operation_model(operation))
        prepare_request_dict(request_dict, endpoint_url=self.endpoint_url)
        request_dict["headers"]["X-Amz-Content-SHA256"] = body_hash
        request = create_request_object(request_dict)
        SigV4Auth(credentials, self._signing_name, self._region).add_auth(request)
        return request.prepare()

    async def _send(self, operation: str, params: dict[str, Any]) -> aiohttp.ClientResponse:
        assert self._session is not None, "RuntimeClient.start() was not awaited"
        body = params.get("Body", b"")
        if len(body) >= HASH_OFFLOAD_BYTES:
            body_hash = await self._offload(_sha256, body)
        else:
            body_hash = _sha256(body)
        prepared = self.prepare(operation, params, await self._credentials.frozen(), body_hash)
        with _as_botocore_errors(self.endpoint_url):
            response = await self._session.post(
                URL(prepared.url, encoded=True),
                data=prepared.body,
                headers=dict(prepared.headers.items()),
                proxy=self._proxy,
            )
        if response.status < 300:
            return response
        error_body = b""
        try:
            with _as_botocore_errors(self.endpoint_url):
                while len(error_body) < MAX_ERROR_BODY:
                    chunk = await response.content.read(MAX_ERROR_BODY - len(error_body))
                    if not chunk:
                        break
                    error_body += chunk
        finally:
            close_upstream(response)
        raise self._client_error(operation, response, error_body)

    def _client_error(self, operation: str, response: aiohttp.ClientResponse, body: bytes) -> ClientError:
        """An HTTP error answer as the boto3 client raises it: its modeled exception class (ModelError,
        ValidationError, ...) with the fields of that error's shape, else ClientError."""
        response_dict = {
            "status_code": response.status,
            "headers": response.headers,
            "body": body,
            "context": {"operation_name": operation},
        }
        operation_model = self._service.operation_model(operation)
        parsed = self._parser.parse(response_dict, operation_model.output_shape)
        code = parsed.get("Error", {}).get("Code")
        error_shape = self._service.shape_for_error_code(code) if code else None
        if error_shape is not None:
            parsed.update(self._parser.parse(response_dict, error_shape))
        error_class: type[ClientError] = self._exceptions.from_code(code or "")
        return error_class(parsed, operation)


def proxy_for(url: str) -> str | None:
    """The proxy botocore would use for url: HTTPS_PROXY/HTTP_PROXY unless NO_PROXY names its host."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
