"""Django service in one module for the integration tests: stock Django + requests, no tracing
code. Serves the shared test-service protocol (test/frameworks/README.md). Run it with gunicorn:
`gunicorn django_app:application`."""
import json
import os

import django
import requests
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

NAME = os.environ.get("OTEL_SERVICE_NAME", "django")
settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, SECRET_KEY="test-only",
                   MIDDLEWARE=[], INSTALLED_APPS=[])
session = requests.Session()


def hello(_request):
    return HttpResponse(f"hello from {NAME}\n", content_type="text/plain")


def item(_request, item):
    return JsonResponse({"item": item, "service": NAME})


def headers(request):
    return JsonResponse({"traceparent": request.headers.get("traceparent", ""),
                         "tracestate": request.headers.get("tracestate", "")})


@csrf_exempt
def call(request):
    body = request.body if request.method != "GET" else None
    r = session.request(request.method, request.GET["url"], data=body)
    return HttpResponse(f"{NAME} -> {r.text}", status=r.status_code, content_type="text/plain")


@csrf_exempt
def w3c(request):
    for action in json.loads(request.body):
        try:
            session.post(action["url"], json=action["arguments"], timeout=5)
        except requests.RequestException:
            pass
    return HttpResponse("ok")


urlpatterns = [
    path("hello", hello),
    path("items/<int:item>", item),
    path("headers", headers),
    path("call", call),
    path("test", w3c),
]
django.setup()
application = get_wsgi_application()
