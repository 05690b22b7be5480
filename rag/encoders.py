"""Encoders: the model's forward pass behind one small interface.

An encoder maps a padded batch of word-piece ids to the last hidden states; tokenizing,
pooling and normalising stay in `rag.embedder`, so every backend yields the same kind
of output from the same inputs. `make_encoder(runtime, model, ...)` is the factory.

Two backends over the same packaged weights:
- "torch": transformers' BertModel in float32, or with bfloat16 autocast. On a CPU with
  AMX tiles, bfloat16 encodes the seeds' 218 chunks 2.4x faster than float32 (0.60 s
  against 1.42 s here), and the pooled vectors keep a cosine >= 0.99997 to float32's.
  At batch 1 it is slower (6.0 ms against 4.9), so it is used for documents only.
- "onnx": the model exported to ONNX Runtime in float32 when first needed (about 1 s,
  in memory: there is no file to go stale). A short question takes 2.2 ms where
  PyTorch takes 4.9 ms and `SentenceTransformer.encode` 5.9: at this size the forward
  pass is mostly per-operator overhead, which ONNX Runtime's fused graph avoids. Its
  output matches PyTorch's float32 to about 1e-6; `OnnxEncoder.export` checks a probe
  batch and refuses a graph that differs by more than EXPORT_TOLERANCE.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from rag.errors import RagError

if TYPE_CHECKING:
    import torch

# torch is imported where a model runs, never at module level: the processes that only
# read, chunk or write (Ray's read and chunk workers, a Ray build's driver) import this
# module through rag.embedder, and torch would add about 200 MB to each of them.

Precision = Literal["float32", "bfloat16"]
RUNTIMES: tuple[str, ...] = ("torch", "onnx")
# Largest difference from PyTorch float32 hidden states an exported graph may show.
EXPORT_TOLERANCE = 1e-3


class Encoder(Protocol):
    """Hidden states (batch, length, dim) float32 for ids and attention mask (batch, length)."""

    description: str

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


def amx_available(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has AMX tiles, where bfloat16 matrix products run natively.

    Read from the kernel's CPU flags rather than asked of torch, so a process that never
    runs the model (a Ray build's driver, which decides the precision for every actor)
    need not load torch. Linux lists amx_tile only when it has enabled the tile state
    for user space, the condition torch's own probe checks too (tests compare them)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return {"amx_tile", "amx_bf16"} <= flags
    return False


class TorchEncoder:
    def __init__(self, model: torch.nn.Module, precision: Precision = "float32") -> None:
        import torch

        self.model = model.eval()
        self.precision = precision
        self.description = f"torch {torch.__version__} {precision}"

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bfloat16"),
        ):
            out = self.model(
                input_ids=torch.from_numpy(ids.astype(np.int64)),
                attention_mask=torch.from_numpy(mask.astype(np.int64)),
                token_type_ids=torch.zeros(ids.shape, dtype=torch.int64),
            )
        return out.last_hidden_state.float().numpy()


def _hidden_states(model: torch.nn.Module) -> torch.nn.Module:
    """The model with positional inputs and one output, as the ONNX exporter wants."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    return HiddenStates(model)


class OnnxEncoder:
    INPUTS = ("input_ids", "attention_mask", "token_type_ids")

    def __init__(self, graph: bytes, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads sleep instead of spinning: spinning threads took the cores
        # from everything else in the process (and from other processes).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.description = f"onnxruntime {ort.__version__} float32, {threads} threads"

    @classmethod
    def export(cls, model: torch.nn.Module, threads: int) -> OnnxEncoder:
        """Export `model` to an in-memory graph and check it against PyTorch."""
        import torch

        try:
            import onnx  # noqa: F401  (the exporter needs it)
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise RagError(
                f"the onnx question runtime needs {exc.name}: pip install onnx onnxruntime "
                "(or set question_runtime='torch')"
            ) from None
        ids = np.array([[101, 2054, 2003, 1037, 3160, 1029, 102], [101, 7592, 102, 0, 0, 0, 0]])
        mask = (ids > 0).astype(np.int64)
        example = tuple(torch.from_numpy(a) for a in (ids, mask, np.zeros_like(ids)))
        graph = io.BytesIO()
        axes = {"batch": 0, "length": 1}
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter is deprecated in favour of the dynamo one, which
            # needs onnxscript and takes 20x longer for the same graph here.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _hidden_states(model).eval(),
                example,
                graph,
                input_names=list(cls.INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={
                    name: {i: n for n, i in axes.items()}
                    for name in (*cls.INPUTS, "last_hidden_state")
                },
                opset_version=17,
                dynamo=False,
            )
        encoder = cls(graph.getvalue(), threads)
        expected = TorchEncoder(model).hidden(ids, mask)
        got = encoder.hidden(ids, mask)
        error = float(np.abs(expected - got)[mask.astype(bool)].max())
        if error > EXPORT_TOLERANCE:
            raise RagError(
                f"the ONNX export of the model differs from PyTorch by {error:.2g} "
                f"(> {EXPORT_TOLERANCE}); use question_runtime='torch'"
            )
        return encoder

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {
            "input_ids": ids.astype(np.int64, copy=False),
            "attention_mask": mask.astype(np.int64, copy=False),
            "token_type_ids": np.zeros(ids.shape, dtype=np.int64),
        }
        return self.session.run(None, feed)[0]


def make_encoder(
    runtime: str, model: torch.nn.Module, *, precision: Precision = "float32", threads: int = 1
) -> Encoder:
    """The encoder for `runtime`; ONNX Runtime runs in float32 only."""
    if runtime == "torch":
        return TorchEncoder(model, precision)
    if runtime == "onnx":
        if precision != "float32":
            raise RagError(f"the onnx runtime runs float32 only, not {precision}")
        return OnnxEncoder.export(model, threads)
    raise RagError(f"unknown runtime {runtime!r}; valid choices: {list(RUNTIMES)}")
