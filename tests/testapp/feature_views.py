"""Pages without update functions, made live by the token and watch tags."""
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

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


# Declarative bindings (live.js): a list rendered from a template partial and a
# watched filter; a page that refreshes itself.

def live_notes(request):
    notes = Note.objects.order_by("pk")
    return render(request, "testapp/live_notes.html", {"notes": notes, "ranked": notes.filter(rank__gte=10)})


def live_notes_update(request):
    return [{"name": "note_item", "model": Note, "template": "testapp/live_notes.html#note", "vary": ()}]


def live_board(request):
    return render(request, "testapp/live_board.html", {"notes": Note.objects.order_by("pk")})


def live_board_update(request):
    return [{"name": "notes", "model": Note, "data": None}]


@require_POST
def live_add(request):
    with transaction.atomic():  # one request, many changes: the pages refresh once
        for title in request.POST.getlist("title"):
            Note.objects.create(title=title)
    return HttpResponse(status=204)
