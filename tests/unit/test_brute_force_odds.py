from shared.limits.odds import (
    LONGEST_TTL_SECONDS,
    TARGET,
    brute_force_odds,
    default_settings,
    odds_at_both_lifetimes,
    windows_touched,
    wrong_passwords_per_account_per_day,
)


def test_a_ten_minute_lifetime_touches_at_most_three_five_minute_windows():
    assert windows_touched(600, 300) == 3
    assert windows_touched(600, 600) == 2


def test_default_limits_keep_both_brute_force_figures_under_the_target_at_every_lifetime():
    for odds in odds_at_both_lifetimes(default_settings()):
        assert odds.with_one_leaked_link <= TARGET, odds
        assert odds.without_link <= TARGET, odds


def test_the_figures_are_computed_at_the_longest_lifetime_a_code_may_be_given():
    assert [odds.lifetime_seconds for odds in odds_at_both_lifetimes(default_settings())] == [600, LONGEST_TTL_SECONDS]


def test_the_old_five_minute_resource_window_failed_the_target_at_the_longest_lifetime():
    settings = default_settings().model_copy(update={"limit_redeem_attempts_per_resource": "10/5m"})
    odds = brute_force_odds(settings, LONGEST_TTL_SECONDS)
    assert odds.guesses_per_lifetime_on_leaked_resource == 130
    assert odds.with_one_leaked_link > TARGET


def test_at_most_a_hundred_wrong_passwords_per_account_a_day_from_unknown_devices():
    assert wrong_passwords_per_account_per_day(default_settings()) <= 100
