"""Pages of the test project, one per way of declaring updates."""
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.generic import DetailView

import serverpush

from .models import Note

User = get_user_model()


def page(request, title="page"):
    return render(request, "testapp/page.html", {"title": title})


# The three serializer forms of the original README, as written there.

def hello_fields(request):
    return page(request)


def hello_fields_update(request):
    return [{'name': 'username_change', 'model': User, 'params': {'pk': request.user.pk}, 'data': {'username': 'object.username'}}]


def hello_custom(request):
    return page(request)


def hello_custom_update(request):
    # 'data' parameter is optional, and it is directly passed to the serializer
    return [{'name': 'reload', 'model': User, 'params': {'pk': request.user.pk}, 'serializer': hello_update_serializer}]


def hello_update_serializer(request, user, data):
    return 'Hey, %s!' % user.username


def hello(request, user=None, data=None):
    if user is None:
        return page(request)
    return HttpResponse('Hey, %s!' % user.username)


def hello_update(request):
    return [{'name': 'reload', 'model': User, 'params': {'pk': request.user.pk}, 'serializer': 'hello'}]


def greet(request, user=None, data=None):
    if user is None:
        return page(request)
    return HttpResponse('Hey, %s!' % request.user.username)  # the seed README's body: request.user


def greet_update(request):
    return [{'name': 'reload', 'model': User, 'params': {'pk': request.user.pk}, 'serializer': 'greet'}]


# Notes: URL arguments, shared audiences, lists, deletes.

def note(request, pk):
    return page(request, get_object_or_404(Note, pk=pk).title)


def note_update(request, pk):
    return [
        {"name": "note", "model": "testapp.Note", "params": {"pk": pk}, "data": {"title": "object.title", "rank": "object.rank"}},
        {"name": "note_for_user", "model": Note, "params": {"pk": pk}, "serializer": note_for_user},
        {"name": "note_shared", "model": Note, "params": {"pk": pk}, "serializer": note_for_user, "vary": ()},
        {"name": "note_lang", "model": Note, "params": {"pk": pk}, "serializer": note_for_user, "vary": "language"},
    ]


def per_user(request, pk):
    return page(request)


def per_user_update(request, pk):
    """A field map that names the viewer: one audience (and serialization) per user."""
    return [{"name": "per_user", "model": Note, "params": {"pk": pk}, "data": {"title": "object.title", "viewer": "request.user.username"}}]


def note_for_user(request, note, data):
    return {"title": note.title, "viewer": request.user.username or "anonymous", "language": request.LANGUAGE_CODE}


def notes_in(request, pks):
    return page(request)


def notes_in_update(request, pks):
    return [{"name": "listed", "model": Note, "params": {"pk__in": [int(pk) for pk in pks.split(",")]}, "data": {"title": "object.title"}}]


def my_notes(request):
    return page(request)


def my_notes_update(request):
    return [{"name": "my_note", "model": Note, "params": {"owner": request.user}, "data": {"title": "object.title", "owner": "request.user.username"}}]


def titled(request, word):
    return page(request)


def titled_update(request, word):
    # owner__username spans a relation: decided by a query, once per entry.
    return [{"name": "titled", "model": Note, "params": {"title__icontains": word, "owner__username": "alice"}, "data": {"title": "object.title"}}]


def broken(request):
    return page(request)


def broken_update(request):
    raise RuntimeError("this update function is broken on purpose")


def bad_spec(request):
    return page(request)


def bad_spec_update(request):
    return [
        {"name": "oops", "model": "testapp.Nope"},
        {"name": "fine", "model": Note, "data": {"title": "object.title"}},
    ]


def bad_serializer(request, pk):
    return page(request)


def bad_serializer_update(request, pk):
    return [
        {"name": "boom", "model": Note, "params": {"pk": pk}, "serializer": explode},
        {"name": "not_json", "model": Note, "params": {"pk": pk}, "serializer": lambda request, obj, data: object()},
        {"name": "fine", "model": Note, "params": {"pk": pk}, "data": {"title": "object.title"}},
    ]


def explode(request, obj, data):
    raise ValueError("serializer broken on purpose")


def registered(request):
    return page(request)


def plain(request):
    return page(request)


class NoteDetail(DetailView):
    model = Note
    template_name = "testapp/page.html"

    def serverpush_update(self, request, pk):
        return [{"name": "note_cbv", "model": Note, "params": {"pk": self.kwargs["pk"]}, "data": {"title": "object.title"}}]


def site_wide(request):
    """A SERVERPUSH_GLOBALS function."""
    return [{"name": "site_note", "model": Note, "params": {"title__startswith": "site"}, "data": {"title": "object.title"}}]


# Session and account changes that must revoke live pages.

def logout_view(request):
    from django.contrib.auth import logout

    logout(request)
    return HttpResponse("bye")


def change_password(request):
    from django.contrib.auth import update_session_auth_hash

    request.user.set_password("new-password-123")
    request.user.save()
    update_session_auth_hash(request, request.user)
    return HttpResponse("changed")


# A serializer that blocks until the test opens its gate (a Note titled "open the gate").

def gated(request, pk):
    return page(request)


def gated_update(request, pk):
    return [
        {"name": "gated", "model": Note, "params": {"pk": pk}, "serializer": wait_for_gate, "vary": ()},
        {"name": "prompt", "model": Note, "params": {"pk": pk}, "data": {"title": "object.title"}},
    ]


GATE_POLL_SECONDS = 0.02


def wait_for_gate(request, note, data):
    import time

    deadline = time.monotonic() + 60
    while note.title.startswith("gate") and not Note.objects.filter(title="open the gate").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the gate")
        time.sleep(GATE_POLL_SECONDS)  # green under eventlet: other serializers keep running
    return {"title": note.title}


def picky(request, pk):
    return page(request)


def picky_update(request, pk):
    return [{"name": "picky", "model": Note, "params": {"pk": pk}, "serializer": fails_for_bob}]


def fails_for_bob(request, note, data):
    if request.user.username == "bob":
        raise PermissionError("this serializer fails for bob on purpose")
    return {"title": note.title, "for": request.user.username}


# What bench/chaos.py's tabs show: notes pinned by pk (healed after a loss), or every
# note (reloaded after a loss). The page renders what it shows, as a real page would.

def shown(request, pks):
    wanted = [int(pk) for pk in pks.split(",")]
    titles = {str(note.pk): note.title for note in Note.objects.filter(pk__in=wanted)}
    return render(request, "testapp/shown.html", {"shown": {str(pk): titles.get(str(pk)) for pk in wanted}})


def shown_update(request, pks):
    return [{"name": "shown", "model": Note, "params": {"pk__in": [int(pk) for pk in pks.split(",")]}, "data": {"title": "object.title"}}]


def shown_all(request):
    return render(request, "testapp/shown.html", {"shown": {str(note.pk): note.title for note in Note.objects.all()}})


def shown_all_update(request):
    return [{"name": "shown", "model": Note, "data": {"title": "object.title"}}]
