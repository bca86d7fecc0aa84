"""The Messenger webhook endpoint: verify, store, answer. No processing here."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from webhooks import services


@csrf_exempt
@require_http_methods(["GET", "POST"])
def messenger_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _verify(request)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return HttpResponse("bad Content-Length", status=400, content_type="text/plain")
    if length > settings.WEBHOOK_MAX_BODY_BYTES:
        return HttpResponse("payload too large", status=413, content_type="text/plain")
    try:
        body = request.body
    except RequestDataTooBig:
        return HttpResponse("payload too large", status=413, content_type="text/plain")
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return HttpResponse("payload too large", status=413, content_type="text/plain")
    if not services.signature_valid(body=body, header=request.headers.get("X-Hub-Signature-256")):
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    try:
        services.delivery_receive(body=body)
    except services.MalformedDelivery as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return HttpResponse("EVENT_RECEIVED", content_type="text/plain")


def _verify(request: HttpRequest) -> HttpResponse:
    mode = request.GET.get("hub.mode")
    token = request.GET.get("hub.verify_token", "")
    challenge = request.GET.get("hub.challenge", "")
    if mode == "subscribe" and constant_time_compare(token, settings.MESSENGER_VERIFY_TOKEN):
        return HttpResponse(challenge, content_type="text/plain")
    return HttpResponse("verification failed", status=403, content_type="text/plain")
