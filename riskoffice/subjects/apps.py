from django.apps import AppConfig


class SubjectsConfig(AppConfig):
    """Data-subject rights: access, erasure, and human review of automated decisions (GDPR Art. 15, 17, 22)."""

    name = "riskoffice.subjects"
    label = "subjects"
    verbose_name = "Data-subject rights"
