"""Pure offline verification: RFC 6962 Merkle math, signed notes, checkpoints, receipts."""
