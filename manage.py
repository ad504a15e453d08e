#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

from django.core.management import execute_from_command_line

from warroom import embedded


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warroom.settings")
    embedded.ensure_environment()  # the embedded PostgreSQL/Redis when no URLs are set
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
