"""engine.quotas: the quotas that apply, and messages that name the quota and its remedy."""

from __future__ import annotations

from engine.quotas import default_quotas, effective_quotas, overrides_of, quota_message
from engine.settings import Settings, load_settings


def test_settings_give_the_defaults():
    settings = load_settings(
        {"ORDINAUT_QUOTA_ACTIVE_TASKS": "5", "ORDINAUT_QUOTA_EVENT_FANOUT": "2"}
    )
    assert default_quotas(settings).as_dict() == {
        "active_tasks": 5,
        "queued_runs": 10000,
        "concurrent_runs": 1000,
        "event_fanout": 2,
    }


def test_an_agents_own_quota_wins_and_null_means_the_default():
    row = {"quota_active_tasks": 50, "quota_queued_runs": None}
    quotas = effective_quotas(row, default_quotas(Settings()))
    assert quotas.active_tasks == 50 and quotas.queued_runs == 10000
    assert overrides_of(row) == {
        "active_tasks": 50,
        "queued_runs": None,
        "concurrent_runs": None,
        "event_fanout": None,
    }


def test_the_message_names_the_quota_its_value_and_the_remedy():
    message = quota_message("queued_runs", 3, agent_id="a1", found=3)
    assert message.startswith("quota queued_runs of agent a1 reached: at most 3 runs waiting")
    assert 'PATCH /agents/a1 {"quotas": {"queued_runs": N}}' in message
    assert "ORDINAUT_QUOTA_QUEUED_RUNS" in message
    assert "(found 4+)" in quota_message("event_fanout", 3, agent_id="a1", found=4)
