"""Pages of the direct-message, watch and handler tests."""
from django.urls import path

from . import feature_views as views

urlpatterns = [
    path("inbox/", views.inbox),
    path("quiet/", views.quiet),
    path("watch/<str:kind>/", views.watch),
    path("watch-late/", views.watch_late),
    path("live/notes/", views.live_notes),
    path("live/board/", views.live_board),
    path("live/add/", views.live_add),
]
