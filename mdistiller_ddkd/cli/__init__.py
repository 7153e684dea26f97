"""Command-line entry points (``tools/*.py`` and the ``ddkd-*`` console scripts call these)."""
