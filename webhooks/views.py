"""The Messenger webhook endpoint: verify, store, answer. No processing here."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webhooks import deletion, services


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


@csrf_exempt  # Meta calls it, signed with the app secret (checked below)
@require_POST
def data_deletion_callback(request: HttpRequest) -> HttpResponse:
    """Meta's Data Deletion Request Callback: check `signed_request`, record the
    request (its erase runs in a task) and answer with its status URL and code."""
    try:
        user_id = deletion.signed_request_user_id(
            signed_request=request.POST.get("signed_request", "")
        )
    except deletion.BadSignedRequest as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    record = deletion.data_deletion_request_receive(user_id=user_id)
    code = record.confirmation_code
    url = request.build_absolute_uri(reverse("messenger-data-deletion-status", args=[code]))
    return JsonResponse({"url": url, "confirmation_code": code})


@require_GET
def data_deletion_status(request: HttpRequest, code: str) -> HttpResponse:
    """What the person sees at the URL Meta gives them: their request's status, in
    words, and nothing about them."""
    record = deletion.data_deletion_request_get(code=code)
    if record is None:
        return HttpResponse(
            "No data deletion request has this confirmation code.",
            status=404,
            content_type="text/plain; charset=utf-8",
        )
    if record.status == record.Status.DONE:
        text = (
            f"Your data deletion request {code} is complete: the conversations and "
            "messages this helpdesk stored about you have been deleted."
        )
    else:
        text = (
            f"Your data deletion request {code} is pending. It is carried out within "
            "minutes, or, if you are talking with our support team right now, once that "
            "conversation has ended."
        )
    return HttpResponse(text, content_type="text/plain; charset=utf-8")
