"""Scrape `/metrics` and read one sample with prometheus_client's own parser."""

from prometheus_client.parser import text_string_to_metric_families

METRICS_TOKEN = "metrics-test-token-5f2a9c"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name` with exactly `labels`, 0 when absent (a series appears on its first increment)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)
