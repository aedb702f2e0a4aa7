"""On MySQL/MariaDB, compare external ids and city names byte for byte, as SQLite
does: the default utf8mb4_unicode_ci would make "ab" and "AB" (or "Shanghai" and
"shanghai") the same key in the unique indexes while the importer tells them apart."""

from django.db import migrations

COLUMNS = (
    ("listings_listing", "external_id", 64),
    ("listings_listinggroup", "city", 32),
)


def to_binary(apps, schema_editor):
    if schema_editor.connection.vendor != "mysql":
        return
    for table, column, length in COLUMNS:
        schema_editor.execute(
            f"ALTER TABLE {table} MODIFY {column} varchar({length}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
        )


def to_default(apps, schema_editor):
    if schema_editor.connection.vendor != "mysql":
        return
    for table, column, length in COLUMNS:
        schema_editor.execute(f"ALTER TABLE {table} MODIFY {column} varchar({length}) NOT NULL")


class Migration(migrations.Migration):
    dependencies = [("listings", "0001_initial")]

    atomic = False
    operations = [migrations.RunPython(to_binary, to_default, atomic=False, elidable=False)]
