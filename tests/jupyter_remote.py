"""Run code in a kernel of a running Jupyter server, as a student's notebook does: REST to
start the kernel, the kernel's websocket channel for ``execute_request`` (Jupyter messaging
protocol 5.3), everything the code printed collected until the kernel is idle again."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid


def run_code(base: str, token: str, code: str, timeout: float = 120.0) -> str:
    """Start a kernel on the server at ``base`` (``http://127.0.0.1:PORT``), run ``code``,
    shut the kernel down; returns its stdout (raises RuntimeError with the traceback on an error)."""
    return asyncio.run(_run(base, token, code, timeout))


async def _run(base: str, token: str, code: str, timeout: float) -> str:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    auth = {"Authorization": f"token {token}"}  # a header, as JupyterHub's servers want it for the API
    req = urllib.request.Request(f"{base}/api/kernels", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json", **auth})
    with urllib.request.urlopen(req, timeout=60) as r:
        kernel = json.load(r)["id"]
    try:
        ws = await websocket_connect(HTTPRequest(f"{base.replace('http', 'ws', 1)}/api/kernels/{kernel}/channels", headers=auth))
        msg_id = uuid.uuid4().hex
        ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False},
        }))
        out, error = [], None
        while True:
            raw = await asyncio.wait_for(ws.read_message(), timeout)
            if raw is None:
                raise RuntimeError("the kernel's channel closed")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                error = "\n".join(msg["content"]["traceback"])
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
        ws.close()
        if error:
            raise RuntimeError(error)
        return "".join(out)
    finally:
        req = urllib.request.Request(f"{base}/api/kernels/{kernel}", method="DELETE", headers=auth)
        urllib.request.urlopen(req, timeout=60).close()
