"""The standalone Hookway server: its Django settings and URLconf, one user of the
``hookway`` app among others (a host project that adds the app is another)."""
