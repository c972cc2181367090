"""What the two classifying kinds (text and series) share, one module per stage.

``tasks/kinds/text_classification/<stage>.py`` and ``tasks/kinds/series_classification/<stage>.py``
differ in how they read and encode their input, build their network and pick their baseline;
the rest of each stage is here, once: the baseline's fit and report (:mod:`.baseline`), fitting
the network, the ensemble, the decision and the model card (:mod:`.train`), the test metrics,
plots, slices and worst errors (:mod:`.evaluate`), the columns predict writes (:mod:`.predict`)
and the served model they all score with (:mod:`.served`; each kind's ``Predictor`` is in its
``served.py``). A stage imports only its own stage's module (and the served model), so an edit
here reruns only the stages that run it; evaluate and predict never import training code
(``tests/test_kinds.py``).

Not a kind (``tasks.kinds.KINDS`` does not list it): the kinds' parts call it.
"""
