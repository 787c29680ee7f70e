"""Feature stability: agreement of each feature between repeated measurements of the same lesion.

Repeated measurements come from test-retest scans, several observers' masks of one lesion, or perturbed copies of
an image and mask (Zwanenburg et al., Sci Rep 2019). Every statistic takes an array ``y`` of shape
``(n_features, n_subjects, k)`` (k measurements per subject) and works on all features at once; a subject with a
non-finite value among its k measurements is left out for that feature only.

Modules: :mod:`.anova` (complete cases, centred moments, mean squares), :mod:`.icc` (ICC with Shrout-Fleiss /
McGraw-Wong intervals), :mod:`.ccc` (Lin's concordance correlation), :mod:`.agreement` (within-subject CV,
Bland-Altman), :mod:`.summary` (all of them at once), :mod:`.design` (which feature rows are repeated measurements),
:mod:`.table` (results as the ``stability`` table), :mod:`.selection` (the stable-feature rule), :mod:`.options`
(config), :mod:`.perturbation` (image and mask perturbations), :mod:`.figure` (the report figure).
"""
