"""The optimizer's search: the loop (``loop``), candidate recipes (``mutations``), the LLM proposer and the
held-out verdict; it knows nothing of the database (``optimize/engine.py`` runs it as a job)."""
