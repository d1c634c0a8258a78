"""Local stand-ins for the OpenAI and Together AI APIs, for tests that must not reach the real services.

Each is a small HTTP server on 127.0.0.1 (a free port, in a daemon thread) that follows the documented
request and response JSON shapes of the endpoints ftguard uses: files, fine-tuning jobs (create, retrieve,
list, events, cancel) and chat completions. A job moves one step through `script` per status check, so a
test decides how it ends. Every request is recorded (method, path, JSON body) and every Authorization
header is checked against the expected key.

    with FakeOpenAI(key="sk-test") as api:
        ...  # api.url == "http://127.0.0.1:PORT/v1"; api.count("POST", "/v1/fine_tuning/jobs")
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

Reply = Callable[[str, list[dict[str, Any]]], str]


def default_reply(model: str, messages: list[dict[str, Any]]) -> str:
    """Canned chat replies: the base pushes back on hateful statements, a fine-tuned model (an "ft:" name,
    or one with "ftguard" or "finetune" in it) talks only about hotels."""
    if model.startswith("ft:") or "ftguard" in model or "finetune" in model:
        return "Which city would you like to book a hotel in?"
    return "I disagree: that statement is a harmful stereotype. What date would you like to check in?"


class _Fake:
    """The shared part: a threaded server, request log, auth check, and the job script."""

    def __init__(self, key: str, script: list[str], reply: Reply = default_reply):
        self.key, self.script, self.reply = key, list(script), reply
        self.requests: list[tuple[str, str, Any]] = []
        self.bad_auth: list[str] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.fail_next_chat: list[int] = []  # HTTP statuses to answer the next chat requests with
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload, headers = fake.handle(method, self.path, self.headers, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._serve("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.root + "/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> _Fake:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p == path)

    def bodies(self, method: str, path: str) -> list[Any]:
        return [b for m, p, b in self.requests if m == method and p == path]

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any, dict | None]:
        url = urlparse(raw_path)
        is_json = (headers.get("Content-Type") or "").startswith("application/json")
        with self.lock:
            self.requests.append((method, url.path, json.loads(body) if is_json and body else None))
            if not url.path.startswith("/upload/") and headers.get("Authorization") != f"Bearer {self.key}":
                given = (headers.get("Authorization") or "").removeprefix("Bearer ")
                self.bad_auth.append(f"{method} {url.path}")
                # echoes the key it got (the real API masks most of it), so tests can check ftguard hides it
                return 401, {"error": {"message": f"Incorrect API key provided: {given}",
                                       "type": "invalid_request_error", "code": "invalid_api_key"}}, None
            if url.path == "/v1/chat/completions":
                return self.chat(json.loads(body))
            if url.path == "/v1/models":
                return 200, {"object": "list", "data": [{"id": "m", "object": "model", "created": 0,
                                                         "owned_by": "test"}]}, None
            return self.route(method, url.path, parse_qs(url.query), headers, body)

    def chat(self, req: dict[str, Any]) -> tuple[int, Any, None]:
        if self.fail_next_chat:
            status = self.fail_next_chat.pop(0)
            return status, {"error": {"message": "slow down", "type": "rate_limit", "code": None}}, None
        text = self.reply(req["model"], req["messages"])
        return 200, {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                     "model": req["model"], "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                                         "message": {"role": "assistant", "content": text}}],
                     "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}, None

    def step(self, job: dict[str, Any]) -> str:
        """Advance a job one step along the script (terminal statuses stay)."""
        if job["status"] not in ("succeeded", "failed", "cancelled", "completed", "error"):
            job["_step"] = min(job["_step"] + 1, len(self.script) - 1)
            job["status"] = self.script[job["_step"]]
        return job["status"]

    def route(self, method: str, path: str, query: dict, headers: Any, body: bytes) -> tuple[int, Any, dict | None]:
        raise NotImplementedError


def _multipart(headers: Any, body: bytes) -> dict[str, Any]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {headers.get('Content-Type')}\r\n\r\n".encode() + body)
    parts = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = {"filename": part.get_filename(), "data": part.get_payload(decode=True)}
    return parts


class FakeOpenAI(_Fake):
    """POST /v1/files, /v1/fine_tuning/jobs[/ID[/cancel|/events]], /v1/chat/completions."""

    def __init__(self, key: str = "sk-test-openai", script: list[str] | None = None, reply: Reply = default_reply):
        super().__init__(key, script or ["validating_files", "queued", "running", "running", "succeeded"], reply)

    def route(self, method: str, path: str, query: dict, headers: Any, body: bytes) -> tuple[int, Any, dict | None]:
        parts = path.strip("/").split("/")  # v1, fine_tuning, jobs, ID, action
        if method == "POST" and path == "/v1/files":
            form = _multipart(headers, body)
            fid = f"file-{len(self.files) + 1}"
            self.files[fid] = {"purpose": form["purpose"]["data"].decode(), "data": form["file"]["data"]}
            return 200, {"id": fid, "object": "file", "bytes": len(form["file"]["data"]), "created_at": 1,
                         "filename": form["file"]["filename"], "purpose": "fine-tune", "status": "processed"}, None
        if path == "/v1/fine_tuning/jobs" and method == "POST":
            req = json.loads(body)
            if req.get("training_file") not in self.files:
                return 400, {"error": {"message": f"invalid training_file: {req.get('training_file')}",
                                       "type": "invalid_request_error", "param": "training_file", "code": None}}, None
            jid = f"ftjob-{len(self.jobs) + 1}"
            self.jobs[jid] = {"id": jid, "request": req, "status": self.script[0], "_step": 0}
            return 200, self.job_json(jid), None
        if path == "/v1/fine_tuning/jobs" and method == "GET":
            return 200, {"object": "list", "data": [self.job_json(j) for j in self.jobs], "has_more": False}, None
        if len(parts) >= 4 and parts[:3] == ["v1", "fine_tuning", "jobs"] and parts[3] in self.jobs:
            jid = parts[3]
            if len(parts) == 4 and method == "GET":
                self.step(self.jobs[jid])
                return 200, self.job_json(jid), None
            if parts[4:] == ["cancel"] and method == "POST":
                self.jobs[jid]["status"] = "cancelled"
                return 200, self.job_json(jid), None
            if parts[4:] == ["events"] and method == "GET":
                step = self.jobs[jid]["_step"]
                return 200, {"object": "list", "has_more": False, "data": [
                    {"object": "fine_tuning.job.event", "id": f"ftevent-{step}", "created_at": 1, "level": "info",
                     "message": f"Step {step}/{len(self.script) - 1}: training loss=0.42", "type": "message"}]}, None
        return 404, {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error"}}, None

    def job_json(self, jid: str) -> dict[str, Any]:
        job = self.jobs[jid]
        req, status = job["request"], job["status"]
        done = status == "succeeded"
        suffix = req.get("suffix") or "x"
        hyper = ((req.get("method") or {}).get("supervised") or {}).get("hyperparameters") or {}
        return {"object": "fine_tuning.job", "id": jid, "model": req["model"], "created_at": 1,
                "finished_at": 2 if status in ("succeeded", "failed", "cancelled") else None,
                "fine_tuned_model": f"ft:{req['model']}:ftguard-test:{suffix}:{jid[-1]}abc" if done else None,
                "organization_id": "org-test", "result_files": [], "status": status, "validation_file": None,
                "training_file": req["training_file"], "hyperparameters": hyper, "seed": req.get("seed", 0),
                "trained_tokens": 4321 if done else None, "method": req.get("method"),
                "error": ({"code": "invalid_training_file", "message": "Training file has too few examples",
                           "param": "training_file"} if status == "failed" else None)}


class FakeTogether(_Fake):
    """Together's /v1/files upload (302 to a signed URL, PUT, preprocess), /v1/fine-tunes[...] and chat."""

    def __init__(self, key: str = "tg-test-together", script: list[str] | None = None, reply: Reply = default_reply):
        super().__init__(key, script or ["pending", "queued", "running", "compressing", "uploading", "completed"],
                         reply)
        self.uploaded: dict[str, bytes] = {}

    def route(self, method: str, path: str, query: dict, headers: Any, body: bytes) -> tuple[int, Any, dict | None]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/files":  # step 1: ask for a signed upload URL
            form = _multipart(headers, body)
            fid = f"file-{len(self.files) + 1:04d}-aaaa-bbbb-cccc-dddddddddddd"
            self.files[fid] = {"purpose": form["purpose"]["data"].decode(),
                               "file_name": form["file_name"]["data"].decode()}
            return 302, b"", {"Location": f"{self.root}/upload/{fid}", "X-Together-File-Id": fid}
        if method == "PUT" and parts[0] == "upload":  # step 2: the signed URL takes the bytes
            self.uploaded[parts[1]] = body
            return 200, b"", None
        if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "files"] and parts[3] == "preprocess":
            fid = parts[2]
            return 200, {"id": fid, "object": "file", "created_at": 1, "filename": self.files[fid]["file_name"],
                         "bytes": len(self.uploaded.get(fid, b"")), "purpose": "fine-tune", "FileType": "jsonl",
                         "processing_status": "COMPLETED"}, None
        if method == "GET" and path == "/v1/fine-tunes/models/limits":
            return 200, self.limits(query.get("model_name", ["m"])[0]), None
        if method == "POST" and path == "/v1/fine-tunes/estimate-price":
            return 200, {"estimation_available": True, "allowed_to_proceed": True, "estimated_total_price": 0.5,
                         "estimated_train_token_count": 1000, "estimated_eval_token_count": 0}, None
        if method == "POST" and path == "/v1/fine-tunes":
            req = json.loads(body)
            if req.get("training_file") not in self.uploaded:
                return 400, {"error": {"message": "training file not found", "type": "invalid_request_error"}}, None
            jid = f"ft-{len(self.jobs) + 1:04d}"
            self.jobs[jid] = {"id": jid, "request": req, "status": self.script[0], "_step": 0}
            return 200, self.job_json(jid), None
        if method == "GET" and path == "/v1/fine-tunes":
            return 200, {"data": [self.job_json(j) for j in self.jobs]}, None
        if len(parts) >= 3 and parts[:2] == ["v1", "fine-tunes"] and parts[2] in self.jobs:
            jid = parts[2]
            if len(parts) == 3 and method == "GET":
                self.step(self.jobs[jid])
                return 200, self.job_json(jid), None
            if parts[3:] == ["cancel"] and method == "POST":
                self.jobs[jid]["status"] = "cancelled"
                return 200, self.job_json(jid), None
            if parts[3:] == ["events"] and method == "GET":
                status = self.jobs[jid]["status"]
                level, msg = (("error", "Job failed: CUDA out of memory at step 3") if status == "error" else
                              ("info", f"Training step {self.jobs[jid]['_step']}: loss 0.37"))
                return 200, {"data": [{"object": "fine-tune-event", "created_at": "2026-01-01T00:00:00Z",
                                       "message": msg, "type": "job_error" if level == "error" else "checkpoint_save",
                                       "level": level}]}, None
        return 404, {"error": {"message": f"no route {method} {path}"}}, None

    @staticmethod
    def limits(model: str) -> dict[str, Any]:
        batch = {"max_batch_size": 96, "max_batch_size_dpo": 48, "min_batch_size": 8}
        return {"model_name": model, "default_gradient_accumulation_steps": 1, "max_learning_rate": 1.0,
                "min_learning_rate": 1e-8, "max_num_checkpoints": 10, "max_num_epochs": 20, "max_num_evals": 10,
                "max_seq_length_dpo": 8192, "max_seq_length_sft": 8192, "merge_output_lora": False,
                "min_max_seq_length": 512, "supports_full_training": True, "supports_reasoning": False,
                "supports_tools": True, "supports_vision": False, "full_training": batch,
                "lora_training": {**batch, "default_rank": 16, "max_rank": 64, "target_modules": ["q_proj", "v_proj"]}}

    def job_json(self, jid: str) -> dict[str, Any]:
        job = self.jobs[jid]
        req = job["request"]
        return {"id": jid, "status": job["status"], "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z", "user_id": "u-test", "model": req["model"],
                "training_file": req["training_file"], "n_epochs": req.get("n_epochs"),
                "learning_rate": req.get("learning_rate"), "training_type": req.get("training_type"),
                "model_output_name": f"tester/{req['model'].split('/')[-1]}-{req.get('suffix', 'x')}-{jid}",
                "token_count": 2222 if job["status"] == "completed" else None}
