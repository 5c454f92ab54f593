"""The engine's operations, grouped by concern; ``engine.api.Engine`` holds one of each.

===========  ====================================================================
module       ``Engine`` attribute: what it does
===========  ====================================================================
users        ``users``: register users, their roles and e-mail addresses
processes    ``processes``: load process files as versions, migrate open leads
leads        ``leads``: one lead's life, from ``add`` to ``win``/``close``/``reopen``
clients      ``clients``: a client with its leads; the one place clients are written
search       ``search``: clients and leads by name, company, e-mail, phone, tax id, id
tasks        ``tasks``: the open tasks a person is expected to do
bulk         ``bulk``: ``advance``/``win``/``complete_task`` for many leads at once
boards       ``boards``: the board and the stand-up agenda
recovery     ``recovery``: reviews, reports, recall, stalled leads, rotation, revisits
outbox       ``outbox``: send the due mail, list it, retry it
reports      ``reports``: refusals, funnel, cycle, salespeople, forecast
intake       ``intake``: CSV import and export, the web form's lead
tokens       ``tokens``: the HTTP intake's API tokens
admin        ``admin``: check the database, back it up, restore a backup into an empty one
===========  ====================================================================

``context`` holds what they share (the transaction, the acting user as a ``policy.Actor``, the spec caches,
whose leads a view shows, a lead's read-apply-write cycle). Every permission a service checks is a rule of
``engine.policy``; no service tests a role itself. A service calls another one's operations through the facade
(``self.engine.leads.reopen(...)``) and writes only its own tables; where one concern records something in
another's table it calls a function of the owning module (``recovery.record_closure``).
"""
