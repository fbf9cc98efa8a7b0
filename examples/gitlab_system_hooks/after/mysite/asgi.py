import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup(set_prefix=False)

from hookway.asgi_handler import HookwayASGIHandler  # noqa: E402
from hookway.lifespan import LifespanApp  # noqa: E402
from hookway.runtime import shutdown, startup  # noqa: E402

application = LifespanApp(HookwayASGIHandler(), startup=startup, shutdown=shutdown)
