"""``manage.py create_console_admin``: the first console login (``admin``), password from the environment.

``make up`` runs it with ``AIPBX_CONSOLE_ADMIN_PASSWORD`` from ``.env`` (random per install). An
existing user keeps the password it has: change it in the console, not here.
"""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from webconsole.calls.models import Operator, Role


class Command(BaseCommand):
    help = "Create the console's admin user (if missing) with the password in AIPBX_CONSOLE_ADMIN_PASSWORD."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options) -> None:
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            self.stdout.write(f"console user {username!r} exists")
            return
        password = os.environ.get("AIPBX_CONSOLE_ADMIN_PASSWORD", "")
        if len(password) < 12:
            raise CommandError("AIPBX_CONSOLE_ADMIN_PASSWORD must hold a password of 12 characters or more")
        user = users.objects.create_superuser(username=username, password=password, email="")
        Operator.objects.create(user=user, role=Role.ADMIN)
        self.stdout.write(f"created console admin {username!r}")
