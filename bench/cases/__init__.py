from bench.cases import live_fanout

CASES = {
    "live_fanout": live_fanout.run,
}
