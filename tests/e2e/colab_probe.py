"""Colab's side of a local-runtime connection, for the e2e test: HTTP over the websocket.

Colab's front end reaches the runtime through ``jupyter_http_over_ws``: it opens
``/http_over_websocket`` with ``Origin: https://colab.research.google.com`` and sends JSON
requests that the extension proxies to the Jupyter server. This script does the same, so the
test proves the extension loads and works with the pinned Jupyter. Run it with the runtime's
own Python (it has tornado): ``python colab_probe.py PORT PATH [ORIGIN]``, the token (if any)
in ``PROBE_TOKEN``; it prints ``{"handshake": code, "status": code, "body": text}``.
"""

import base64
import json
import os
import sys

from tornado import httpclient, ioloop, websocket


async def main(port: int, path: str, origin: str) -> None:
    headers = {"Origin": origin}
    token = os.environ.get("PROBE_TOKEN")
    if token:
        headers["Authorization"] = f"token {token}"
    request = httpclient.HTTPRequest(
        f"ws://127.0.0.1:{port}/http_over_websocket?min_version=0.0.7", headers=headers
    )
    try:
        conn = await websocket.websocket_connect(request)
    except httpclient.HTTPClientError as e:
        print(json.dumps({"handshake": e.code}))
        return
    await conn.write_message(json.dumps({"message_id": "1", "method": "GET", "path": path}))
    body, first = b"", None
    while True:
        msg = await conn.read_message()
        if msg is None:
            break
        reply = json.loads(msg)
        first = first or reply
        body += base64.b64decode(reply.get("data", ""))
        if reply.get("done"):
            break
    status = first.get("status") if first else None
    print(json.dumps({"handshake": 101, "status": status, "body": body.decode()}))


if __name__ == "__main__":
    origin = sys.argv[3] if len(sys.argv) > 3 else "https://colab.research.google.com"
    ioloop.IOLoop.current().run_sync(lambda: main(int(sys.argv[1]), sys.argv[2], origin))
