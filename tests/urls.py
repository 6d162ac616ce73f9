from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("t/hello/", views.hello),
    path("t/greet/", views.greet),
    path("t/hello-fields/", views.hello_fields),
    path("t/hello-custom/", views.hello_custom),
    path("t/note/<int:pk>/", views.note),
    path("t/note-cbv/<int:pk>/", views.NoteDetail.as_view()),
    path("t/per-user/<int:pk>/", views.per_user),
    path("t/notes-in/<str:pks>/", views.notes_in),
    path("t/my-notes/", views.my_notes),
    path("t/titled/<str:word>/", views.titled),
    path("t/broken/", views.broken),
    path("t/bad-spec/", views.bad_spec),
    path("t/bad-serializer/<int:pk>/", views.bad_serializer),
    path("t/registered/", views.registered),
    path("t/shown/<str:pks>/", views.shown),
    path("t/shown-all/", views.shown_all),
    path("t/plain/", views.plain),
    path("t/gated/<int:pk>/", views.gated),
    path("t/picky/<int:pk>/", views.picky),
    path("t/logout/", views.logout_view),
    path("t/change-password/", views.change_password),
    path("t/", include("tests.testapp.feature_urls")),
    path("", include("demo.urls")),
]
