"""RQ entry points (top floor, beside ``views/``): thin functions that load ids and call a service.

Queues, enqueueing, job state and heartbeats live on the ground floor, in :mod:`autoseq.queue`
(the only module that imports RQ).
"""
