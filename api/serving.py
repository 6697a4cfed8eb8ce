"""The composition root of ``jianzheng serve``: ledger, witnessing and evidence store.

Everything the service is made of is built here and handed to the app explicitly:

- the :class:`~ledger.service.Ledger` (its store, sequencer and signing key),
- the log side of witnessing (:class:`ledger.witnessing.view.WitnessingView`): one
  submitter in a single process, a leader or a follower per worker process with
  ``--workers N`` (:class:`ledger.witnessing.submitter.WorkerWitnessing`),
- the evidence store (:mod:`storage.service`), with the upload slots of ``serve``'s limits.

The single-process path (``api/cli.py``) and each worker process (``api/workers.py``) both
call :func:`serving_app`; nothing else attaches one part to another.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from api import alerting, cli_witness, limits
from api.app import create_app
from api.publishing import BucketTiles, NotAPublishBucket, open_publisher
from ledger.service import Ledger
from storage.s3 import S3Config
from storage.service import open_evidence_store


def open_serving_ledger(args: argparse.Namespace) -> Ledger:
    """The ledger as ``serve`` opens it (``--max-delay`` is in milliseconds)."""
    return Ledger.open(
        args.data,
        args.db,
        args.origin,
        log_key=args.log_key,
        max_batch=args.max_batch,
        max_delay=args.max_delay / 1000,
    )


def serving_app(
    ledger: Ledger, args: argparse.Namespace, *, workers: int = 1, owns_ledger: bool = False
) -> FastAPI:
    """The app ``serve`` runs over ``ledger``, with witnessing started as ``args`` say.

    The app's lifespan stops the witnessing threads when the server shuts down (and closes
    the ledger too when ``owns_ledger``: a worker process opened its own).
    """
    serve_limits = limits.from_args(args)
    witnessing = cli_witness.start_witnessing(ledger, args, workers=workers)
    objects = open_evidence_store(
        ledger.data_dir,
        ledger.store.engine,
        max_uploads=serve_limits.max_uploads,
        uploads_per_owner=serve_limits.uploads_per_token,
    )

    publisher = None
    if getattr(args, "publish_bucket", None):
        config = S3Config.from_env()
        if config is None:
            raise SystemExit("jianzheng: --publish-bucket needs JIANZHENG_S3_ENDPOINT and keys")
        try:
            # A log without witnesses publishes its own note (no view to ask each wake-up).
            view = witnessing if witnessing.policy.witnesses else None
            publisher = open_publisher(ledger, args.publish_bucket, config, view)
        except NotAPublishBucket as e:
            witnessing.close()
            objects.close()
            raise SystemExit(f"jianzheng: {e}") from None
    elif getattr(args, "log_from_bucket", False):
        raise SystemExit("jianzheng: --log-from-bucket needs --publish-bucket")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if publisher is not None:
                publisher.close()
            witnessing.close()
            if owns_ledger:
                ledger.close()

    app = create_app(
        ledger,
        rate_limit=args.rate_limit,
        auth_failure_rate=args.auth_failure_rate,
        objects=objects,
        witnessing=witnessing,
        limits=serve_limits,
        lifespan=lifespan,
        monitor_state=args.monitor_state,
        alerts=alerting.from_args(args),
    )
    if publisher is not None and getattr(args, "log_from_bucket", False):
        app.state.tile_bucket = BucketTiles(
            publisher.client, args.publish_bucket, ledger.signer.verifier
        )
    return app
