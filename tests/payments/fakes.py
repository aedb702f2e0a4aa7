"""Loopback stand-ins for the payment team's service (contracts §4): a fast
in-memory implementation of the HTTP contract, a server that sleeps past any
timeout, and a closed port. Real HTTP servers in threads, never patched code."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from payments.signing import body_sign


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # read by listen() in __init__: hundreds of concurrent clients connect at once


class FakePaymentService:
    """The contract's create / close / query, in memory, thread-safe."""

    def __init__(self, secret: str):
        self.secret = secret
        self.lock = threading.Lock()
        self.by_order: dict[str, dict] = {}
        self.by_code: dict[str, dict] = {}
        self.creates = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self):
                body = self._body()
                if self.headers.get("X-Signature") != body_sign(body, secret=fake.secret):
                    return self._send(401, {"error": "bad signature"})
                path = self.path.split("?")[0].rstrip("/")
                if path.endswith("/v1/paycodes"):
                    data = json.loads(body)
                    with fake.lock:
                        fake.creates += 1
                        code = fake.by_order.get(data["merchant_order_no"])
                        if code is None:
                            code = {
                                "paycode": "FK" + secrets.token_hex(8),
                                "merchant_order_no": data["merchant_order_no"],
                                "amount_fen": data["amount_fen"],
                                "status": "PENDING",
                                "channel": None,
                                "transaction_id": None,
                                "paid_at": None,
                            }
                            fake.by_order[data["merchant_order_no"]] = code
                            fake.by_code[code["paycode"]] = code
                    return self._send(
                        200,
                        {
                            "paycode": code["paycode"],
                            "cashier_url": f"http://127.0.0.1/cashier/{code['paycode']}",
                            "expires_at": "2026-11-27T12:00:00+08:00",
                        },
                    )
                if path.endswith("/close"):
                    paycode = path.split("/")[-2]
                    with fake.lock:
                        code = fake.by_code[paycode]
                        if code["status"] == "PAID":
                            return self._send(409, {"status": "PAID"})
                        code["status"] = "CLOSED"
                    return self._send(200, {"status": "CLOSED"})
                return self._send(404, {"error": "no such path"})

            def do_GET(self):
                paycode = self.path.split("?")[0].rstrip("/").split("/")[-1]
                with fake.lock:
                    code = fake.by_code.get(paycode)
                if code is None:
                    return self._send(404, {"error": "no such paycode"})
                return self._send(200, dict(code))

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def set_status(self, merchant_order_no: str, status: str, **fields) -> None:
        with self.lock:
            self.by_order[merchant_order_no].update(status=status, **fields)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlowServer:
    """Accepts connections and answers nothing until `delay` has passed."""

    def __init__(self, delay: float):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                time.sleep(delay)
                try:
                    self.send_response(500)
                    self.end_headers()
                except OSError:
                    pass

            do_GET = do_POST  # noqa: N815

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FixedAnswerServer:
    """Answers every request with the same status and JSON body (a service that
    answers outside the contract)."""

    def __init__(self, status: int, body: dict):
        raw = json.dumps(body).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST  # noqa: N815

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
