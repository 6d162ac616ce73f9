from django.conf import settings
from django.db import models


class Note(models.Model):
    title = models.CharField(max_length=200)
    rank = models.IntegerField(default=0)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title
