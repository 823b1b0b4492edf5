"""``INSTALLED_APPS = [..., "resto_fast"]`` registers the system checks at start-up."""

from __future__ import annotations

from django.apps import AppConfig


class RestoFastConfig(AppConfig):
    name = "resto_fast"
    verbose_name = "resto_fast replicated storage"

    def ready(self) -> None:
        from . import checks  # noqa: F401  - registers the checks
