"""HTTP API (FastAPI) and the jianzheng command line."""
