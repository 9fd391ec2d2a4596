from django.db import migrations, models


def facts_to_column(apps, schema_editor):
    Host = apps.get_model("core", "Host")
    for host in Host.objects.all().iterator():
        facts = dict(host.facts or {})
        host.latency_endpoint = str(facts.pop("latency_endpoint", "") or "")[:300]
        host.facts = facts
        host.save(update_fields=["facts", "latency_endpoint"])


def column_to_facts(apps, schema_editor):
    Host = apps.get_model("core", "Host")
    for host in Host.objects.exclude(latency_endpoint="").iterator():
        host.facts = {**(host.facts or {}), "latency_endpoint": host.latency_endpoint}
        host.save(update_fields=["facts"])


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0011_h5_host_board_bios'),
    ]

    operations = [
        migrations.AddField(
            model_name='host',
            name='latency_endpoint',
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.RunPython(facts_to_column, column_to_facts),
    ]
