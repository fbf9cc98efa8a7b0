"""The standalone server's settings under their old name, for deployments whose
DJANGO_SETTINGS_MODULE still says ``hookway.settings``. They live in
hookway.standalone.settings; a project adding the ``hookway`` app uses neither."""

from hookway.standalone.settings import *  # noqa: F403
