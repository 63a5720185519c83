"""A service team's Django project, as the client suite runs it: the database from DATABASE_URL.

The platform sets each login's search_path to the service's schemas, so Django's tables (and
django_migrations) land there with no setting; DJANGO_SEARCH_PATH shows the explicit form
(OPTIONS "options": "-c search_path=…"), which schema-isolated services may prefer.
"""
import os
from urllib.parse import unquote, urlsplit, parse_qs

_url = urlsplit(os.environ["DATABASE_URL"])
_options = {"sslmode": parse_qs(_url.query).get("sslmode", ["prefer"])[0]}
if os.environ.get("DJANGO_SEARCH_PATH"):
    _options["options"] = f"-c search_path={os.environ['DJANGO_SEARCH_PATH']}"
# Through a transaction-mode PgBouncer (docs/pooling.md): no statements prepared by name, and no
# server-side cursors, which live in a session the pooler does not keep.
_pooled = os.environ.get("DB_POOL_MODE") == "transaction"
if _pooled:
    _options["prepare_threshold"] = None

SECRET_KEY = "client-suite-only"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "clientsite.notes"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname,
        "PORT": _url.port,
        "OPTIONS": _options,
        "DISABLE_SERVER_SIDE_CURSORS": _pooled,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The suite creates users; the default hasher's 1,000,000 rounds would only cost time here.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
