"""Encrypt the Page access tokens already stored (TOKEN_ENCRYPTION_KEY), then mark the
column as the encrypted field. Reversible: going back decrypts them."""

from django.db import migrations

import webhooks.models
from webhooks.crypto import is_sealed, token_seal, token_unseal


def encrypt_tokens(apps, schema_editor):
    Page = apps.get_model("webhooks", "Page")
    for pk, token in Page.objects.values_list("pk", "access_token"):
        if token and not is_sealed(token):
            Page.objects.filter(pk=pk).update(access_token=token_seal(token))


def decrypt_tokens(apps, schema_editor):
    Page = apps.get_model("webhooks", "Page")
    for pk, token in Page.objects.values_list("pk", "access_token"):
        if token and is_sealed(token):
            Page.objects.filter(pk=pk).update(access_token=token_unseal(token))


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0003_delivery_progress_and_failed_events"),
    ]

    operations = [
        # Before the field changes: in this state the column is a plain TextField, which
        # writes exactly what it is given (both ways).
        migrations.RunPython(encrypt_tokens, decrypt_tokens, elidable=False),
        migrations.AlterField(
            model_name="page",
            name="access_token",
            field=webhooks.models.EncryptedTokenField(),
        ),
    ]
