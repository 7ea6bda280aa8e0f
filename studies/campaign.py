"""Campaign specs: what a user submits (task, budget, seeds, arms with search spaces) and presets.

```python
from boundsweep.studies.campaign import CampaignSpec, ArmSpec, Grid, Range, preset, PRESETS
spec = preset("paper-robustness", task="digits_mlp", grid_width=3, budget={"epochs": 2})
CampaignSpec.from_yaml(spec.to_yaml()) == spec
```
"""

from __future__ import annotations

from boundsweep.studies._campaign._limits import (
    MAX_CAMPAIGN_STEPS,
    MAX_DESCRIPTION_CHARS,
    MAX_DOCUMENT_BYTES,
    MAX_DOCUMENT_VALUES,
    MAX_EPOCHS,
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    MAX_YAML_ALIASES,
    DocumentError,
    check_document,
    check_size,
    check_text,
    parse_json,
    parse_yaml,
)
from boundsweep.studies._campaign._names import NAME_PATTERN
from boundsweep.studies._campaign._presets import PRESETS, Preset, half_decade_grid, preset
from boundsweep.studies._campaign._spec import (
    MAX_GRID_POINTS,
    MAX_TRIALS_PER_ARM,
    MAX_TRIALS_PER_CAMPAIGN,
    PAPER_BASELINES,
    SEED_PARAM,
    STORED,
    ArmSpec,
    CampaignSpec,
    Grid,
    PrunerName,
    Range,
    SamplerName,
    SpaceValue,
    VerdictSpec,
)

__all__ = [
    "MAX_CAMPAIGN_STEPS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_DOCUMENT_BYTES",
    "MAX_DOCUMENT_VALUES",
    "MAX_EPOCHS",
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "MAX_GRID_POINTS",
    "MAX_TRIALS_PER_ARM",
    "MAX_TRIALS_PER_CAMPAIGN",
    "MAX_YAML_ALIASES",
    "NAME_PATTERN",
    "PAPER_BASELINES",
    "PRESETS",
    "SEED_PARAM",
    "STORED",
    "ArmSpec",
    "CampaignSpec",
    "DocumentError",
    "Grid",
    "Preset",
    "PrunerName",
    "Range",
    "SamplerName",
    "SpaceValue",
    "VerdictSpec",
    "check_document",
    "check_size",
    "check_text",
    "half_decade_grid",
    "parse_json",
    "parse_yaml",
    "preset",
]
