from django.contrib import admin
from django.urls import path

import serverpush.inspector

from . import feature_views, list_views, views

urlpatterns = [
    path("", views.index, name="index"),
    path("increment/", views.increment, name="increment"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("rename/", views.rename, name="rename"),
    path("hello/", views.hello, name="hello"),
    path("hello/fields/", views.hello_fields, name="hello_fields"),
    path("hello/custom/", views.hello_custom, name="hello_custom"),
    path("jquery/", views.jquery, name="jquery"),
    path("items/", list_views.items, name="items"),
    path("board/", list_views.board, name="board"),
    path("messages/", feature_views.messages, name="messages"),
    path("messages/broadcast/", feature_views.broadcast, name="broadcast"),
    path("messages/send/", feature_views.send_to_user, name="send_to_user"),
    path("watch/", feature_views.watch, name="watch"),
    path("handlers/", feature_views.handlers, name="handlers"),
    path("outage/", feature_views.outage, name="outage"),
    path("outage/push/<str:action>/", feature_views.push_server, name="push_server"),
    # The staff inspector of every push server, beside the admin (sign in as staff).
    path("admin/serverpush/", serverpush.inspector.view, name="serverpush_inspector"),
    path("admin/", admin.site.urls),
]
