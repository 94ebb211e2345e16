"""Trained models that several experiments reuse, one module each (build, train, load by
name), and the artifact store they share (:mod:`deepnotes.zoo.artifacts`)."""

from deepnotes.zoo.artifacts import (
    Artifact,
    MissingArtifact,
    artifact_dir,
    load_artifact,
    load_model,
    save_artifact,
)

__all__ = ["Artifact", "MissingArtifact", "artifact_dir", "load_artifact", "load_model",
           "save_artifact"]
