"""Development, demo and test settings, chosen explicitly.

``console.settings`` is production unless told otherwise (DEBUG off, a real
SECRET_KEY and ALLOWED_HOSTS required). ``make demo``, ``make test`` (via
pyproject's pytest settings) and a developer's shell select this module with
``DJANGO_SETTINGS_MODULE=console.settings_dev``: DEBUG on, a development key,
loopback hosts only, text logs. Everything else still comes from the
environment, read by the one settings module.
"""

import os

if not os.environ.get("DEBUG"):  # unset or empty: development means DEBUG on
    os.environ["DEBUG"] = "1"

from console.settings import *  # noqa: F403
