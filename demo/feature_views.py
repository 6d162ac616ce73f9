"""Demo pages for direct messages, watched objects, client-to-server handlers and outages."""
from django.contrib.auth import get_user_model
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

import serverpush

from . import pushserver
from .list_views import items_update
from .models import Counter, Item
from .views import index_update

User = get_user_model()


def messages(request):
    return render(request, "demo/messages.html", {"users": User.objects.order_by("username")})


def _message(request):
    return {"text": request.POST.get("text", "").strip()[:500], "from": request.user.username or "anonymous", "at": timezone.now()}


@require_POST
def broadcast(request):
    serverpush.notify_all(_message(request))
    return HttpResponse(status=204)


@require_POST
def send_to_user(request):
    user = User.objects.filter(username=request.POST.get("username", "")).first()
    if user is None:
        return HttpResponseBadRequest("no such user")
    serverpush.notify(_message(request), users=[user])
    return HttpResponse(status=204)


def watch(request):
    counter, _ = Counter.objects.get_or_create(pk=1)
    return render(request, "demo/watch.html", {"counter": counter, "open": Item.objects.filter(done=False)})


def handlers(request):
    return render(request, "demo/handlers.html")


def outage(request):
    counter, _ = Counter.objects.get_or_create(pk=1)
    control = pushserver.current
    return render(request, "demo/outage.html", {"counter": counter, "items": Item.objects.all(), "control": control})


def outage_update(request):
    return index_update(request) + items_update(request)


@require_POST
def push_server(request, action):
    """Stop or start the push server (only under ``rundemo``, which owns its process)."""
    control = pushserver.current
    if action not in ("stop", "start"):
        return HttpResponseBadRequest(f"{action!r}: post to /outage/push/stop/ or /outage/push/start/")
    if control is None:
        return HttpResponse("the push server can be stopped from here only under ./manage.py rundemo", status=409)
    if action == "stop":
        control.stop()
    else:
        control.start()
    return HttpResponse(status=204)
