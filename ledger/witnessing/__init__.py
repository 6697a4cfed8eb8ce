"""The log side of witnessing: what the ledger asks of it (:mod:`ledger.witnessing.view`)."""
