"""Search backends, one module each, registered in rag.index.backend.BACKENDS."""
