"""The commented sample shipped in inventories/ is the one `affordml config init` writes, and it is valid."""

from __future__ import annotations

from pathlib import Path

import yaml

from affordml.config.model import Config
from affordml.config.sample import sample_text

SHIPPED = Path(__file__).parents[2] / "inventories" / "affordml.yaml.sample"


def test_shipped_sample_is_current():
    assert SHIPPED.read_text() == sample_text(), (
        "regenerate: affordml config init --print > inventories/affordml.yaml.sample"
    )


def test_uncommented_sample_is_the_default_config():
    lines = [line[2:] for line in sample_text().splitlines() if line.startswith("# ") and not line.startswith("# ---")]
    data = yaml.safe_load("\n".join(lines[4:]))  # after the four lines of header prose
    assert Config.model_validate(data) == Config()
