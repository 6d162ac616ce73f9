"""An update function that lives away from its view, registered explicitly."""
import serverpush

from . import views
from .models import Note


@serverpush.register(views.registered)
def registered_notes(request):
    return [{"name": "registered", "model": Note, "data": {"title": "object.title"}}]
