"""
A serverless estimator in a scikit-learn pipeline and search
============================================================

``ServerlessSGDClassifier`` in a ``Pipeline``, tuned by scikit-learn's own ``GridSearchCV``
in parallel::

    python examples/grid_search_in_a_pipeline.py
"""

from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cirrus import ServerlessSGDClassifier


def main():
    X, y = make_classification(
        n_samples=20_000, n_features=40, n_informative=10, class_sep=2.0, random_state=0
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipeline = make_pipeline(StandardScaler(), ServerlessSGDClassifier(random_state=0))
    grid = {
        "serverlesssgdclassifier__alpha": [1e-5, 1e-4, 1e-3],
        "serverlesssgdclassifier__optimizer": ["adagrad", "momentum"],
        "serverlesssgdclassifier__eta0": [0.05],
    }
    search = GridSearchCV(pipeline, grid, cv=3, n_jobs=2).fit(X_train, y_train)
    print(f"best parameters: {search.best_params_}")
    print(f"best cross-validated accuracy: {search.best_score_:.4f}")
    print(f"test accuracy of the refitted pipeline: {search.score(X_test, y_test):.4f}")


if __name__ == "__main__":
    main()
