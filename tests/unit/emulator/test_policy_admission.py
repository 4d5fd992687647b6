# ruff: noqa: E501
"""The emulator's policy catalog and admission model agree with the vendored JSON and with the product."""

from __future__ import annotations

from emulator.policy.admission import CONSTRAINT_KINDS
from emulator.policy.catalog import load_definitions
from remediator.core import policy_catalog


def test_the_emulator_knows_every_vendored_definition_and_initiative():
    definitions, sets = load_definitions()
    assert set(policy_catalog.KUBERNETES_DEFINITIONS) <= set(definitions)
    assert set(policy_catalog.RESOURCE_TYPE_RULES) <= set(definitions)
    assert set(sets) == set(policy_catalog.INITIATIVES)
    for name, initiative in sets.items():
        assert [
            m.reference_id
            for m in initiative.members
            if m.definition in policy_catalog.KUBERNETES_DEFINITIONS
        ] == [m.reference_id for m in policy_catalog.INITIATIVES[name].members]


def test_constraint_kinds_the_emulator_names_are_the_ones_the_product_attributes():
    # the emulator cannot import the product at run time; this cross-check keeps the two tables in step
    for definition, kind in CONSTRAINT_KINDS.items():
        assert kind in policy_catalog.KUBERNETES_DEFINITIONS[definition].constraint_kinds
        constraint = f"azurepolicy-{kind[:30]}-0123456789abcdef0123"
        assert [d.name for d in policy_catalog.definitions_for_constraint(constraint)] == [definition]
