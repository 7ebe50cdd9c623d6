"""The one report-retry rule the simulated and scripted agents follow (scheduler/reports.py)."""

from scheduler import reports


def test_our_agent_backs_off_to_two_seconds_and_never_gives_up():
    delays = [reports.retry_after(reports.UNTIL_DELIVERED, a) for a in range(12)]
    assert delays[:5] == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert set(delays[5:]) == {reports.MAX_BACKOFF_S}


def test_the_seeds_agent_retries_three_times_then_drops_the_report():
    delays = [reports.retry_after(reports.RETRY_THEN_DROP, a) for a in range(5)]
    assert delays == [1.0, 2.0, 4.0, None, None]
