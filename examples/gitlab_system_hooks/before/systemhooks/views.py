import hmac
import json
import os

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from systemhooks.work import handle_system_hook


@csrf_exempt
@require_POST
async def system_hook(request):
    """GitLab system hooks (Admin > System hooks): the event name is in the body."""
    token = request.headers.get("X-Gitlab-Token", "")
    if not hmac.compare_digest(token, os.environ["GITLAB_TOKEN"]):
        return JsonResponse({"error": "bad token"}, status=401)
    try:
        payload = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "not JSON"}, status=400)
    event_name = payload.get("event_name") if isinstance(payload, dict) else None
    if not event_name:
        return JsonResponse({"error": "event_name is missing"}, status=400)
    await handle_system_hook(event_name, payload)  # GitLab gives up after 10 s
    return HttpResponse(status=200)
