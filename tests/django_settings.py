"""The smallest Django settings the storage tests need; each test overrides what it tests."""

SECRET_KEY = "resto_fast tests"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "resto_fast",
]
try:  # the Tasks framework's backport (Django 5.2); its app resets its backends on TASKS changes
    import django_tasks  # noqa: F401
except ImportError:
    pass
else:
    INSTALLED_APPS.append("django_tasks")
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
MEDIA_URL = "/media/"
MEDIA_ROOT = "/nonexistent-media-root"  # tests give each storage a temp dir
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING_CONFIG = None
