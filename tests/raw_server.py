"""A chat-completions server on 127.0.0.1 that answers whatever a test scripts, byte for byte: malformed bodies,
HTML, wrong shapes, 429 with Retry-After, key echoes, or no answer at all (a hang).

    with RawServer(lambda body, headers: (200, {}, b"<html>oops</html>")) as srv:
        srv.url        # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, dict[str, str], bytes]


def completion(content: Any) -> bytes:
    """A well-formed chat completion whose message content is `content` (any JSON value)."""
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}]}).encode()


class RawServer:
    def __init__(self, answer: Callable[[dict[str, Any], dict[str, str]], Answer | None]):
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.stop = threading.Event()
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                srv.requests.append(body)
                got = srv.answer(body, dict(self.headers))
                if got is None:  # hang until the test ends
                    srv.stop.wait(60)
                    return
                status, headers, data = got
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> RawServer:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        time.sleep(0.05)
        self.httpd.shutdown()
        self.httpd.server_close()
