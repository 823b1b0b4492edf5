"""Settings for the resto_fast example: uploads stored on HybridStorage (or, with
EXAMPLE_QUEUE=tasks, on AsyncStorage replicating through Django's Tasks framework).

Every uploaded file is written under MEDIA_ROOT (the master copy), then PUT
to every media server in RESTO_MEDIA_HOSTS at once.  The hosts come from the
environment, space-separated:

    RESTO_MEDIA_HOSTS="127.0.0.1:8001 127.0.0.1:8002" python manage.py runserver

For development only: DEBUG is on and the secret key is public.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-resto-fast-example-key")
DEBUG = True
ALLOWED_HOSTS: list[str] = []

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "resto_fast",  # its system checks: `manage.py check` validates the storage
    "gallery",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "exampleproject.urls"
WSGI_APPLICATION = "exampleproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DATABASE", BASE_DIR / "db.sqlite3"),
        "OPTIONS": {"timeout": 30},  # the site and its task worker share it
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

STATIC_URL = "static/"

# The master copy of every upload.  MEDIA_URL is also the path the files get
# on each media server: a file saved as documents/a.pdf is PUT to
# http://<host>/media/documents/a.pdf.
MEDIA_ROOT = os.environ.get("EXAMPLE_MEDIA_ROOT", BASE_DIR / "media")
MEDIA_URL = "/media/"

# The media servers, "host:port" each.  None: files are only kept locally
# (and `manage.py check` warns, resto_fast.W002).
RESTO_MEDIA_HOSTS = os.environ.get("RESTO_MEDIA_HOSTS", "").replace(",", " ").split()

STORAGES = {
    "default": {
        "BACKEND": "resto_fast.storage.HybridStorage",
        # Each option falls back to its RESTO_* setting, then to its default.
        "OPTIONS": {
            "timeout": 5,  # seconds to connect, and without progress, per host
            "fatal_exceptions": True,  # an upload that misses a media server fails loudly
        },
    },
    # Setting STORAGES replaces Django's default, so the static files' one is restated.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# EXAMPLE_QUEUE=tasks: uploads are replicated in the background instead, by a task of
# Django's Tasks framework that `python manage.py db_worker` runs (its database backend,
# on this site's SQLite: no other server).  Needs `pip install -e '.[tasks]'` (Django 5.2+).
if os.environ.get("EXAMPLE_QUEUE") == "tasks":
    INSTALLED_APPS += ["django_tasks", "django_tasks_db"]
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    STORAGES["default"] = {
        "BACKEND": "resto_fast.storage.AsyncStorage",
        "OPTIONS": {"timeout": 5, "queue": "tasks"},  # retries: RESTO_RETRIES, ...
    }

# resto_fast logs each failed host at ERROR (and surprises at WARNING) on its logger.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"resto_fast": {"handlers": ["console"], "level": "INFO"}},
}
