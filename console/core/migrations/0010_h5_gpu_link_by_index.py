import django.db.models.functions.comparison
from django.db import migrations, models

# GPU links by GPU index: "GPU3" labels become a_gpu/b_gpu = 3 (a NIC keeps its name in
# a_nic/b_nic), and back.


def _end(label):
    if label.startswith("GPU") and label[3:].isdigit():
        return int(label[3:]), ""
    return None, label


def split_labels(apps, schema_editor):
    GpuLink = apps.get_model("core", "GpuLink")
    for link in GpuLink.objects.all().iterator():
        link.a_gpu, link.a_nic = _end(link.a)
        link.b_gpu, link.b_nic = _end(link.b)
        link.save(update_fields=["a_gpu", "a_nic", "b_gpu", "b_nic"])


def join_labels(apps, schema_editor):
    GpuLink = apps.get_model("core", "GpuLink")
    for link in GpuLink.objects.all().iterator():
        link.a = f"GPU{link.a_gpu}" if link.a_gpu is not None else link.a_nic
        link.b = f"GPU{link.b_gpu}" if link.b_gpu is not None else link.b_nic
        link.save(update_fields=["a", "b"])


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0009_h5_job_member'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='gpulink',
            name='link_unique',
        ),
        migrations.AddField(
            model_name='gpulink',
            name='a_gpu',
            field=models.PositiveIntegerField(blank=True, help_text='GPU index', null=True),
        ),
        migrations.AddField(
            model_name='gpulink',
            name='a_nic',
            field=models.CharField(blank=True, help_text='NIC name', max_length=32),
        ),
        migrations.AddField(
            model_name='gpulink',
            name='b_gpu',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='gpulink',
            name='b_nic',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.RunPython(split_labels, join_labels),
        migrations.AlterModelOptions(
            name='gpulink',
            options={'ordering': ['host', models.OrderBy(models.F('a_gpu'), nulls_last=True), 'a_nic', models.OrderBy(models.F('b_gpu'), nulls_last=True), 'b_nic']},
        ),
        # A default for the way back (the columns come back before join_labels fills them).
        migrations.AlterField(
            model_name='gpulink',
            name='a',
            field=models.CharField(default='', help_text='GPU<i> or a NIC name', max_length=32),
        ),
        migrations.AlterField(
            model_name='gpulink',
            name='b',
            field=models.CharField(default='', max_length=32),
        ),
        migrations.RemoveField(
            model_name='gpulink',
            name='a',
        ),
        migrations.RemoveField(
            model_name='gpulink',
            name='b',
        ),
        migrations.AddConstraint(
            model_name='gpulink',
            constraint=models.UniqueConstraint(models.F('host'), django.db.models.functions.comparison.Coalesce('a_gpu', models.Value(-1)), models.F('a_nic'), django.db.models.functions.comparison.Coalesce('b_gpu', models.Value(-1)), models.F('b_nic'), name='link_unique'),
        ),
        migrations.AddConstraint(
            model_name='gpulink',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(models.Q(('a_gpu__isnull', False), ('a_nic', '')), models.Q(('a_gpu__isnull', True), models.Q(('a_nic', ''), _negated=True)), _connector='OR'), models.Q(models.Q(('b_gpu__isnull', False), ('b_nic', '')), models.Q(('b_gpu__isnull', True), models.Q(('b_nic', ''), _negated=True)), _connector='OR')), name='link_ends_gpu_or_nic'),
        ),
    ]
