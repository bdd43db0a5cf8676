"""What the tests and the benchmarks share: one copy of each, imported, never pasted.

- :mod:`.factories` — rows written directly: HubSpot users and their mailboxes, sequences,
  rotations, enrollments.
- :mod:`.sandbox` — the HubSpot sandbox: its admin API, the app's settings pointed at it.
- :mod:`.oauth` — the OAuth dance against the sandbox (with or without AutoSeq's pages), and a
  workspace connected with the tokens it gives.

The conftest files build their fixtures from these (fixture names unchanged); ``bench/`` imports
them too (``sys.path`` holds the repository root there). Nothing here is a fixture itself, and
nothing here imports a conftest.
"""
