"""Flask (WSGI) service for the integration tests: stock Flask + requests, no tracing code.
Serves the shared test-service protocol (test/frameworks/README.md). Run it with gunicorn:
`gunicorn flask_app:app`."""
import os

import requests
from flask import Flask, Response, jsonify, request

app = Flask(__name__)
NAME = os.environ.get("OTEL_SERVICE_NAME", "flask")
session = requests.Session()  # keep-alive pool, as real services use


@app.route("/hello")
def hello():
    return f"hello from {NAME}\n"


@app.route("/items/<int:item>")
def item(item):
    return jsonify(item=item, service=NAME)


@app.route("/headers", methods=["GET", "POST", "PUT"])
def headers():
    return jsonify(traceparent=",".join(request.headers.getlist("traceparent")),
                   tracestate=",".join(request.headers.getlist("tracestate")))


@app.route("/call", methods=["GET", "POST", "PUT"])
def call():
    body = request.get_data() if request.method != "GET" else None
    r = session.request(request.method, request.args["url"], data=body)
    return Response(f"{NAME} -> {r.text}", status=r.status_code, mimetype="text/plain")


@app.route("/test", methods=["POST"])
def w3c():
    for action in request.get_json():
        try:
            session.post(action["url"], json=action["arguments"], timeout=5)
        except requests.RequestException:
            pass
    return "ok"
