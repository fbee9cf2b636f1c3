"""aiohttp service for the integration tests: stock aiohttp server and client, no tracing code.
Serves the shared test-service protocol (test/frameworks/README.md).
`python aiohttp_app.py PORT` (EVENT_LOOP=uvloop: on uvloop's loop, as its users run it)."""
import asyncio
import os
import random
import sys

from aiohttp import ClientSession, web

NAME = os.environ.get("OTEL_SERVICE_NAME", "aiohttp")


async def hello(_request):
    return web.Response(text=f"hello from {NAME}\n")


async def headers(request):
    return web.json_response({"traceparent": ",".join(request.headers.getall("traceparent", [])),
                              "tracestate": ",".join(request.headers.getall("tracestate", []))})


async def call(request):
    delay = int(request.query.get("delay_ms", "0"))
    if delay:
        await asyncio.sleep(random.random() * delay / 1000)
    body = await request.read() if request.method != "GET" else None
    async with request.app["client"].request(request.method, request.query["url"], data=body) as r:
        text = await r.text()
        return web.Response(text=f"{NAME} -> {text}", status=r.status)


async def call_after(request):
    url = request.query["url"]
    response = web.Response(text=f"{NAME} answered; calls {url} after the response\n")
    await response.prepare(request)
    await response.write_eof()
    async with request.app["client"].get(url) as r:
        await r.read()
    return response


async def w3c(request):
    for action in await request.json():
        try:
            async with request.app["client"].post(action["url"], json=action["arguments"]) as r:
                await r.read()
        except Exception:  # the harness decides what a failed call means
            pass
    return web.Response(text="ok")


async def client_ctx(app):
    app["client"] = ClientSession()
    yield
    await app["client"].close()


app = web.Application()
app.cleanup_ctx.append(client_ctx)
app.add_routes([web.get("/hello", hello), web.route("*", "/headers", headers),
                web.route("*", "/call", call), web.get("/call-after", call_after),
                web.post("/test", w3c)])

if __name__ == "__main__":
    loop = None
    if os.environ.get("EVENT_LOOP") == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, loop=loop)
