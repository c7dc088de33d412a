"""The web console: Django + Channels served by Daphne, with a Celery worker.

Importing the package creates the Celery app so that ``@shared_task`` functions
bind to it in every process (web, worker, manage.py).
"""

from webconsole.celery import app as celery_app

__all__ = ("celery_app",)
