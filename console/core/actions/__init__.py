"""State changes: do_<verb>_<noun>() functions, one transaction each.

Views, API viewsets and Celery tasks call these and never write models
directly; side effects (Celery tasks) are sent with transaction.on_commit.
"""
