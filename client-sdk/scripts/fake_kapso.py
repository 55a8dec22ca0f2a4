#!/usr/bin/env python3
"""A fake Kapso WhatsApp API for the SDK tests: answers `POST /meta/whatsapp/v24.0/{phone_number_id}/messages`.

Sends get `{"messaging_product":"whatsapp","contacts":[...],"messages":[{"id":"wamid.fake-N"}]}`,
read receipts (`"status":"read"`) get `{"success":true}`. A request without the `X-API-Key`
given by --api-key gets 401 with Meta's error envelope. Every answered request is appended to
--log as one JSON line (path, api_key, body) so tests can check what the core sent.

Listens on 127.0.0.1, port 0 by default, and writes the bound port to --port-file once it
accepts connections. Standard library only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MESSAGES_PATH = re.compile(r"^/meta/whatsapp/v24\.0/(?P<phone_number_id>[^/]+)/messages$")


def make_handler(api_key: str, log_path: str):
    counter = itertools.count(1)
    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not MESSAGES_PATH.match(self.path):
                return self._answer(404, {"error": {"message": "not found", "code": 100}})
            if self.headers.get("X-API-Key") != api_key:
                return self._answer(401, {"error": {"message": "bad API key", "code": 190}})
            try:
                body = json.loads(raw)
            except ValueError:
                return self._answer(400, {"error": {"message": "invalid JSON", "code": 100}})
            with log_lock, open(log_path, "a", encoding="utf-8") as log:
                record = {"path": self.path, "api_key": self.headers.get("X-API-Key"), "body": body}
                log.write(json.dumps(record) + "\n")
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
