"""The append-only event ledger: records, tiles, sequencer, checkpoints, receipts, audit."""
