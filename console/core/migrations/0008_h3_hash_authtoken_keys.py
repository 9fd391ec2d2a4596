"""Existing DRF authtoken keys become hashed personal API tokens, and the
plaintext table is dropped.

Each key keeps working (same secret, now stored as its SHA-256) until
COUPLER_API_TOKEN_DAYS after this migration, so integrations have that long to
move to a named token. rest_framework.authtoken is no longer installed; its
table and migration records go with the plaintext keys. Nothing to undo: the
secrets are not recoverable from their hashes.
"""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

from console.core.models.tokens import hash_token

TABLE = "authtoken_token"
VISIBLE = 8  # of a 40-hex-digit DRF key: the rest keeps 128 bits secret


def hash_authtoken_keys(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if TABLE not in connection.introspection.table_names(cursor):
            return
        cursor.execute(f'SELECT "key", "user_id", "created" FROM {TABLE}')  # noqa: S608
        rows = cursor.fetchall()
    ApiToken = apps.get_model("core", "ApiToken")
    Event = apps.get_model("core", "Event")
    now = timezone.now()
    expires_at = now + timedelta(days=settings.COUPLER_API_TOKEN_DAYS)
    for key, user_id, created in rows:
        token = ApiToken.objects.create(
            user_id=user_id, name="API token (before hashing)", prefix=key[:VISIBLE],
            key_hash=hash_token(key), created_at=created or now, expires_at=expires_at)
        Event.objects.create(token=token, kind="api_token_created", actor="migration",
                             reason="DRF authtoken key hashed at rest",
                             data={"prefix": token.prefix,
                                   "expires_at": expires_at.isoformat()})
    schema_editor.execute(f"DROP TABLE {TABLE}")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0007_h3_api_tokens"),
    ]

    operations = [
        migrations.RunPython(hash_authtoken_keys, migrations.RunPython.noop),
    ]
