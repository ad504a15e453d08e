from bench.cases import live_fanout, vote_storm

CASES = {
    "live_fanout": live_fanout.run,
    "vote_storm": vote_storm.run,
}
