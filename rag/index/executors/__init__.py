"""Executors of the build's embedding stage (the seam in rag/index/build.py).

    executor = make_executor("ray", config, ray=RayConfig(address="10.0.0.1:6379"))
    build_index(corpus, out, config, executor=executor)

- "local" (`rag.index.build.LocalExecutor`): chunks and embeds in this process.
- "ray" (`rag.index.executors.ray_executor.RayExecutor`): a Ray Data pipeline, on a
  cluster or on a local Ray started for the build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.errors import RagError

if TYPE_CHECKING:
    from rag.config import PipelineConfig
    from rag.index.build import Executor
    from rag.index.executors.ray_executor import RayConfig

EXECUTORS = ("local", "ray")


def make_executor(
    name: str,
    config: PipelineConfig,
    *,
    ray: RayConfig | None = None,
    progress: bool | None = None,
) -> Executor:
    """The executor called `name`; Ray is imported only for "ray"."""
    if name == "local":
        from rag.embedder import Embedder
        from rag.index.build import LocalExecutor

        return LocalExecutor(Embedder(config.embedder))
    if name == "ray":
        from rag.index.executors.ray_executor import RayExecutor

        return RayExecutor(config.embedder, ray, progress=progress)
    raise RagError(f"unknown executor {name!r}; valid choices: {', '.join(EXECUTORS)}")
