from django.db import models


class Counter(models.Model):
    """The original demo's counter: page views plus button clicks."""

    value = models.IntegerField(default=0)


class Item(models.Model):
    """The shared list of the List, Page refresh, Watch and Outage pages."""

    text = models.CharField(max_length=200)
    done = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "pk"]
