"""Representations: model registry and resolver, extractors, molecular featurizers, cache."""

from w2sg.represent.cache import EmbeddingCache, cache_dir
from w2sg.represent.extract import POOLINGS, embed, load_encoder, representations_for
from w2sg.represent.models import (
    REGISTRY,
    ModelSpec,
    ResolvedModel,
    list_models,
    register_model,
    resolve_model,
)

__all__ = [
    "POOLINGS",
    "REGISTRY",
    "EmbeddingCache",
    "ModelSpec",
    "ResolvedModel",
    "cache_dir",
    "embed",
    "list_models",
    "load_encoder",
    "register_model",
    "representations_for",
    "resolve_model",
]
