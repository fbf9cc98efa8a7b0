import os

from django.core.asgi import get_asgi_application

import hookway.asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
# Hookway in front of the project: its fast ingest path for /hooks/…, and the lifespan
# that starts and stops the dispatcher; everything else reaches Django unchanged.
application = hookway.asgi.wrap(get_asgi_application())
