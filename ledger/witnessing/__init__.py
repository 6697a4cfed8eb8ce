"""The log side of witnessing: gathering cosignatures and RFC 3161 tokens for the log.

- :mod:`.submitter`: submits checkpoints to witnesses and asks the TSA for tokens;
- :mod:`.records`: the ledger's tables for cosignatures and tokens;
- :mod:`.view`: what the ledger's readers (receipts, routes, bundles) need of it;
- :mod:`.timestamper`: what it needs of a time-stamping authority (``witness/tsa.py``).

The witness service itself, the monitor and the TSA live in ``witness/``.
"""
