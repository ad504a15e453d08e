from bench.cases import live_fanout, log_stream, vote_storm

CASES = {
    "live_fanout": live_fanout.run,
    "vote_storm": vote_storm.run,
    "log_stream": log_stream.run,
}
