"""Read Prometheus text (from GET /metrics) with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def parse(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {sorted (label, value) pairs: sample value}; read it with `value`."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value; 0.0 when the series does not exist (never incremented)."""
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)
