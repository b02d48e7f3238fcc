"""The one way a view turns an id into an object: inside a queryset already scoped to the user or API client.

Each app's selectors build those querysets (``dossiers_for_user``, ``dossiers_for_client``,
``bulk_jobs_for_user``, ``webhook_endpoints_for_client``…); ``get_or_404`` looks up
inside one, so someone else's object and a malformed id both answer 404.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404

M = TypeVar("M", bound=Model)


def get_or_404(queryset: QuerySet[M], pk: Any) -> M:
    try:
        return queryset.get(pk=pk)
    except (ObjectDoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404(f"No such {queryset.model._meta.verbose_name}.") from None
