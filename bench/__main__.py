"""``python -m bench [pacing] [concurrency] ... [recognition]`` — run benchmarks and print one JSON document."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    benches = [
        "pacing",
        "concurrency",
        "turns",
        "barge_in",
        "quality",
        "endpointing",
        "heard",
        "load",
        "knowledge",
        "extraction",
        "console",
        "transcripts",
        "edge",
        "nodes",
        "recognition",
    ]
    parser.add_argument("which", nargs="*", default=benches, choices=benches)
    parser.add_argument("--turns", type=int, default=20, help="question/answer turns for the latency benchmark")
    parser.add_argument("--steps", default="50,100,150", help="concurrent call counts to try, in order")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each concurrency step")
    parser.add_argument("--transcripts", type=int, default=500, help="calls for the extraction throughput benchmark")
    parser.add_argument("--quality-questions", type=int, help="answerable held-out questions of the quality set (all)")
    parser.add_argument("--quality-unknowns", type=int, help="unanswerable held-out questions of the quality set (all)")
    parser.add_argument("--load-steps", default="10,20,30", help="callers asking at once (conversation load)")
    parser.add_argument("--spacing", type=float, default=0.5, help="seconds between their questions")
    parser.add_argument("--memory-calls", type=int, default=200, help="AI calls for the memory measurement")
    parser.add_argument("--load-live", type=int, default=5, help="phone calls written down live beside the load")
    parser.add_argument(
        "--load-env", action="append", default=[], metavar="NAME=VALUE", help="ARI app setting for the load bench"
    )
    parser.add_argument("--live-steps", default="1,2,4,6,8", help="concurrent phone calls transcribed live, in order")
    parser.add_argument("--stt-model", default="tiny.en", help="whisper model of the recognition batching bench")
    parser.add_argument("--edge-calls", type=int, default=50, help="calls per path for the edge set-up benchmark")
    parser.add_argument("--nodes-steps", default="10,20", help="AI callers to two nodes via the edge (one node: half)")
    args = parser.parse_args(argv)

    from bench.conversation import run_barge_in, run_turns
    from bench.media import run_concurrency, run_pacing

    report: dict = {
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if "pacing" in args.which:
        report["pacing"] = run_pacing()
    if "concurrency" in args.which:
        steps = tuple(int(s) for s in args.steps.split(","))
        report["concurrency"] = run_concurrency(steps, args.seconds)
    if "turns" in args.which:
        report["turns"] = run_turns(args.turns)
    if "barge_in" in args.which:
        report["barge_in"] = run_barge_in()
    if "quality" in args.which:
        from bench.quality import run_quality

        report["quality"] = run_quality(args.quality_questions, args.quality_unknowns)
    if "endpointing" in args.which:
        from bench.endpointing import run_endpointing

        report["endpointing"] = run_endpointing()
    if "heard" in args.which:
        from bench.heard import run_heard

        report["heard"] = run_heard()
    if "load" in args.which:
        from bench.load import run_load

        steps = tuple(int(s) for s in args.load_steps.split(","))
        app_env = dict(item.split("=", 1) for item in args.load_env)
        report["load"] = run_load(steps, args.spacing, args.memory_calls, args.load_live, app_env)
    if "knowledge" in args.which:
        from bench.knowledge import run_search_bench

        report["knowledge"] = run_search_bench()
    if "console" in args.which:
        # A process of its own: Django is configured once per process, and the extraction
        # benchmark configures it for its own throw-away database.
        import subprocess

        out = subprocess.run([sys.executable, "-m", "bench.console"], check=True, capture_output=True, text=True)
        report["console"] = json.loads(out.stdout)
    if "transcripts" in args.which:
        from bench.transcripts import run_live, run_post_call

        report["transcripts"] = {
            "live": run_live(tuple(int(s) for s in args.live_steps.split(","))),
            "post_call": run_post_call(),
        }
    if "extraction" in args.which:
        from bench.extraction import run_extraction_bench

        report["extraction"] = run_extraction_bench(args.transcripts)
    if "edge" in args.which:
        from bench.edge import run_edge

        report["edge"] = run_edge(args.edge_calls)
    if "nodes" in args.which:
        from bench.nodes import run_nodes

        report["nodes"] = run_nodes(tuple(int(s) for s in args.nodes_steps.split(",")), args.spacing)
    if "recognition" in args.which:
        from bench.recognition_batch import run_recognition_batch

        report["recognition"] = run_recognition_batch(args.stt_model)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
