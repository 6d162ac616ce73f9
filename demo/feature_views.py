"""Demo pages for direct messages, watched objects and client-to-server handlers."""
from django.contrib.auth import get_user_model
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

import serverpush

from .models import Counter, Item

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
    return render(request, "demo/watch.html", {"counter": counter, "items": Item.objects.all()})


def handlers(request):
    return render(request, "demo/handlers.html")
