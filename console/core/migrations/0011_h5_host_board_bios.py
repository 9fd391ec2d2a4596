from django.db import migrations, models

COLUMNS = {"board_name": 200, "bios_version": 100}


def facts_to_columns(apps, schema_editor):
    Host = apps.get_model("core", "Host")
    for host in Host.objects.all().iterator():
        facts = dict(host.facts or {})
        for column, limit in COLUMNS.items():
            setattr(host, column, str(facts.pop(column, "") or "")[:limit])
        host.facts = facts
        host.save(update_fields=["facts", *COLUMNS])


def columns_to_facts(apps, schema_editor):
    Host = apps.get_model("core", "Host")
    for host in Host.objects.all().iterator():
        facts = dict(host.facts or {})
        facts.update({c: getattr(host, c) for c in COLUMNS if getattr(host, c)})
        host.facts = facts
        host.save(update_fields=["facts"])


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0010_h5_gpu_link_by_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='host',
            name='bios_version',
            field=models.CharField(blank=True, help_text='DMI BIOS version', max_length=100),
        ),
        migrations.AddField(
            model_name='host',
            name='board_name',
            field=models.CharField(blank=True, help_text='DMI board name', max_length=200),
        ),
        migrations.RunPython(facts_to_columns, columns_to_facts),
    ]
