"""A local HTTP stand-in for the few CloudFront and KeyValueStore calls atomicsite makes.

Why it exists: moto accepts any ``If-Match`` on UpdateDistribution (so it cannot prove the
conflict path), has no CloudFront Functions API, and does not serve the KeyValueStore data plane.
This server speaks the wire formats botocore expects (REST-XML for CloudFront, REST-JSON for the
KeyValueStore) for just these operations, and enforces ETags the way AWS does: every write changes
the ETag, and a write with a stale ``If-Match`` fails (412 PreconditionFailed / 409 ConflictException).

    GET  /2020-05-31/distribution/{id}/config          GetDistributionConfig
    PUT  /2020-05-31/distribution/{id}/config          UpdateDistribution (If-Match)
    GET  /2020-05-31/distribution/{id}                 GetDistribution
    POST /2020-05-31/function                          CreateFunction
    GET  /2020-05-31/function/{name}/describe          DescribeFunction
    PUT  /2020-05-31/function/{name}                   UpdateFunction (If-Match)
    POST /2020-05-31/function/{name}/publish           PublishFunction (If-Match)
    GET  /key-value-stores/{arn}                       DescribeKeyValueStore
    GET  /key-value-stores/{arn}/keys/{key}            GetKey
    PUT  /key-value-stores/{arn}/keys/{key}            PutKey (If-Match)
    DELETE /key-value-stores/{arn}/keys/{key}          DeleteKey (If-Match; 404 for a missing key)

Faults for tests: :meth:`race_next` changes a resource's ETag right after the next read of it (a
concurrent writer), :meth:`fail_next` answers the next matching request with a 5xx, optionally after
applying it (a lost answer).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

NS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
ACCOUNT = "123456789012"


def _etag() -> str:
    return "E" + uuid.uuid4().hex[:13].upper()


def distribution_config_xml(config: dict) -> bytes:
    """Serialize a DistributionConfig dict exactly as botocore would send it."""
    import botocore.session
    from botocore.serialize import create_serializer

    model = botocore.session.get_session().get_service_model("cloudfront").operation_model("UpdateDistribution")
    request = create_serializer("rest-xml").serialize_to_request(
        {"Id": "x", "IfMatch": "x", "DistributionConfig": config}, model)
    return request["body"]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(node: ET.Element, *path: str) -> ET.Element | None:
    for name in path:
        node = next((c for c in node if _local(c.tag) == name), None)
        if node is None:
            return None
    return node


@dataclass
class Fault:
    method: str
    path_contains: str
    status: int = 503
    after_apply: bool = False


@dataclass
class StandInState:
    distributions: dict = field(default_factory=dict)  # id -> {"config": bytes, "etag": str, "status": str}
    functions: dict = field(default_factory=dict)  # name -> {...}
    kvs: dict = field(default_factory=dict)  # arn -> {"etag": str, "items": {key: value}}
    requests: list = field(default_factory=list)  # (method, path, headers dict)
    races: set = field(default_factory=set)  # resource ids whose ETag changes after their next read
    faults: list = field(default_factory=list)


class CloudFrontStandIn:
    def __init__(self):
        self.state = StandInState()
        self.lock = threading.Lock()
        standin = self

        class Handler(_Handler):
            owner = standin

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> CloudFrontStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- seeding and faults ---
    def add_distribution(self, dist_id: str, config: dict, *, status: str = "Deployed") -> str:
        etag = _etag()
        self.state.distributions[dist_id] = {"config": distribution_config_xml(config), "etag": etag, "status": status}
        return etag

    def add_kvs(self, kvs_id: str, items: dict | None = None) -> str:
        arn = f"arn:aws:cloudfront::{ACCOUNT}:key-value-store/{kvs_id}"
        self.state.kvs[arn] = {"etag": _etag(), "items": dict(items or {})}
        return arn

    def race_next(self, resource: str) -> None:
        """Another writer changes ``resource`` (distribution id or KVS ARN) right after its next read."""
        self.state.races.add(resource)

    def fail_next(self, method: str, path_contains: str, *, status: int = 503, after_apply: bool = False) -> None:
        self.state.faults.append(Fault(method, path_contains, status, after_apply))

    def requests_to(self, method: str, path_contains: str) -> list[dict]:
        return [h for m, p, h in self.state.requests if m == method and path_contains in p]


class _Handler(BaseHTTPRequestHandler):
    owner: CloudFrontStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    # --- plumbing ---
    def _dispatch(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        raw_path = urlsplit(self.path).path
        query = parse_qs(urlsplit(self.path).query)
        parts = [unquote(p) for p in raw_path.split("/")[1:]]
        st = self.owner.state
        with self.owner.lock:
            st.requests.append((self.command, raw_path, {k.lower(): v for k, v in self.headers.items()}))
            fault = next((f for f in st.faults if f.method == self.command and f.path_contains in raw_path), None)
            if fault:
                st.faults.remove(fault)
                if not fault.after_apply:
                    return self._send(*self._xml_err(fault.status, "ServiceUnavailable", "injected fault"))
            if parts[:1] == ["2020-05-31"]:
                status, headers, payload = self._cloudfront(parts[1:], query, body)
            elif parts[:1] == ["key-value-stores"]:
                status, headers, payload = self._kvs(parts[1:], body)
            else:
                status, headers, payload = 404, {}, b"no such route"
            if fault:  # applied, but the answer is lost
                return self._send(*self._xml_err(fault.status, "ServiceUnavailable", "injected fault after apply"))
        self._send(status, headers, payload)

    do_GET = do_PUT = do_POST = do_DELETE = _dispatch

    def _send(self, status: int, headers: dict, payload: bytes):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    @staticmethod
    def _xml_err(status: int, code: str, message: str):
        body = (f'<?xml version="1.0"?><ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
                f"<Message>{escape(message)}</Message></Error><RequestId>standin</RequestId></ErrorResponse>")
        return status, {"Content-Type": "text/xml"}, body.encode()

    @staticmethod
    def _json_err(status: int, code: str, message: str):
        return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, \
            json.dumps({"Message": message}).encode()

    def _if_match(self) -> str | None:
        return self.headers.get("If-Match")

    def _after_read(self, resource: str, bump) -> None:
        st = self.owner.state
        if resource in st.races:
            st.races.discard(resource)
            bump()

    # --- CloudFront (REST-XML) ---
    def _cloudfront(self, parts, query, body):
        st = self.owner.state
        if parts[:1] == ["distribution"] and len(parts) >= 2:
            dist = st.distributions.get(parts[1])
            if dist is None:
                return self._xml_err(404, "NoSuchDistribution", "The specified distribution does not exist.")
            if parts[2:] == ["config"] and self.command == "GET":
                etag = dist["etag"]

                def bump():
                    dist["etag"] = _etag()

                self._after_read(parts[1], bump)
                return 200, {"ETag": etag, "Content-Type": "text/xml"}, dist["config"]
            if parts[2:] == ["config"] and self.command == "PUT":
                if not self._if_match():
                    return self._xml_err(400, "InvalidIfMatchVersion", "The If-Match version is missing.")
                if self._if_match() != dist["etag"]:
                    return self._xml_err(412, "PreconditionFailed", "The precondition given in one or more of the "
                                                                    "request header fields evaluated to false.")
                dist["config"], dist["etag"] = body, _etag()
                return 200, {"ETag": dist["etag"], "Content-Type": "text/xml"}, self._distribution(parts[1], dist)
            if parts[2:] == [] and self.command == "GET":
                return 200, {"ETag": dist["etag"], "Content-Type": "text/xml"}, self._distribution(parts[1], dist)
        if parts[:1] == ["function"]:
            return self._function(parts[1:], query, body)
        return self._xml_err(404, "NotFound", f"stand-in has no route for {self.command} {self.path}")

    @staticmethod
    def _distribution(dist_id: str, dist: dict) -> bytes:
        inner = dist["config"].decode()
        if inner.startswith("<?xml"):
            inner = inner[inner.index("?>") + 2:]
        return (f'<?xml version="1.0"?><Distribution xmlns="{NS}"><Id>{dist_id}</Id>'
                f"<ARN>arn:aws:cloudfront::{ACCOUNT}:distribution/{dist_id}</ARN><Status>{dist.get('status', 'Deployed')}</Status>"
                f"<LastModifiedTime>2024-01-01T00:00:00Z</LastModifiedTime>"
                f"<InProgressInvalidationBatches>0</InProgressInvalidationBatches>"
                f"<DomainName>{dist_id.lower()}.cloudfront.net</DomainName>{inner}</Distribution>").encode()

    def _function(self, parts, query, body):
        st = self.owner.state
        if not parts and self.command == "POST":
            req = ET.fromstring(body)
            name = _find(req, "Name").text
            if name in st.functions:
                return self._xml_err(409, "FunctionAlreadyExists", f"function {name} exists")
            fn = st.functions[name] = {"etag": _etag(), "stage": "DEVELOPMENT", "live_code": None, "published": 0}
            self._store_function(fn, req)
            return 201, {"ETag": fn["etag"], "Location": f"{self.owner.url}/2020-05-31/function/{name}",
                         "Content-Type": "text/xml"}, self._summary(name, fn, "DEVELOPMENT")
        name = parts[0] if parts else ""
        fn = st.functions.get(name)
        if fn is None:
            return self._xml_err(404, "NoSuchFunctionExists", f"function {name} does not exist")
        if parts[1:] == ["describe"] and self.command == "GET":
            stage = query.get("Stage", ["DEVELOPMENT"])[0]
            return 200, {"ETag": fn["etag"], "Content-Type": "text/xml"}, self._summary(name, fn, stage)
        if self.command in ("PUT", "POST") and parts[1:] in ([], ["publish"]):
            if self._if_match() != fn["etag"]:
                return self._xml_err(412, "PreconditionFailed", "stale If-Match for function")
            if parts[1:] == []:
                self._store_function(fn, ET.fromstring(body))
                fn["etag"] = _etag()
                return 200, {"ETag": fn["etag"], "Content-Type": "text/xml"}, self._summary(name, fn, "DEVELOPMENT")
            fn["live_code"], fn["published"] = fn["code"], fn["published"] + 1
            return 200, {"Content-Type": "text/xml"}, self._summary(name, fn, "LIVE")
        return self._xml_err(404, "NotFound", f"stand-in has no route for {self.command} {self.path}")

    @staticmethod
    def _store_function(fn: dict, req: ET.Element) -> None:
        fn["code"] = base64.b64decode(_find(req, "FunctionCode").text).decode("utf-8")
        fn["runtime"] = _find(req, "FunctionConfig", "Runtime").text
        fn["comment"] = _find(req, "FunctionConfig", "Comment").text
        items = _find(req, "FunctionConfig", "KeyValueStoreAssociations", "Items")
        fn["kvs_arns"] = [_find(i, "KeyValueStoreARN").text for i in (items if items is not None else [])]

    @staticmethod
    def _summary(name: str, fn: dict, stage: str) -> bytes:
        kvs = "".join(f"<KeyValueStoreAssociation><KeyValueStoreARN>{escape(a)}</KeyValueStoreARN>"
                      f"</KeyValueStoreAssociation>" for a in fn["kvs_arns"])
        status = "UNASSOCIATED" if fn["published"] else "UNPUBLISHED"
        return (f'<?xml version="1.0"?><FunctionSummary xmlns="{NS}"><Name>{name}</Name><Status>{status}</Status>'
                f"<FunctionConfig><Comment>{escape(fn['comment'])}</Comment><Runtime>{fn['runtime']}</Runtime>"
                f"<KeyValueStoreAssociations><Quantity>{len(fn['kvs_arns'])}</Quantity><Items>{kvs}</Items>"
                f"</KeyValueStoreAssociations></FunctionConfig><FunctionMetadata>"
                f"<FunctionARN>arn:aws:cloudfront::{ACCOUNT}:function/{name}</FunctionARN><Stage>{stage}</Stage>"
                f"<CreatedTime>2024-01-01T00:00:00Z</CreatedTime><LastModifiedTime>2024-01-01T00:00:00Z"
                f"</LastModifiedTime></FunctionMetadata></FunctionSummary>").encode()

    # --- KeyValueStore data plane (REST-JSON) ---
    def _kvs(self, parts, body):
        st = self.owner.state
        arn = parts[0] if parts else ""
        store = st.kvs.get(arn)
        if store is None:
            return self._json_err(404, "ResourceNotFoundException", f"no key value store {arn}")
        size = sum(len(k) + len(v) for k, v in store["items"].items())
        counts = {"ItemCount": len(store["items"]), "TotalSizeInBytes": size}
        if len(parts) == 1 and self.command == "GET":
            etag = store["etag"]

            def bump():
                store["items"]["someone-else"] = "x"
                store["etag"] = _etag()

            self._after_read(arn, bump)
            return 200, {"ETag": etag, "Content-Type": "application/json"}, json.dumps(
                {"KvsARN": arn, "Created": 1700000000, "Status": "READY", **counts}).encode()
        if len(parts) == 3 and parts[1] == "keys":
            key = parts[2]
            if self.command == "GET":
                if key not in store["items"]:
                    return self._json_err(404, "ResourceNotFoundException", f"key {key} not found")
                return 200, {"Content-Type": "application/json"}, json.dumps(
                    {"Key": key, "Value": store["items"][key], **counts}).encode()
            if self.command == "PUT":
                if self._if_match() != store["etag"]:
                    return self._json_err(409, "ConflictException", "the store changed: stale If-Match")
                store["items"][key] = json.loads(body)["Value"]
                store["etag"] = _etag()
                return 200, {"ETag": store["etag"], "Content-Type": "application/json"}, json.dumps(counts).encode()
            if self.command == "DELETE":
                if self._if_match() != store["etag"]:
                    return self._json_err(409, "ConflictException", "the store changed: stale If-Match")
                if key not in store["items"]:
                    return self._json_err(404, "ResourceNotFoundException", f"key {key} not found")
                del store["items"][key]
                store["etag"] = _etag()
                return 200, {"ETag": store["etag"], "Content-Type": "application/json"}, json.dumps(counts).encode()
        return self._json_err(404, "ResourceNotFoundException", f"stand-in has no route for {self.command} {self.path}")
