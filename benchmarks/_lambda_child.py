"""One fresh interpreter laid out like a Lambda container; run by lambda_bench, never imported.

    python3.13 -I -S -B _lambda_child.py init   TASK LAYER RUNTIME MODULE
    python3.13 -I -S -B _lambda_child.py memory TASK LAYER RUNTIME SPEC_JSON_FILE

sys.path is what the python3.13 runtime gives a function: the function's directory (/var/task),
the layer's ``python/`` directory (/opt/python), the standard library, then the runtime's own
packages (boto3 and its dependencies; RUNTIME here). ``-S`` keeps every site-packages out,
``-I`` ignores PYTHON* variables and the current directory, ``-B`` writes no bytecode (Lambda's
task root and layers are read-only). TASK or LAYER may be "-" for none (the bare boto3 baseline).

init: times the import of MODULE (wall clock and this process's CPU time) and prints one JSON
line.
memory: imports the handler, runs the warm-up events, then each measured event twice: once for
the peak RSS (Linux VmHWM, reset just before the call) and once under tracemalloc; writes the
figures as JSON to the spec's ``out`` file (the handler's logs own stdout).
"""

import sys
import time


def _lambda_path(task: str, layer: str, runtime: str) -> None:
    front = [task] if task != "-" else []
    if layer != "-":
        front += [f"{layer}/lib/python3.13/site-packages", layer]
    sys.path[:0] = front
    sys.path.append(runtime)


def init(task: str, layer: str, runtime: str, module: str) -> None:
    _lambda_path(task, layer, runtime)
    started, cpu_started = time.perf_counter(), time.process_time()
    __import__(module)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    import json

    loaded = sys.modules
    print(
        json.dumps(
            {
                "module": module,
                "ms": elapsed * 1000,
                "cpu_ms": cpu * 1000,
                "modules": len(loaded),
                "httpx": "httpx" in loaded,
                "parameters": "aws_lambda_powertools.utilities.parameters" in loaded,
                "xray": "aws_xray_sdk" in loaded,
                "dont_write_bytecode": sys.dont_write_bytecode,
            }
        )
    )


class _Context:
    def __init__(self, name: str, memory: int) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.memory_limit_in_mb = memory
        self.aws_request_id = f"bench-{time.time_ns()}"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Set VmHWM back to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") <= _status_kb("VmRSS") + 256


def memory(task: str, layer: str, runtime: str, spec_file: str) -> None:
    _lambda_path(task, layer, runtime)
    started = time.perf_counter()
    handler_module = __import__("app")
    init_ms = (time.perf_counter() - started) * 1000
    import gc
    import json
    import threading
    import tracemalloc

    with open(spec_file) as f:
        spec = json.load(f)
    handler = handler_module.lambda_handler
    context = _Context(spec["function"], spec["memory"])
    out: dict = {"init_ms": init_ms, "warmups": [], "runs": []}
    for event in spec["warmups"]:
        out["warmups"].append(handler(event, context))
    out["after_warmup_kb"] = _status_kb("VmRSS")
    out["peak_after_warmup_kb"] = _status_kb("VmHWM")
    for run in spec["runs"]:
        gc.collect()
        before = _status_kb("VmRSS")
        sampled = [before]
        exact = _reset_peak()
        stop = threading.Event()

        def sample(sampled: list[int] = sampled, stop: threading.Event = stop) -> None:
            while not stop.wait(0.002):
                sampled.append(_status_kb("VmRSS"))

        sampler = None
        if not exact:  # no resettable high-water mark: sample RSS every 2 ms instead
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
        t0 = time.perf_counter()
        result = handler(run["rss_event"], context)
        seconds = time.perf_counter() - t0
        if sampler is not None:
            stop.set()
            sampler.join()
        peak = _status_kb("VmHWM") if exact else max(sampled)
        gc.collect()
        tracemalloc.start()
        traced_result = handler(run["traced_event"], context)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["runs"].append(
            {
                "label": run["label"],
                "result": result,
                "traced_result": traced_result,
                "seconds": seconds,
                "rss_before_kb": before,
                "rss_peak_kb": peak,
                "peak_method": "VmHWM" if exact else "sampled",
                "traced_peak_bytes": traced_peak,
            }
        )
    out["process_peak_kb"] = max(
        [out["peak_after_warmup_kb"]] + [r["rss_peak_kb"] for r in out["runs"]]
    )
    with open(spec["out"], "w") as f:
        json.dump(out, f, default=str)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    {"init": init, "memory": memory}[mode](*args)
