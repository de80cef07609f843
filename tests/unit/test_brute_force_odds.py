from shared.abuse.odds import TARGET, brute_force_odds, default_settings, windows_touched


def test_a_ten_minute_lifetime_touches_at_most_three_five_minute_windows():
    assert windows_touched(600, 300) == 3
    assert windows_touched(600, 600) == 2


def test_default_limits_keep_both_brute_force_figures_under_the_target():
    odds = brute_force_odds(default_settings())
    assert odds.with_one_leaked_link <= TARGET
    assert odds.without_link <= TARGET
    assert odds.guesses_per_lifetime_on_leaked_resource == 30
