"""The benchmark's webhook receiver (a separate process): records when each event arrived.

A raw ASGI app under uvicorn: ``POST /hook/<n>`` stores (event id, publish time from the
event's data.occurred_at, arrival time) and answers 204; ``GET /stats`` returns them all.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any

import orjson
import uvicorn

arrivals: list[tuple[str, float, float]] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "GET":
        payload = orjson.dumps(arrivals)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": payload})
        return
    now = time.time()
    event = orjson.loads(body)
    published = datetime.fromisoformat(event["data"]["occurred_at"]).timestamp()
    arrivals.append((scope["path"] + " " + event["id"], published, now))
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off")
