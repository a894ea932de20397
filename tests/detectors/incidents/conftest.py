from __future__ import annotations

import pytest

from detectors.incidents import IncidentClassifier, load_corpus, split_corpus, train


@pytest.fixture(scope="session")
def split():
    return split_corpus(load_corpus())


@pytest.fixture(scope="session")
def held_out_model(split) -> IncidentClassifier:
    """Trained on the training part only, so the held-out part stays unseen."""
    return train(split[0])
