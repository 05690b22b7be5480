"""The embedder reproduces `SentenceTransformer.encode` of the packaged model, on every
runtime it offers; bad settings and unsupported model folders fail with clear errors."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag import embedder as embedder_module
from rag.config import EmbedderConfig
from rag.embedder import Embedder, read_model_spec, resolve_model_path, resolve_precision
from rag.encoders import amx_available, make_encoder
from rag.errors import RagError

TEXTS = [
    "Russia said it would not intervene militarily in Iran.",
    "Protests began in late December 2025 after the rial collapsed.",
    "Who met in Moscow?",
    "A much longer passage about sanctions, oil exports and the Kremlin's careful "
    "statements during the unrest, repeated twice for length. " * 2,
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """What the bare model gives: sentence-transformers, the same package."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), device="cpu")
    return model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)


@pytest.fixture(scope="module")
def float32_embedder() -> Embedder:
    return Embedder(EmbedderConfig(document_precision="float32", question_runtime="torch"))


@pytest.mark.slow
def test_float32_documents_match_sentence_transformers(
    float32_embedder: Embedder, reference: np.ndarray
) -> None:
    blocks = float32_embedder.encode_blocks(TEXTS)
    vectors = np.stack([b.vector for b in blocks])
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    # Each block keeps every word piece but [CLS] and [SEP], with its character span.
    for text, block in zip(TEXTS, blocks, strict=True):
        assert len(block.ids) == float32_embedder.count_word_pieces(text) - 2
        assert block.embeddings.shape == (len(block.ids), 384)
    pieces = float32_embedder.tokenizer.convert_ids_to_tokens(blocks[2].ids.tolist())
    assert pieces == ["who", "met", "in", "moscow", "?"]
    assert blocks[2].spans.tolist() == [[0, 3], [4, 7], [8, 10], [11, 17], [17, 18]]


@pytest.mark.slow
def test_batches_of_mixed_lengths_give_the_same_vectors(float32_embedder: Embedder) -> None:
    """Sorting by length and padding must not change any text's vector."""
    alone = np.stack([float32_embedder.encode_blocks([t])[0].vector for t in TEXTS])
    together = np.stack([b.vector for b in float32_embedder.encode_blocks(TEXTS)])
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.slow
def test_windows_of_texts_give_the_same_blocks(
    float32_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long corpus is tokenized a window at a time; the blocks come out in order."""
    whole = float32_embedder.encode_blocks(TEXTS)
    monkeypatch.setattr(embedder_module, "SORT_WINDOW", 3)
    windowed = float32_embedder.encode_blocks(TEXTS)
    for a, b in zip(whole, windowed, strict=True):
        np.testing.assert_allclose(a.vector, b.vector, atol=1e-5)
        assert a.ids.tolist() == b.ids.tolist() and a.spans.tolist() == b.spans.tolist()


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_question_vectors_match_sentence_transformers(
    runtime: str, float32_embedder: Embedder, reference: np.ndarray
) -> None:
    embedder = float32_embedder
    if runtime == "onnx":
        embedder = Embedder(EmbedderConfig(question_runtime="onnx"))
    encoded = embedder.encode_questions(TEXTS)
    np.testing.assert_allclose(np.stack([q.vector for q in encoded]), reference, atol=1e-5)
    assert runtime in embedder.describe()["questions"] or (
        runtime == "onnx" and "onnxruntime" in embedder.describe()["questions"]
    )


@pytest.mark.slow
def test_question_keeps_content_word_pieces_only(embedder: Embedder) -> None:
    (q,) = embedder.encode_questions(["Who met in Moscow?"])
    tokens = embedder.tokenizer.convert_ids_to_tokens(q.ids.tolist())
    assert tokens == ["met", "moscow"]
    np.testing.assert_allclose(np.linalg.norm(q.tokens, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_bfloat16_documents_stay_close_to_float32(reference: np.ndarray) -> None:
    # Asked for explicitly, bfloat16 runs on any CPU ("auto" takes it only with AMX,
    # where it is fast), so this check runs everywhere.
    embedder = Embedder(EmbedderConfig(document_precision="bfloat16"))
    assert embedder.precision == "bfloat16"
    vectors = np.stack([b.vector for b in embedder.encode_blocks(TEXTS)])
    cosines = (vectors * reference).sum(axis=1)
    # The README's promise: pooled vectors within a cosine of 3e-5 of float32's.
    assert (1.0 - cosines).max() <= 3e-5, 1.0 - cosines


def test_auto_precision_follows_the_cpu() -> None:
    # The flags are read from the kernel; torch's own probe (CPUID and the OS's tile
    # state) is the independent reference.
    import torch

    amx = bool(torch.cpu._is_amx_tile_supported())
    assert amx_available() is amx
    assert resolve_precision("auto") == ("bfloat16" if amx else "float32")
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("bfloat16") == "bfloat16"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("processor\t: 0\nflags\t\t: fpu sse2 avx512f amx_bf16 amx_tile amx_int8\n", True),
        ("processor\t: 0\nflags\t\t: fpu sse2 avx512f amx_tile amx_int8\n", False),
        ("processor\t: 0\nflags\t\t: fpu sse2 avx512f\n", False),
        ("processor\t: 0\n", False),
    ],
)
def test_amx_needs_tiles_and_bfloat16_in_the_flags(
    tmp_path: Path, text: str, expected: bool
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert amx_available(cpuinfo) is expected
    assert amx_available(tmp_path / "absent") is False


@pytest.mark.slow
def test_unknown_settings_name_the_valid_choices(float32_embedder: Embedder) -> None:
    with pytest.raises(RagError, match="valid choices: auto, float32, bfloat16"):
        resolve_precision("float16")
    with pytest.raises(RagError, match=r"valid choices: \['torch', 'onnx'\]"):
        make_encoder("tensorrt", float32_embedder._model)
    with pytest.raises(RagError, match="float32 only"):
        make_encoder("onnx", float32_embedder._model, precision="bfloat16")


@pytest.mark.slow
def test_cache_tag_separates_precisions(float32_embedder: Embedder) -> None:
    assert float32_embedder.cache_tag == "all-MiniLM-L6-v2@float32"


@pytest.mark.slow  # copies the model folder and reads it
def test_model_folder_with_other_pooling_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), folder)
    assert read_model_spec(folder) == 256
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    with pytest.raises(RagError, match="only Transformer \\+ mean Pooling \\+ Normalize"):
        Embedder(replace(EmbedderConfig(), model=str(folder)))
    (folder / "modules.json").unlink()
    with pytest.raises(RagError, match="not a readable sentence-transformers model folder"):
        read_model_spec(folder)
