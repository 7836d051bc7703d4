#!/usr/bin/env python3
"""An example Stowage plugin in Python: an in-memory ObjectStore served with grpcio.

It implements, without any Stowage library, go-plugin's process protocol (docs/protocol.md: the
cookie check, the handshake line, health "plugin", GRPCController/Shutdown and GRPCStdio) and the
object-store contract (docs/contract.md section 5): Init with INVALID_CONFIG and valid_keys, the
seven ObjectStore RPCs with ErrorInfo reasons, bodies in chunk messages (no data channel), ranged
reads, metadata, paged listings, cancellation and deadlines.

The file is named plugin.py on purpose: go-plugin's protos have the proto package `plugin`, and the
Python code generated from them would be a package named `plugin`, which this script would shadow.
generate.py therefore generates them as the package `goplugin` (the wire names do not change).

Run generate.py once (it writes gen/), then let a Stowage host start this file, for example:
    stowage conformance --config conformance.yaml -- python3 plugin.py
"""
from __future__ import annotations

import os
import sys

COOKIE_KEY = "STOWAGE_PLUGIN"
COOKIE_VALUE = "b5c1e7a2-stowage-plugin"

# protocol.md §3: check the cookie before doing anything visible (and before the slow imports).
if os.environ.get(COOKIE_KEY) != COOKIE_VALUE:
    sys.stderr.write(
        "This program is a Stowage storage plugin (example.com/python-memory).\n"
        "A Stowage host starts it and talks to it over gRPC; it is not meant to be run by hand.\n"
        "To try it, run it through the conformance kit:\n"
        "    stowage conformance --config conformance.yaml -- python3 plugin.py\n"
    )
    sys.exit(1)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("STOWAGE_EXAMPLE_GEN") or os.path.join(HERE, "gen"))

import base64  # noqa: E402
import binascii  # noqa: E402
import bisect  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from concurrent import futures  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from typing import Callable, NamedTuple  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import any_pb2  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: E402

from goplugin import grpc_controller_pb2, grpc_controller_pb2_grpc, grpc_stdio_pb2_grpc  # noqa: E402
from stowage.v1 import object_store_pb2 as pb  # noqa: E402
from stowage.v1 import object_store_pb2_grpc, plugin_info_pb2, plugin_info_pb2_grpc  # noqa: E402

NAME = "example.com/python-memory"
VERSION = "0.1.0"
APP_PROTOCOL_VERSION = 1
CONTRACT_VERSION = "1.0"
MIB = 1024 * 1024
CHUNK_BYTES = MIB  # contract 2.7.1: at most 1 MiB of body per chunk message
MAX_PAGE_SIZE = 1000  # contract 5.5.6
MAX_KEY_BYTES = 1024  # contract 1.3.1
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

CONFIG_KEYS = [
    plugin_info_pb2.ConfigKey(
        name="buckets",
        required=True,
        description="Comma-separated names of the buckets this in-memory backend holds. They are created "
        "at Init (this is the explicit opt-in of contract clause 5.0.3); no call ever creates another.",
    ),
    plugin_info_pb2.ConfigKey(
        name="maxTotalSize",
        description="Memory the stored objects may use: a size (512MiB, 2GiB) or a number of MiB (default "
        "1GiB); a PutObject that would exceed it fails with RESOURCE_EXHAUSTED. maxTotalMiB, its old name, "
        "is an alias.",
    ),
]
# Old names still accepted, as in every Stowage plugin: alias -> key.
ALIASES = {"maxTotalMiB": "maxTotalSize"}
# Every accepted name, aliases included (contract 5.1.1: valid_keys lists every accepted key).
VALID_KEYS = sorted([k.name for k in CONFIG_KEYS] + list(ALIASES))
SIZE_UNITS = {"b": 1, "k": 1024, "ki": 1024, "kib": 1024, "m": 1024**2, "mi": 1024**2, "mib": 1024**2, "g": 1024**3, "gi": 1024**3, "gib": 1024**3}
SIZE = re.compile(r"^(\d+)\s*([a-z]+)$", re.IGNORECASE)
BARE = re.compile(r"^\d+(\.\d+)?$")


def parse_size(text: str) -> int | None:
    """The size syntax of every Stowage plugin: 512MiB, 2GiB, 64K, or a bare number of MiB (this key's old unit)."""
    value = text.strip()
    if BARE.match(value):
        return round(float(value) * 1024**2)
    match = SIZE.match(value)
    unit = SIZE_UNITS.get(match.group(2).lower()) if match else None
    return None if match is None or unit is None else int(match.group(1)) * unit


# ---------------------------------------------------------------------------------------------
# Logging: hclog-shaped JSON lines on standard error (protocol.md §10).


def log(level: str, message: str, **fields: object) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    line = {"@level": level, "@message": message, "@timestamp": stamp, "@module": NAME, **fields}
    sys.stderr.write(json.dumps(line, default=str) + "\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# Errors: a gRPC code, a Stowage reason in a google.rpc.ErrorInfo detail, and a message (contract §4).


class StowageError(Exception):
    """A failure the contract names; handlers raise it and `handler` turns it into a gRPC status."""

    def __init__(self, code: grpc.StatusCode, reason: str | None, message: str, **metadata: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.metadata = metadata


def invalid_name(message: str, **metadata: str) -> StowageError:
    return StowageError(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_NAME", message, **metadata)


def abort(context: grpc.ServicerContext, error: StowageError) -> None:
    """Ends the call with the error's status; the reason travels as contract clause 4.3.2 says."""
    details = []
    if error.reason is not None:
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(domain="stowage.io", reason=error.reason, metadata=error.metadata))
        details.append(info)
    status = status_pb2.Status(code=error.code.value[0], message=error.message, details=details)
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(error.code, error.message)  # raises: grpcio ends the call with this status


def ended(context: grpc.ServicerContext) -> StowageError:
    """The error of a call whose caller cancelled it or whose deadline passed (contract 2.4.3)."""
    if context.time_remaining() is not None and context.time_remaining() <= 0:
        return StowageError(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", "the call's deadline passed")
    return StowageError(grpc.StatusCode.CANCELLED, "CANCELLED", "the caller cancelled the call")


def internal(method: str, error: BaseException) -> StowageError:
    """Contract 4.5.1: an exception that escapes a handler is INTERNAL, and the process keeps serving.
    (Left to grpcio, it would become UNKNOWN, "Exception calling application".)"""
    log("error", "unexpected exception in plugin call", method=method, error="".join(traceback.format_exception(error)))
    return StowageError(grpc.StatusCode.INTERNAL, "INTERNAL", f"unexpected error in the plugin: {error}")


def handler(fn: Callable) -> Callable:
    """Wraps a unary or client-streaming handler: StowageError and unexpected exceptions become statuses."""

    def run(self, request, context):
        try:
            return fn(self, request, context)
        except StowageError as error:
            failure = error
        except grpc.RpcError:
            # The request stream broke: the caller cancelled, or the deadline passed (contract 2.4).
            failure = ended(context)
        except Exception as error:  # noqa: BLE001 - contract 4.5.1
            failure = internal(fn.__name__, error)
        abort(context, failure)

    return run


def stream_handler(fn: Callable) -> Callable:
    """The same for server-streaming handlers (generators); errors after the first message end the
    stream with an error status (contract 4.7.3)."""

    def run(self, request, context):
        try:
            yield from fn(self, request, context)
            return
        except StowageError as error:
            failure = error
        except Exception as error:  # noqa: BLE001 - contract 4.5.1
            failure = internal(fn.__name__, error)
        abort(context, failure)

    return run


# ---------------------------------------------------------------------------------------------
# The storage: objects in memory, replaced atomically, never modified in place.


class StoredObject(NamedTuple):
    data: bytearray  # never written after the object is published
    sha256: bytes
    modified_ns: int
    content_type: str
    metadata: dict


class Settings(NamedTuple):
    buckets: frozenset
    max_total_bytes: int


def info_of(key: str, obj: StoredObject, with_attributes: bool = True) -> pb.ObjectInfo:
    info = pb.ObjectInfo(key=key, size=len(obj.data), etag=obj.sha256.hex())
    info.last_modified.FromNanoseconds(obj.modified_ns)
    if with_attributes:
        info.content_type = obj.content_type
        info.metadata.update(obj.metadata)
    return info


def config_error(message: str, **metadata: str) -> StowageError:
    return StowageError(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CONFIG", message, valid_keys=",".join(VALID_KEYS), **metadata)


def parse_config(config: dict) -> Settings:
    """Contract 5.1.1 and 5.1.2: unknown and missing keys fail with INVALID_CONFIG and valid_keys
    (key names, comma-separated, no spaces, sorted); the whole map is checked before anything changes."""
    unknown = sorted(k for k in config if k not in VALID_KEYS)
    missing = [k.name for k in CONFIG_KEYS if k.required and not config.get(k.name, "").strip()]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"config has invalid keys [{', '.join(unknown)}]")
        if missing:
            problems.append(f"config lacks required keys [{', '.join(missing)}]")
        raise config_error(
            f"{'; '.join(problems)}; valid keys are [{', '.join(VALID_KEYS)}]",
            invalid_keys=",".join(unknown),
            missing_keys=",".join(missing),
        )
    buckets = [b.strip() for b in config["buckets"].split(",") if b.strip()]
    for bucket in buckets:
        if not BUCKET_NAME.match(bucket):
            raise config_error(f"config key buckets: {bucket!r} is not a bucket name (3 to 63 of a-z, 0-9, '.', '-')", key="buckets")
    # The key under its name or its alias; both set must agree.
    given = [k for k in ("maxTotalSize", "maxTotalMiB") if config.get(k, "").strip()]
    key = given[0] if given else "maxTotalSize"
    raw = config.get(key, "").strip() or "1024"
    max_total_bytes = parse_size(raw)
    if max_total_bytes is None or max_total_bytes < 1:
        raise config_error(f"config key {key} must be a size (e.g. 512MiB, 2GiB; a bare number is MiB), got {config.get(key)!r}", key=key)
    if len(given) == 2 and parse_size(config[given[1]]) != max_total_bytes:
        raise config_error("maxTotalSize and its alias maxTotalMiB are both set, to different values; keep only maxTotalSize", key="maxTotalSize")
    return Settings(frozenset(buckets), max_total_bytes)


def check_key(key: str) -> None:
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise invalid_name(f"a key is 1 to {MAX_KEY_BYTES} bytes of UTF-8; this one has {size}: choose a shorter key")


def check_bucket_name(bucket: str) -> None:
    if not BUCKET_NAME.match(bucket):
        raise invalid_name(f"{bucket!r} is not a bucket name (3 to 63 of a-z, 0-9, '.', '-')", bucket=bucket)


def require(value: str, field: str) -> None:
    """Contract 1.1.2: a REQUIRED field left empty fails with INVALID_ARGUMENT naming the field."""
    if value == "":
        raise invalid_name(f"{field} is required")


class Store:
    """The backend: buckets of objects. One lock guards the maps; bodies are immutable once stored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._buckets: dict[str, dict[str, StoredObject]] = {}
        self._used = 0  # bytes of stored bodies
        self._staged = 0  # bytes of bodies being received

    def init(self, settings: Settings) -> None:
        with self._lock:
            for bucket in settings.buckets:
                self._buckets.setdefault(bucket, {})
            self._settings = settings

    def settings(self) -> Settings:
        """Contract 3.6.2: every call but Init needs a successful Init first."""
        settings = self._settings
        if settings is None:
            raise StowageError(grpc.StatusCode.FAILED_PRECONDITION, "NOT_INITIALIZED", f"{NAME} is not initialised: call Init with its configuration first", plugin=NAME)
        return settings

    def bucket(self, settings: Settings, name: str) -> dict[str, StoredObject]:
        check_bucket_name(name)
        if name not in settings.buckets:
            raise StowageError(grpc.StatusCode.NOT_FOUND, "BUCKET_NOT_FOUND", f"bucket {name!r} does not exist; list it in the buckets setting", bucket=name)
        return self._buckets[name]

    def reserve(self, settings: Settings, size: int) -> None:
        with self._lock:
            if self._used + self._staged + size > settings.max_total_bytes:
                raise StowageError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    None,
                    f"the store holds {self._used} bytes and receives {self._staged}; {size} more would exceed maxTotalSize",
                )
            self._staged += size

    def release(self, size: int) -> None:
        with self._lock:
            self._staged -= size

    def publish(self, bucket: dict[str, StoredObject], key: str, obj: StoredObject) -> None:
        with self._lock:
            previous = bucket.get(key)
            self._used += len(obj.data) - (len(previous.data) if previous is not None else 0)
            bucket[key] = obj

    def delete(self, bucket: dict[str, StoredObject], key: str) -> None:
        with self._lock:
            previous = bucket.pop(key, None)
            if previous is not None:
                self._used -= len(previous.data)

    def keys(self, bucket: dict[str, StoredObject]) -> list[str]:
        with self._lock:
            # Python orders str by code point, which is the byte order of UTF-8 (contract 5.5.5).
            return sorted(bucket)


# ---------------------------------------------------------------------------------------------
# Page tokens (contract 5.5.11): the last entry returned, bound to its bucket, prefix and delimiter.


def encode_token(listing: dict, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({**listing, "after": after}).encode()).decode()


def decode_token(token: str, listing: dict) -> str:
    try:
        parsed = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        parsed = None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("after"), str) or any(parsed.get(k) != v for k, v in listing.items()):
        raise StowageError(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", "the page token does not belong to this listing; restart it without a token")
    return parsed["after"]


def entries_of(keys: list[str], prefix: str, delimiter: str) -> list[tuple[str, bool]]:
    """Sorted entries (name, is_prefix) of a listing (contract 5.5.1 to 5.5.5)."""
    entries: list[tuple[str, bool]] = []
    last_prefix = None
    for key in keys[bisect.bisect_left(keys, prefix):]:
        if not key.startswith(prefix):
            break
        rest = key[len(prefix):]
        cut = rest.find(delimiter) if delimiter else -1
        if cut < 0:
            entries.append((key, False))
            continue
        common = prefix + rest[: cut + len(delimiter)]
        # The keys sharing a common prefix sort together, right after it: one entry for all of them.
        if common != last_prefix:
            entries.append((common, True))
            last_prefix = common
    return entries


# ---------------------------------------------------------------------------------------------
# The services.


def route(name: str) -> None:
    """Contract 3.5.2: a name this executable does not serve fails with PLUGIN_NOT_FOUND."""
    if name != NAME:
        raise StowageError(grpc.StatusCode.NOT_FOUND, "PLUGIN_NOT_FOUND", f"no object-store plugin named {name!r} here; this executable serves [{NAME}]", plugin=name)


class ObjectStoreService(object_store_pb2_grpc.ObjectStoreServiceServicer):
    """Checks run in the order of contract clause 4.8.1: request form, plugin name, Init, names,
    bucket, object."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @handler
    def Init(self, request, context):
        route(request.plugin)
        settings = parse_config(dict(request.config))  # a failed Init leaves the previous configuration (3.6.3)
        self.store.init(settings)
        log("info", "configured", buckets=",".join(sorted(settings.buckets)), maxTotalSize=f"{settings.max_total_bytes // MIB}MiB")
        return pb.ObjectStoreServiceInitResponse()

    def bucket_of(self, request) -> dict[str, StoredObject]:
        """The bucket of a request naming one object, after the checks of steps 1 to 5 of 4.8.1."""
        require(request.bucket, "bucket")
        require(request.key, "key")
        route(request.plugin)
        settings = self.store.settings()
        check_key(request.key)
        return self.store.bucket(settings, request.bucket)

    @handler
    def HeadObject(self, request, context):
        obj = self.bucket_of(request).get(request.key)
        if obj is None:
            return pb.HeadObjectResponse(exists=False)  # contract 5.4.1: a missing key is not an error
        return pb.HeadObjectResponse(exists=True, object=info_of(request.key, obj))

    @handler
    def DeleteObject(self, request, context):
        self.store.delete(self.bucket_of(request), request.key)  # a missing key is OK (5.6.2)
        return pb.DeleteObjectResponse()

    @handler
    def CreateSignedURL(self, request, context):
        require(request.bucket, "bucket")
        require(request.key, "key")
        if request.ttl_seconds < 1:
            raise StowageError(grpc.StatusCode.INVALID_ARGUMENT, None, f"ttl_seconds must be at least 1, got {request.ttl_seconds}")
        route(request.plugin)
        self.store.settings()
        # No SIGNED_*_URLS capability is announced (contract 5.7.1).
        raise StowageError(grpc.StatusCode.UNIMPLEMENTED, "UNSUPPORTED", f"{NAME} does not sign URLs; read and write objects through the host")

    @handler
    def PutObject(self, request_iterator, context):
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("part") != "header":
            raise StowageError(grpc.StatusCode.INVALID_ARGUMENT, None, "the first PutObject message must be a header (5.2.1)")
        header = first.header
        require(header.bucket, "bucket")
        require(header.key, "key")
        if header.HasField("size") and header.size < 0:
            raise StowageError(grpc.StatusCode.INVALID_ARGUMENT, None, f"size must not be negative, got {header.size}")
        if header.sha256 and len(header.sha256) != 32:
            raise StowageError(grpc.StatusCode.INVALID_ARGUMENT, None, f"sha256 must be 32 bytes, got {len(header.sha256)} (5.2.7)")
        route(header.plugin)
        settings = self.store.settings()
        if header.data_channel_token:
            # This plugin advertises no data channel, so a host never sends a token (contract 2.6.3).
            raise StowageError(grpc.StatusCode.UNIMPLEMENTED, "UNSUPPORTED", "this plugin offers no data channel; send the body in chunk messages")
        check_key(header.key)
        bucket = self.store.bucket(settings, header.bucket)

        # Receive the body. Nothing is visible until it has arrived whole and verified (5.2.8); a
        # cancelled or expired call usually raises grpc.RpcError out of the request iterator, and the
        # staged bytes are simply dropped (2.4.4).
        terminated = threading.Event()
        context.add_callback(terminated.set)
        body = bytearray()
        digest = hashlib.sha256()
        trailer_size = None
        reserved = 0
        try:
            for message in request_iterator:
                part = message.WhichOneof("part")
                if part == "chunk":
                    if trailer_size is not None:
                        raise StowageError(grpc.StatusCode.INVALID_ARGUMENT, None, "a chunk arrived after the trailer (5.2.2)")
                    self.store.reserve(settings, len(message.chunk))
                    reserved += len(message.chunk)
                    body += message.chunk
                    digest.update(message.chunk)
                elif part == "trailer":
                    if trailer_size is not None:
                        raise StowageError(grpc.StatusCode.INVALID_ARGUMENT, None, "a second trailer arrived (5.2.2)")
                    trailer_size = message.trailer.size
                else:
                    raise StowageError(grpc.StatusCode.INVALID_ARGUMENT, None, "a second header arrived (5.2.2)")
            mismatch = None
            if header.HasField("size") and header.size != len(body):
                mismatch = f"the header announced {header.size} bytes, {len(body)} arrived"
            elif trailer_size is not None and trailer_size != len(body):
                mismatch = f"the trailer announced {trailer_size} bytes, {len(body)} arrived"
            elif header.sha256 and header.sha256 != digest.digest():
                mismatch = "the body's SHA-256 differs from the header's"
            if mismatch is not None:
                raise StowageError(grpc.StatusCode.DATA_LOSS, "INTEGRITY_MISMATCH", f"{mismatch}; nothing was stored, send the body again", bucket=header.bucket)
            if trailer_size is None and not header.HasField("size"):
                # Nothing announced the body's length, and grpcio ends the request iterator of a call
                # the caller cancelled (RST_STREAM) as it ends a finished one; the cancellation reaches
                # is_active() and add_callback a few milliseconds later (2 to 11 ms measured). Wait for it
                # before storing (the Stowage host always sends a trailer: its complete uploads never wait).
                terminated.wait(0.5)
            if not context.is_active():
                raise ended(context)
            obj = StoredObject(body, digest.digest(), time.time_ns(), header.content_type, dict(header.metadata))
            self.store.publish(bucket, header.key, obj)
        finally:
            self.store.release(reserved)
        return pb.PutObjectResponse(size=len(body), etag=obj.sha256.hex(), sha256=obj.sha256)

    @stream_handler
    def GetObject(self, request, context):
        require(request.bucket, "bucket")
        require(request.key, "key")
        ranged = request.HasField("range")
        if ranged and (request.range.offset < 0 or (request.range.HasField("length") and request.range.length < 0)):
            raise StowageError(grpc.StatusCode.INVALID_ARGUMENT, None, "range offset and length must not be negative (5.3.11)")
        route(request.plugin)
        settings = self.store.settings()
        if request.data_channel_token:
            raise StowageError(grpc.StatusCode.UNIMPLEMENTED, "UNSUPPORTED", "this plugin offers no data channel")
        check_key(request.key)
        obj = self.store.bucket(settings, request.bucket).get(request.key)
        if obj is None:
            raise StowageError(grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND", f"object {request.key!r} does not exist in bucket {request.bucket!r}", bucket=request.bucket, key=request.key)
        size = len(obj.data)
        offset, length = 0, size
        if ranged:
            offset = request.range.offset
            if offset > size:
                raise StowageError(grpc.StatusCode.OUT_OF_RANGE, "INVALID_RANGE", f"range offset {offset} is past the end of {request.key!r} ({size} bytes)", size=str(size))
            length = size - offset
            if request.range.HasField("length"):
                length = min(request.range.length, length)
        yield pb.GetObjectResponse(header=pb.GetObjectHeader(object=info_of(request.key, obj), content_length=length, offset=offset))
        # grpcio sends one message at a time and pulls the next only when the caller has room for it,
        # so a slow reader holds back only this generator (2.5.3). After a cancellation grpcio stops
        # pulling and closes the generator at its next yield (2.4.7).
        view = memoryview(obj.data)
        for start in range(offset, offset + length, CHUNK_BYTES):
            yield pb.GetObjectResponse(chunk=bytes(view[start : min(start + CHUNK_BYTES, offset + length)]))
        yield pb.GetObjectResponse(trailer=pb.GetObjectTrailer(size=length))

    @stream_handler
    def ListObjects(self, request, context):
        require(request.bucket, "bucket")
        if request.page_size < 0 or request.page_size > MAX_PAGE_SIZE:
            raise StowageError(grpc.StatusCode.INVALID_ARGUMENT, None, f"page_size must be between 0 and {MAX_PAGE_SIZE}, got {request.page_size} (5.5.6)")
        if request.max_pages < 0:
            raise StowageError(grpc.StatusCode.INVALID_ARGUMENT, None, f"max_pages must not be negative, got {request.max_pages} (5.5.9)")
        route(request.plugin)
        settings = self.store.settings()
        if len(request.prefix.encode("utf-8")) > MAX_KEY_BYTES:
            raise invalid_name(f"the prefix is longer than {MAX_KEY_BYTES} bytes")
        listing = {"bucket": request.bucket, "prefix": request.prefix, "delimiter": request.delimiter}
        after = decode_token(request.page_token, listing) if request.page_token else None
        bucket = self.store.bucket(settings, request.bucket)
        page_size = request.page_size or MAX_PAGE_SIZE
        entries = entries_of(self.store.keys(bucket), request.prefix, request.delimiter)
        names = [name for name, _ in entries]
        position = 0 if after is None else bisect.bisect_right(names, after)
        pages = 0
        while True:
            if not context.is_active():
                return  # cancelled or past its deadline: stop working for it (2.4.2)
            batch = entries[position : position + page_size]
            position += len(batch)
            more = position < len(entries)
            page = pb.ListObjectsResponse(next_page_token=encode_token(listing, batch[-1][0]) if more else "")
            for name, is_prefix in batch:
                if is_prefix:
                    page.common_prefixes.append(name)
                else:
                    obj = bucket.get(name)
                    if obj is not None:  # deleted since the listing started (5.5.13)
                        page.objects.append(info_of(name, obj, with_attributes=False))
            yield page
            pages += 1
            if not more or pages == request.max_pages:
                return


class InfoService(plugin_info_pb2_grpc.PluginInfoServiceServicer):
    def GetPluginInfo(self, request, context):
        return plugin_info_pb2.GetPluginInfoResponse(
            contract_version=CONTRACT_VERSION,
            runtime=f"example-python-memory/{VERSION} python/{sys.version.split()[0]} grpcio/{grpc.__version__}",
            plugins=[
                plugin_info_pb2.PluginDescriptor(
                    name=NAME,
                    kind=plugin_info_pb2.PLUGIN_KIND_OBJECT_STORE,
                    capabilities=[plugin_info_pb2.CAPABILITY_RANGED_READS, plugin_info_pb2.CAPABILITY_OBJECT_METADATA],
                    description="Objects in this process's memory (an example written in Python with grpcio)",
                    config_keys=CONFIG_KEYS,
                )
            ],
        )


# ---------------------------------------------------------------------------------------------
# go-plugin's services (protocol.md §9).

STOPPING = threading.Event()


class Controller(grpc_controller_pb2_grpc.GRPCControllerServicer):
    def __init__(self, stop: Callable[[], None]) -> None:
        self._stop = stop

    def Shutdown(self, request, context):
        # Reply first (protocol.md §9.2): the stop runs once this handler has returned.
        threading.Thread(target=self._stop, daemon=True).start()
        return grpc_controller_pb2.Empty()


class Stdio(grpc_stdio_pb2_grpc.GRPCStdioServicer):
    def StreamStdio(self, request, context):
        # Logs go straight to standard error, so nothing is sent; the stream stays open until the
        # host cancels it or the plugin stops (protocol.md §9.3). It occupies one pool thread.
        done = threading.Event()
        context.add_callback(done.set)
        while not done.is_set() and not STOPPING.is_set():
            done.wait(0.5)
        return
        yield  # a generator: grpcio serves it as a server stream


# ---------------------------------------------------------------------------------------------
# The process (protocol.md §2 to §11).


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # protocol.md §11: the host alone stops the plugin
    offered = [v.strip() for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "").split(",")]
    if str(APP_PROTOCOL_VERSION) not in offered:
        log("warn", "the host does not offer protocol version 1; announcing it anyway so the host can report the mismatch", offered=",".join(offered))

    # protocol.md §5: the socket goes into PLUGIN_UNIX_SOCKET_DIR. A plain go-plugin host does not set
    # it; the plugin then makes a private directory (mode 0700) in the system's temporary directory.
    given = os.environ.get("PLUGIN_UNIX_SOCKET_DIR", "")
    socket_dir = given or tempfile.mkdtemp(prefix="stowage-plugin-")
    socket_path = os.path.join(socket_dir, f"plugin-{os.getpid()}.sock")

    # StreamStdio holds one thread for the life of the process; the rest serve concurrent calls (2.5).
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="rpc"),
        options=[("grpc.max_receive_message_length", 16 * MIB)],  # contract 2.7.3: at least 4 MiB plus framing
    )
    checks = health.HealthServicer()
    checks.set("plugin", health_pb2.HealthCheckResponse.SERVING)
    checks.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)

    stopped = threading.Event()

    def stop() -> None:
        if STOPPING.is_set():
            return
        STOPPING.set()
        # Calls still running after a second are cancelled (contract 2.3.1).
        server.stop(grace=1).wait()
        stopped.set()

    grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(Controller(stop), server)
    grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(Stdio(), server)
    plugin_info_pb2_grpc.add_PluginInfoServiceServicer_to_server(InfoService(), server)
    object_store_pb2_grpc.add_ObjectStoreServiceServicer_to_server(ObjectStoreService(Store()), server)
    server.add_insecure_port("unix:" + socket_path)
    server.start()

    # protocol.md §6: one line, flushed, only once the server accepts connections.
    sys.stdout.write(f"1|{APP_PROTOCOL_VERSION}|unix|{socket_path}|grpc|\n")
    sys.stdout.flush()
    os.dup2(2, 1)  # from now on a stray print() reaches standard error, never the host's handshake reader
    log("info", "plugin started", socket=socket_path, pid=os.getpid())

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=stop, daemon=True).start())
    parent = os.getppid()

    def watch_parent() -> None:  # the host died without Shutdown: do not linger as an orphan
        while not STOPPING.is_set():
            if os.getppid() != parent:
                log("warn", "the host is gone; exiting")
                stop()
            time.sleep(1)

    threading.Thread(target=watch_parent, daemon=True).start()
    while not stopped.wait(1):
        pass
    try:
        os.remove(socket_path)
        if not given:
            os.rmdir(socket_dir)
    except OSError:
        pass
    # Exit at once: worker threads of calls that ignored their cancellation must not hold the exit.
    os._exit(0)


if __name__ == "__main__":
    main()
