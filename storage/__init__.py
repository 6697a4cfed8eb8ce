"""Evidence storage: content-addressed objects (``sha256/<hex>``) under retention.

``base`` is the :class:`~storage.base.ObjectStore` interface, ``fs`` and ``s3`` its
filesystem and MinIO backends, ``service`` the evidence store the API uses (hashing,
metadata in the ledger database, retention, chunk proofs), ``pipe`` the bounded hand-off
of a streamed request body to an upload thread, ``archiving`` the lengthening of an
archived project's locks to its archive's retention date.
"""
