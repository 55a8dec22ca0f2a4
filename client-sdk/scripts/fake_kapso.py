#!/usr/bin/env python3
"""A fake Kapso WhatsApp API for the SDK tests: sends, read receipts and media.

- `POST /meta/whatsapp/v24.0/{phone_number_id}/messages`: sends get
  `{"messaging_product":"whatsapp","contacts":[...],"messages":[{"id":"wamid.fake-N"}]}`,
  read receipts (`"status":"read"`) get `{"success":true}`.
- `POST /meta/whatsapp/v24.0/{phone_number_id}/media` (multipart, `Content-Length` or
  chunked): keeps the file and answers `{"id":"fake-media-N"}`.
- `GET /meta/whatsapp/v24.0/{media_id}`: the media endpoint's answer for a kept file, its
  `download_url` pointing back here; Meta's "object does not exist" for any other id.
- `GET /meta/whatsapp/media_download?token=...`: the kept file's bytes.

A request without the `X-API-Key` given by --api-key gets 401 with Meta's error envelope.
Every answered send and receipt is appended to --log as one JSON line (path, api_key, body),
every upload as one line (path, api_key, an empty body, and `upload`: the form's type, the
file's name, content type, size and SHA-256, or `aborted` when the body broke off), so tests
can check what the core sent.

Listens on 127.0.0.1, port 0 by default, and writes the bound port to --port-file once it
accepts connections. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

MESSAGES_PATH = re.compile(r"^/meta/whatsapp/v24\.0/(?P<phone_number_id>[^/]+)/messages$")
UPLOAD_PATH = re.compile(r"^/meta/whatsapp/v24\.0/(?P<phone_number_id>[^/]+)/media$")
MEDIA_PATH = re.compile(r"^/meta/whatsapp/v24\.0/(?P<media_id>[A-Za-z0-9_-]+)$")
DOWNLOAD_PATH = "/meta/whatsapp/media_download"


class BrokenBody(Exception):
    """The client stopped sending before the body's end."""


def read_chunked(rfile) -> bytes:
    """A `Transfer-Encoding: chunked` body, decoded; BrokenBody when it stops early."""
    data = bytearray()
    while True:
        line = rfile.readline()
        if not line.endswith(b"\n"):
            raise BrokenBody(len(data))
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(data)
        chunk = rfile.read(size)
        if len(chunk) < size:
            raise BrokenBody(len(data) + len(chunk))
        data += chunk
        rfile.readline()


def multipart(content_type: str, body: bytes) -> Optional[List[Tuple[Dict[str, str], bytes]]]:
    """A `multipart/form-data` body's parts as (headers, content); None when it is not one."""
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not match:
        return None
    delimiter = b"--" + match.group(1).encode()
    parts = []
    for raw in body.split(delimiter)[1:]:
        if raw.startswith(b"--"):
            break
        head, _, content = raw[2:].partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content[:-2] if content.endswith(b"\r\n") else content))
    return parts


def disposition(headers: Dict[str, str], key: str) -> str:
    match = re.search(key + r'="([^"]*)"', headers.get("content-disposition", ""))
    return match.group(1) if match else ""


def make_handler(api_key: str, log_path: str):
    counter = itertools.count(1)
    media_ids = itertools.count(1)
    lock = threading.Lock()
    files: Dict[str, Tuple[bytes, str]] = {}

    def log(record: dict) -> None:
        with lock, open(log_path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            try:
                raw = self._body()
            except BrokenBody as broken:
                if UPLOAD_PATH.match(self.path):
                    log({"path": self.path, "api_key": self.headers.get("X-API-Key"), "body": {},
                         "upload": {"aborted": True, "received": broken.args[0]}})
                self.close_connection = True
                return
            if UPLOAD_PATH.match(self.path):
                return self._upload(raw)
            if not MESSAGES_PATH.match(self.path):
                return self._answer(404, {"error": {"message": "not found", "code": 100}})
            if not self._authorized():
                return
            try:
                body = json.loads(raw)
            except ValueError:
                return self._answer(400, {"error": {"message": "invalid JSON", "code": 100}})
            log({"path": self.path, "api_key": self.headers.get("X-API-Key"), "body": body})
            if body.get("status") == "read":
                return self._answer(200, {"success": True})
            to = str(body.get("to", ""))
            return self._answer(
                200,
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                    "messages": [{"id": f"wamid.fake-{next(counter)}"}],
                },
            )

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == DOWNLOAD_PATH:
                token = parse_qs(url.query).get("token", [""])[0]
                with lock:
                    kept = files.get(token)
                if kept is None:
                    return self._answer(404, {"error": {"message": "expired", "code": 100}})
                data, mime_type = kept
                self.send_response(200)
                self.send_header("Content-Type", mime_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            match = MEDIA_PATH.match(url.path)
            if not match:
                return self._answer(404, {"error": {"message": "not found", "code": 100}})
            if not self._authorized():
                return
            media_id = match.group("media_id")
            with lock:
                kept = files.get(media_id)
            if kept is None:
                message = f"Unsupported get request. Object with ID '{media_id}' does not exist"
                return self._answer(400, {"error": {
                    "message": message, "type": "GraphMethodException", "code": 100, "error_subcode": 33}})
            data, mime_type = kept
            origin = f"http://127.0.0.1:{self.server.server_address[1]}"
            return self._answer(200, {
                "messaging_product": "whatsapp",
                "id": media_id,
                "url": f"{origin}/lookaside/{media_id}",
                "download_url": f"{origin}{DOWNLOAD_PATH}?token={media_id}",
                "mime_type": mime_type,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": str(len(data)),
            })

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return read_chunked(self.rfile)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if len(raw) < length:
                raise BrokenBody(len(raw))
            return raw

        def _authorized(self) -> bool:
            if self.headers.get("X-API-Key") == api_key:
                return True
            self._answer(401, {"error": {"message": "bad API key", "code": 190}})
            return False

        def _upload(self, raw: bytes):
            if not self._authorized():
                return
            parts = multipart(self.headers.get("Content-Type", ""), raw)
            fields = {disposition(h, "name"): (h, content) for h, content in parts or []}
            if "file" not in fields or "type" not in fields:
                return self._answer(400, {"error": {"message": "file and type are required", "code": 100}})
            headers, data = fields["file"]
            mime_type = fields["type"][1].decode()
            media_id = f"fake-media-{next(media_ids)}"
            with lock:
                files[media_id] = (data, mime_type)
            log({"path": self.path, "api_key": self.headers.get("X-API-Key"), "body": {}, "upload": {
                "id": media_id,
                "messaging_product": fields.get("messaging_product", ({}, b""))[1].decode(),
                "type": mime_type,
                "filename": disposition(headers, "filename"),
                "content_type": headers.get("content-type", ""),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }})
            return self._answer(200, {"id": media_id})

        def _answer(self, status: int, document: dict):
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            print(f"fake-kapso: {format % args}", flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--api-key", required=True)
    args = parser.parse_args()

    open(args.log, "w").close()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.api_key, args.log))
    with open(args.port_file + ".tmp", "w") as port_file:
        port_file.write(str(server.server_address[1]))
    # Renamed into place so a reader never sees a half-written file.
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
