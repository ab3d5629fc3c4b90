"""The ingest floor: a bare ASGI app that only reads the body and parses it with orjson, then answers 202.

Run on uvicorn with httptools as the monitor shipped before its guard (bench/ingest.py and
bench/attacks.py start it as `python -m uvicorn floor_app:app --http httptools --loop uvloop`):
nothing the monitor does can be faster than this on the same server, so the monitor's throughput
is given as a ratio of it.
"""

from __future__ import annotations

from typing import Any

import orjson

_ANSWER = b'{"accepted":true}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_ANSWER)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    status = 200
    if scope["method"] == "POST":
        status = 202
        try:
            orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError:
            status = 400
    await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _ANSWER})
