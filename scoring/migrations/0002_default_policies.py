from django.db import migrations

# The first policy of each segment. Risk managers replace it with new versions; this one stays for the record.
DEFAULTS = {
    "b2b": {"accept_max_pd": 0.03, "guarantee_max_pd": 0.08, "limit_revenue_share": 0.1,
            "knockouts": {"open_insolvency_proceeding": True, "sanctioned_naf_codes": [], "max_amount": 1000000}},
    "b2c": {"accept_max_pd": 0.04, "guarantee_max_pd": 0.10, "limit_revenue_share": 0.0,
            "knockouts": {"open_insolvency_proceeding": True, "sanctioned_naf_codes": [], "max_amount": 75000}},
}


def create(apps, schema_editor):
    PolicyVersion = apps.get_model("scoring", "PolicyVersion")
    for segment, values in DEFAULTS.items():
        if not PolicyVersion.objects.filter(segment=segment).exists():
            PolicyVersion.objects.create(segment=segment, version=1, is_current=True, **values)


class Migration(migrations.Migration):
    dependencies = [("scoring", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
