"""The RQ worker class AutoSeq runs (kept under this name; it lives in autoseq.queue)."""

from __future__ import annotations

from ..queue import Worker as AutoSeqWorker

__all__ = ["AutoSeqWorker"]
