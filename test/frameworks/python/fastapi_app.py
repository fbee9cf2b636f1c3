"""FastAPI (ASGI) service for the integration tests: stock FastAPI + httpx, no tracing code.
Serves the shared test-service protocol (test/frameworks/README.md). Run it with uvicorn:
`uvicorn fastapi_app:app`."""
import asyncio
import os
import random

import httpx
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import PlainTextResponse

app = FastAPI()
NAME = os.environ.get("OTEL_SERVICE_NAME", "fastapi")
client = httpx.AsyncClient()


@app.get("/hello", response_class=PlainTextResponse)
async def hello():
    return f"hello from {NAME}\n"


@app.get("/items/{item}")
async def item(item: int):
    return {"item": item, "service": NAME}


@app.api_route("/headers", methods=["GET", "POST", "PUT"])
async def headers(request: Request, delay_ms: int = 0):
    if delay_ms:
        await asyncio.sleep(random.random() * delay_ms / 1000)
    return {"traceparent": ",".join(request.headers.getlist("traceparent")),
            "tracestate": ",".join(request.headers.getlist("tracestate"))}


@app.api_route("/call", methods=["GET", "POST", "PUT"])
async def call(request: Request, url: str, delay_ms: int = 0):
    if delay_ms:
        await asyncio.sleep(random.random() * delay_ms / 1000)
    body = await request.body() if request.method != "GET" else None
    r = await client.request(request.method, url, content=body)
    return PlainTextResponse(f"{NAME} -> {r.text}", status_code=r.status_code)


async def _call_later(url: str):
    await client.get(url)


@app.get("/call-after", response_class=PlainTextResponse)
async def call_after(url: str, background: BackgroundTasks):
    background.add_task(_call_later, url)
    return f"{NAME} answered; calls {url} after the response\n"


@app.post("/test", response_class=PlainTextResponse)
async def w3c(request: Request):
    for action in await request.json():
        try:
            await client.post(action["url"], json=action["arguments"], timeout=5)
        except httpx.HTTPError:
            pass
    return "ok"
