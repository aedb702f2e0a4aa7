import django.db.models.deletion
from django.db import migrations, models

DEVICE_KINDS = ("idfa", "caid", "imei", "oaid", "android_id")


def keys_backfill(apps, schema_editor):
    PendingEvent = apps.get_model("attribution", "PendingEvent")
    PendingEventKey = apps.get_model("attribution", "PendingEventKey")
    rows = []
    for event in PendingEvent.objects.filter(status="pending").iterator():
        keys = event.device_keys or {}
        flat = dict.fromkeys(f"{kind}:{value}" for kind in DEVICE_KINDS for value in keys.get(kind, []))
        rows += [PendingEventKey(event_id=event.pk, app_id=event.app_id, key=key) for key in flat]
    PendingEventKey.objects.bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("attribution", "0002_conversion_event"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="pendingevent",
            index=models.Index(fields=["app_id", "user_id"], name="attribution_app_id_d5bc14_idx"),
        ),
        migrations.CreateModel(
            name="PendingEventKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("app_id", models.CharField(max_length=128)),
                ("key", models.CharField(max_length=80)),
                (
                    "event",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="keys", to="attribution.pendingevent"
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["app_id", "key"], name="attribution_app_id_a20c5a_idx")],
                "constraints": [models.UniqueConstraint(fields=("event", "key"), name="att_pendingkey_unique")],
            },
        ),
        migrations.RunPython(keys_backfill, migrations.RunPython.noop),
    ]
