from typing import Any

from django.db import models
from django.db.models.signals import post_delete
from django.dispatch import receiver


class Document(models.Model):
    title = models.CharField(max_length=200)
    # No storage= argument: the field uses STORAGES["default"], HybridStorage.
    file = models.FileField(upload_to="documents/%Y/%m/")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-uploaded_at", "-id")

    def __str__(self) -> str:
        return self.title


@receiver(post_delete, sender=Document)
def delete_file(sender: type[Document], instance: Document, **kwargs: Any) -> None:
    """Django leaves a deleted row's file behind; this deletes it, locally and on every host."""
    instance.file.delete(save=False)
