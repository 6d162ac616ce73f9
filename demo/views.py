"""The demo: the original counter, a greeting per serializer form, and the seed's jQuery page."""
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.db.models import F
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

import serverpush

from .models import Counter

User = get_user_model()


def _bump_counter():
    # update() skips post_save, so tell serverpush about the write.
    Counter.objects.get_or_create(pk=1)
    Counter.objects.filter(pk=1).update(value=F("value") + 1)
    serverpush.notify(Counter.objects.filter(pk=1))


def index(request):
    _bump_counter()
    return render(request, "demo/index.html", {"counter": Counter.objects.get(pk=1)})


def index_update(request):
    return [{"name": "counter", "model": Counter, "params": {"pk": 1}, "data": {"value": "object.value"}}]


@require_POST
def increment(request):
    _bump_counter()
    return HttpResponse(status=204)


@require_POST
def logout_view(request):
    logout(request)  # serverpush revokes this session's open pages at once
    return redirect("/")


def login_view(request):
    if request.method == "POST":
        name = request.POST.get("username", "").strip()[:150] or "guest"
        user, _ = User.objects.get_or_create(username=name)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(request.GET.get("next") or "/hello/fields/")
    return render(request, "demo/login.html")


@login_required
@require_POST
def rename(request):
    request.user.username = request.POST.get("username", "").strip()[:150] or request.user.username
    request.user.save()
    return HttpResponse(status=204)


# The greeting, once per serializer form of the original README.

@login_required
def hello(request, user=None, data=None):
    if user is not None:  # called by serverpush as the view serializer
        return render(request, "demo/greeting.html", {"name": user.username})
    return render(request, "demo/hello.html", {"form": "view"})


def hello_update(request):
    return [{"name": "reload", "model": User, "params": {"pk": request.user.pk}, "serializer": "hello"}]


@login_required
def hello_fields(request):
    return render(request, "demo/hello.html", {"form": "fields"})


def hello_fields_update(request):
    return [{"name": "username_change", "model": User, "params": {"pk": request.user.pk}, "data": {"username": "object.username"}}]


@login_required
def hello_custom(request):
    return render(request, "demo/hello.html", {"form": "custom"})


def hello_custom_update(request):
    return [{"name": "greeting", "model": User, "params": {"pk": request.user.pk}, "serializer": greeting_serializer}]


def greeting_serializer(request, user, data):
    return "Hey, %s!" % user.username


# The original README's jQuery handlers, as written there.

@login_required
def jquery(request):
    return render(request, "demo/jquery.html")


def jquery_update(request):
    return hello_fields_update(request) + hello_update(request)
