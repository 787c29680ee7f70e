"""The ``stability:`` block of the workflow configuration, validated, with defaults."""
from __future__ import annotations

from dataclasses import dataclass, field

from radflow.stability.design import METHODS
from radflow.stability.icc import DEFAULT_FORM, ICC_FORMS
from radflow.stability.perturbation import PerturbationSettings

# Perturbed copies are random draws per image, not fixed raters: the one-way model (as Zwanenburg et al. 2019).
DEFAULT_PERTURBATION_FORM = "ICC(1,1)"


@dataclass(frozen=True)
class StabilityOptions:
    methods: tuple[str, ...] = ("test-retest",)
    icc_form: str = DEFAULT_FORM
    perturbation_icc_form: str = DEFAULT_PERTURBATION_FORM
    confidence_level: float = 0.95
    min_icc_ci_low: float = 0.75
    seed: int = 42
    segmentation_groups: dict[str, list[str]] = field(default_factory=dict)
    perturbation: PerturbationSettings = PerturbationSettings()

    @classmethod
    def from_dict(cls, doc: dict | None) -> "StabilityOptions":
        doc = dict(doc or {})
        known = {"method", "icc_form", "confidence_level", "min_icc_ci_low", "seed", "segmentation_groups",
                 "perturbation"}
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"unknown stability settings {sorted(unknown)}; known: {sorted(known)}")
        method = doc.get("method", list(cls.methods))
        methods = (method,) if isinstance(method, str) else tuple(method)
        bad = set(methods) - set(METHODS)
        if bad or not methods:
            raise ValueError(f"stability.method must be one or more of {METHODS}, got {method!r}")
        perturbation_doc = dict(doc.get("perturbation") or {})
        options = cls(
            methods=tuple(m for m in METHODS if m in methods),
            icc_form=doc.get("icc_form", cls.icc_form),
            perturbation_icc_form=perturbation_doc.get("icc_form", cls.perturbation_icc_form),
            confidence_level=float(doc.get("confidence_level", cls.confidence_level)),
            min_icc_ci_low=float(doc.get("min_icc_ci_low", cls.min_icc_ci_low)),
            seed=int(doc.get("seed", cls.seed)),
            segmentation_groups={k: list(v) for k, v in (doc.get("segmentation_groups") or {}).items()},
            perturbation=PerturbationSettings.from_dict(perturbation_doc),
        )
        for form in (options.icc_form, options.perturbation_icc_form):
            if form not in ICC_FORMS:
                raise ValueError(f"unknown ICC form {form!r}; known: {ICC_FORMS}")
        if "segmentation" in options.methods and not options.segmentation_groups:
            raise ValueError("stability.method segmentation needs stability.segmentation_groups")
        return options

    def icc_form_of(self, method: str) -> str:
        return self.perturbation_icc_form if method == "perturbation" else self.icc_form
