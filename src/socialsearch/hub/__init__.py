"""The matching hub: no pseudonymisation secret; it searches, drafts and keeps the ledger.

* :mod:`.search` — the weekly search rule over pseudonymised frames (``docs/search.md``);
* :mod:`.drafts` — draft documents and the caseworker's page per municipality;
* :mod:`.pipeline` — ``run``: the week end to end, from the hub extract to drafts and ledger.
"""
