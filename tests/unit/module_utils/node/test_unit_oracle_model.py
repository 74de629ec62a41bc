"""The rendering oracle (issue 11) against models of systemd's parsers: fast, every run (the lab test asks systemd itself).

Random pods with hostile strings and wrong types in every field the node layer renders: validation refuses them
naming a field of the input, or the rendered units read back (node_helpers' models of systemd 252) exactly as the
spec says (unit_oracle.check_pod).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from unit_oracle import check_pod, model_readback, oracle_pods, outcome


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(oracle_pods("oracle"))
def test_rendered_units_mean_what_the_spec_says_or_validation_names_the_field(raw):
    kind, result = outcome(raw)
    if kind == "rendered":
        normal, rendered, values = result
        check_pod(normal, rendered, values, model_readback(rendered))
