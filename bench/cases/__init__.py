from bench.cases import (
    crowd_mix,
    import_case,
    live_fanout,
    log_stream,
    report,
    rollout_abort,
    tick_fanout,
    vote_storm,
    warroom_render,
    watchers_500,
)

CASES = {
    "live_fanout": live_fanout.run,
    "warroom_render": warroom_render.run,
    "tick_fanout": tick_fanout.run,
    "report": report.run,
    "vote_storm": vote_storm.run,
    "log_stream": log_stream.run,
    "import": import_case.run,
    "rollout_abort": rollout_abort.run,
    "watchers_500": watchers_500.run,
    "crowd_mix": crowd_mix.run,
}
