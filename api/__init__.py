"""HTTP layer: FastAPI routes over the `rag` library, and the chat page."""
