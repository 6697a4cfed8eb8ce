"""Witnessing and trusted time: the C2SP tlog-witness service and its state, the log-side
submitter of checkpoints, the RFC 3161 timestamp authority, and the monitor."""
