from django.apps import AppConfig


class TestappConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"

    def ready(self):
        from . import updates  # noqa: F401 - registers update functions
