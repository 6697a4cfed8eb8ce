"""The checks of an evidence bundle, grouped by concern; each adds its result to a report."""
