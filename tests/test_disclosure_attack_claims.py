"""The independent attacker on the life table, the register counts, the FK registrations,
Figures 8-9 with the GC001 timing tables, prior sick days, spell lengths by FK
registration and the attrition flow (issue 16): on the shared run, on `tiny`, with a
higher threshold and on the unprotected results (tests/reference/attack/claims.py says
how it reads each).
"""

from __future__ import annotations

from tests.reference.attack.claims import (
    attack_attrition,
    attack_fk_registrations,
    attack_fk_spell_length,
    attack_gc001_timing,
    attack_life_table,
    attack_prior_days,
    attack_register_counts,
)


def test_the_life_table_resists_the_attacker(run_dir):
    outputs = run_dir / "outputs"
    assert attack_life_table(outputs, outputs / "tables", 5) == []


def test_the_register_counts_resist_the_attacker(run_dir):
    assert attack_register_counts(run_dir / "staged", run_dir / "outputs" / "tables", 5) == []


def test_a_higher_threshold_still_resists_and_the_unprotected_results_do_not(run_dir, tables_at_10):
    outputs = run_dir / "outputs"
    assert attack_life_table(outputs, tables_at_10, 10) == []
    assert attack_register_counts(run_dir / "staged", tables_at_10, 10) == []
    assert attack_fk_registrations(outputs, run_dir / "staged", tables_at_10, 10) == []
    # the same tables before the gate: the attacker finds small counts, so a pass is not
    # for want of looking
    assert attack_life_table(outputs, outputs / "results", 5)
    assert attack_register_counts(run_dir / "staged", outputs / "results", 5)


def test_the_fk_registrations_resist_the_attacker(run_dir):
    outputs = run_dir / "outputs"
    found = attack_fk_registrations(outputs, run_dir / "staged", outputs / "tables", 5)
    assert found == []
    # before the gate, a kind few treated spells have (sassam) is there to be found
    unprotected = attack_fk_registrations(outputs, run_dir / "staged", outputs / "results", 5)
    assert any("is shown" in p for p in unprotected)


def test_the_tiny_run_resists_the_attackers(tiny_run):
    outputs = tiny_run / "outputs"
    tables = outputs / "tables"
    assert attack_life_table(outputs, tables, 5) == []
    assert attack_register_counts(tiny_run / "staged", tables, 5) == []
    assert attack_fk_registrations(outputs, tiny_run / "staged", tables, 5) == []


def test_figures_8_9_and_the_timing_tables_resist_the_attacker(run_dir, tiny_run):
    for base in (run_dir, tiny_run):
        outputs = base / "outputs"
        assert attack_gc001_timing(outputs, outputs / "tables", 5) == []
    # unprotected, the late first GC001s of specialised care in a year are few: found
    outputs = run_dir / "outputs"
    assert any("is shown" in p for p in attack_gc001_timing(outputs, outputs / "results", 5))


def test_prior_sick_days_resist_the_attacker(run_dir, tiny_run):
    for base in (run_dir, tiny_run):
        outputs = base / "outputs"
        assert attack_prior_days(outputs, base / "staged", outputs / "tables", 5) == []
    # unprotected: nearly every treated person has days before the index (the spell's own)
    outputs = run_dir / "outputs"
    assert attack_prior_days(outputs, run_dir / "staged", outputs / "results", 5)


def test_fk_spell_lengths_resist_the_attacker(run_dir, tiny_run):
    for base in (run_dir, tiny_run):
        outputs = base / "outputs"
        assert attack_fk_spell_length(outputs, base / "staged", outputs / "tables", 5) == []
    # the unprotected tiny table holds no count of 1-4; judged against 20, it does
    outputs = tiny_run / "outputs"
    found = attack_fk_spell_length(outputs, tiny_run / "staged", outputs / "results", 20)
    assert any("is shown" in p for p in found)


def test_the_attrition_flow_resists_the_attacker(run_dir, tiny_run):
    for base in (run_dir, tiny_run):
        assert attack_attrition(base / "outputs" / "tables", 5) == []
    # unprotected, a step that drops a few spells is there to be found
    found = [attack_attrition(b / "outputs", 5) for b in (run_dir, tiny_run)]
    assert any(found)
