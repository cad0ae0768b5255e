"""The monai-bac MONAI Label app's wiring: task config, infer/train tasks, scoring, strategies, datastore.

No algorithm lives here: preprocessing, network and threshold come from the bundle
(``bundle/configs``), the active-learning scores from :mod:`monai_bac.active_learning`.
"""
