"""Leaderboards from recorded runs: the table model (:mod:`.table`), its renderers (:mod:`.render`), plots
(:mod:`.plots`) and publishing (:mod:`.publish`); :func:`mmea_bench.api.leaderboard` puts them together."""
