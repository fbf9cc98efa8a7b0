"""``python -m bench.peers.ingest_site.manage migrate --run-syncdb`` creates the table."""

import os
import sys

from django.core.management import execute_from_command_line

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peers.ingest_site.settings")
    execute_from_command_line(sys.argv)
