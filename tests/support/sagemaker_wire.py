"""The SageMaker runtime's wire format, for its stand-ins: event-stream messages (encoder), AWS JSON error
answers, and the check of a request's SigV4 signature that the real service makes."""

from __future__ import annotations

import binascii
import hashlib
import json
import re
import struct

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# the fake credentials of the tests and benches (AWS_ACCESS_KEY_ID -> AWS_SECRET_ACCESS_KEY)
TEST_SECRETS = {"testing": "testing"}

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def _header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack("!B", len(n)) + n + b"\x07" + struct.pack("!H", len(v)) + v


def encode_event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One application/vnd.amazon.eventstream message: prelude, prelude CRC, headers, payload, message CRC."""
    hdr = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(hdr) + len(payload) + 4
    prelude = struct.pack("!II", total, len(hdr))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + hdr + payload
    return body + struct.pack("!I", binascii.crc32(body) & 0xFFFFFFFF)


def payload_part(data: bytes) -> bytes:
    return encode_event_message(
        {":event-type": "PayloadPart", ":content-type": "application/octet-stream", ":message-type": "event"},
        data,
    )


def model_stream_error(message: str, code: str = "ModelStreamError") -> bytes:
    """An exception event: ModelStreamError (the container failed mid-stream) or InternalStreamFailure."""
    return encode_event_message(
        {":exception-type": code, ":content-type": "application/json", ":message-type": "exception"},
        json.dumps({"Message": message, "ErrorCode": code}).encode(),
    )


def aws_error_response(status: int, code: str, message: str, **fields: object) -> web.Response:
    """An AWS JSON error answer as the SageMaker runtime sends one."""
    return web.json_response(
        {"message": message, **fields},
        status=status,
        headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.sagemaker/"},
    )


def signature_problem(
    request: web.Request, body: bytes, secrets: dict[str, str] = TEST_SECRETS
) -> str | None:
    """Why request is not signed with SigV4 by one of secrets' keys (None when it is): the service's own
    check, recomputed with botocore from the headers the request names as signed, its path and its body."""
    match = _AUTHORIZATION.match(request.headers.get("Authorization", ""))
    if match is None:
        return "no SigV4 Authorization header"
    amz_date = request.headers.get("X-Amz-Date", "")
    if not amz_date.startswith(match["date"]):
        return "X-Amz-Date missing or not the credential scope's date"
    claimed_hash = request.headers.get("X-Amz-Content-SHA256")
    if claimed_hash is not None and claimed_hash != hashlib.sha256(body).hexdigest():
        return "X-Amz-Content-SHA256 is not the body's hash"
    secret = secrets.get(match["key"])
    if secret is None:
        return f"unknown access key {match['key']}"
    signed = match["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return "host and x-amz-date must be signed"
    headers = {name: request.headers.get(name, "") for name in signed}
    rebuilt = AWSRequest(method=request.method, url=f"http://{request.host}{request.raw_path}", data=body,
                         headers=headers)  # fmt: skip
    rebuilt.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(match["key"], secret), match["service"], match["region"])
    string_to_sign = signer.string_to_sign(rebuilt, signer.canonical_request(rebuilt))
    if signer.signature(string_to_sign, rebuilt) != match["signature"]:
        return "signature mismatch"
    return None


def refuse_unsigned(secrets: dict[str, str] = TEST_SECRETS) -> web.Middleware:
    """Middleware answering a request whose signature does not check out as SageMaker does: 403."""

    @web.middleware
    async def check(request: web.Request, handler: web.Handler) -> web.StreamResponse:
        problem = signature_problem(request, await request.read(), secrets)
        if problem is not None:
            return aws_error_response(403, "InvalidSignatureException", problem)
        return await handler(request)

    return check
