"""The shared list, kept live two ways: item by item, and by the page refreshing itself."""
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render

from .models import Item


def items(request):
    if request.method == "POST":
        return change_items(request)
    return render(request, "demo/items.html", {"items": Item.objects.all()})


def items_update(request):
    # One rendering of the item's partial per change, shared by every page (vary=()).
    return [{"name": "item", "model": Item, "template": "demo/items.html#item", "vary": ()}]


def board(request):
    items = Item.objects.all()
    return render(request, "demo/board.html", {"open": [i for i in items if not i.done], "done": [i for i in items if i.done]})


def board_update(request):
    # No payload: any change to an item makes the page fetch itself and morph.
    return [{"name": "items", "model": Item, "data": None}]


def change_items(request):
    """Add (``text``), tick or untick (``toggle``) or delete (``delete``) an item."""
    post = request.POST
    if post.get("text", "").strip():
        Item.objects.create(text=post["text"].strip()[:200])
    elif "toggle" in post:
        item = Item.objects.filter(pk=_pk(post["toggle"])).first()
        if item is not None:
            item.done = not item.done
            item.save()
    elif "delete" in post:
        Item.objects.filter(pk=_pk(post["delete"])).delete()
    else:
        return HttpResponseBadRequest("post text=<a new item>, toggle=<pk> or delete=<pk>")
    return HttpResponse(status=204)


def _pk(value: str) -> int | None:
    return int(value) if value.isdigit() else None
