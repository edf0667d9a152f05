"""Label transfer: how well a kNN classifier on the embedding predicts held-out labels."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

#: Every key this group writes.
KEYS = ("knn_f1", "knn_f1_batch")


def knn_f1_cv(x: np.ndarray, labels: np.ndarray, k: int, folds: int, seed: int) -> float | None:
    """Macro-F1 of kNN predictions made in stratified ``folds``-fold cross-validation.

    Every cell is predicted once, by a classifier fitted on the other folds. Labels rarer than
    the fold count cannot appear in every fold (scikit-learn warns, we silence it): their cells
    are still predicted and count in the macro average. The fold count is capped at the largest
    label's size; None when even two folds are impossible.
    """
    folds = min(folds, int(np.unique(labels, return_counts=True)[1].max()))
    if folds < 2:
        return None
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    n_train = len(x) - len(x) // folds
    classifier = KNeighborsClassifier(n_neighbors=min(k, n_train))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        predicted = cross_val_predict(classifier, x, labels, cv=splitter)
    return float(f1_score(labels, predicted, average="macro"))


def knn_f1_batch(x: np.ndarray, labels: np.ndarray, batches: np.ndarray, k: int) -> float | None:
    """Leave-one-batch-out transfer: predict each batch's labels from all other batches; the mean
    over batches of the macro-F1 over labels present in both the query batch and the reference.

    Labels absent from the reference cannot be transferred whatever the embedding, so they are
    left out of that batch's F1. None when no batch shares a label with the others.
    """
    scores = []
    for batch in np.unique(batches):
        query = batches == batch
        shared = np.intersect1d(labels[query], labels[~query])
        if not len(shared):
            continue
        classifier = KNeighborsClassifier(n_neighbors=min(k, int((~query).sum())))
        predicted = classifier.fit(x[~query], labels[~query]).predict(x[query])
        scores.append(f1_score(labels[query], predicted, labels=shared, average="macro"))
    return float(np.mean(scores)) if scores else None
