from django.db import migrations, models
from django.db.models import Max, OuterRef, Subquery


def control_known_at_fill(apps, schema_editor):
    """The latest change the helpdesk made or checked itself (not a handover webhook)."""
    Conversation = apps.get_model("agents", "Conversation")
    ControlTransition = apps.get_model("agents", "ControlTransition")
    latest = (
        ControlTransition.objects.filter(conversation=OuterRef("pk"))
        .exclude(cause="webhook")
        .values("conversation")
        .annotate(latest=Max("at"))
        .values("latest")
    )
    Conversation.objects.filter(
        pk__in=ControlTransition.objects.exclude(cause="webhook").values("conversation")
    ).update(control_known_at=Subquery(latest))


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0022_ticket_unclosed_order"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="control_known_at",
            field=models.BigIntegerField(
                default=0,
                help_text="When (epoch ms) the helpdesk last learned who owns the thread other than from a handover webhook (its own pass, take, release or request, a check with Meta): a handover webhook older than that is checked with Meta first.",
            ),
        ),
        migrations.RunPython(control_known_at_fill, migrations.RunPython.noop),
    ]
