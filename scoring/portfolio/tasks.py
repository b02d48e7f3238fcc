from celery import shared_task

from scoring.portfolio import runs


@shared_task(name="scoring.portfolio.rescore_chunk")
def rescore_chunk(chunk_id: int) -> None:
    """Re-score one chunk of a portfolio run; safe to run twice (a chunk done or held by a live lease is left)."""
    runs.portfolio_chunk_process(chunk_id=chunk_id)


@shared_task(name="scoring.portfolio.requeue_portfolio_chunks")
def requeue_portfolio_chunks() -> None:
    """Periodic: re-enqueue chunks whose lease expired or whose message was lost; fail runs that keep failing."""
    runs.portfolio_chunks_requeue()
