"""Portfolio re-score: every company with a scored dossier, scored again with the segment's champion.

- ``runs.py``: the services (start a run, claim / store a chunk under a lease, the sweep);
- ``compute.py``: one chunk's read → features → predict → explain, writing nothing;
- ``tasks.py``: the thin Celery tasks; ``selectors.py``: progress, figures and latest scores.
"""
