"""Command-line layer: the only place that parses absl flags."""
