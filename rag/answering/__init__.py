"""The answerer's parts: data access (view), sentence features, scorers, and speaker and
quote resolution. `rag.answerer.extract_answer` is the entry point."""
