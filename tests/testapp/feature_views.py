"""Pages without update functions, made live by the token and watch tags."""
from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404, render

from .models import Note


def inbox(request):
    """Lives by {% serverpush_token %}: it receives direct messages only."""
    return render(request, "testapp/inbox.html", {"title": "inbox"})


def quiet(request):
    """No update function, no token tag: live only if SERVERPUSH_MESSAGES is on."""
    return render(request, "testapp/page.html", {"title": "quiet"})


def watch(request, kind):
    pk = request.GET.get("pk")
    targets = {
        "note": lambda: get_object_or_404(Note, pk=pk),
        "ranked": lambda: Note.objects.filter(rank__gte=10),
        "alices": lambda: Note.objects.filter(owner__username="alice"),
        "model": lambda: "testapp.Note",
        "me": lambda: request.user,
        "users": lambda: get_user_model().objects.all(),
    }
    return render(request, "testapp/watch.html", {"target": targets[kind](), "fields": request.GET.get("fields")})


def watch_late(request):
    return render(request, "testapp/watch_late.html", {"target": Note.objects.first()})
