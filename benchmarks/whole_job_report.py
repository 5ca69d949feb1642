"""What a whole-job run measured (`benchmarks/whole_job.sh run`), and the whole recipe from it.

  python -m benchmarks.whole_job_report --workdir=W --log=NAME.log --step=NAME_step.json \
      [--gpu=NAME_gpu.csv] [--out=NAME_summary.json]

Reads the workdir (`metrics.jsonl`, `results.json`, `config.json`, `run_info.jsonl`),
the console log of the commands (start-up lines, evaluation and report times, the
stops) and the step-alone report of `benchmarks.step_speed`, and prints:

* training images/s between log lines (evaluations and checkpoint saves left out;
  the first interval of each command, which holds the compiled step's first run,
  too) and its ratio to the step alone;
* each command's wall time, its time to the first step and its exit status;
  the stop (SIGTERM to exit) and the resume (command start to first step) costs;
* the pause of each periodic evaluation and checkpoint save, and the report;
* host CPU cores busy, GPU utilisation samples;
* the continuity checks: every log step once, every due evaluation present, a
  complete `results.json`;
* the whole recipe extrapolated to the config's `num_epochs` (RECIPE_EPOCHS if
  given): start-up + steps at the measured speed + evaluations + saves + report.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics

# Console lines of `python -m vireid_jax.main` (trainer.py) and of whole_job.sh.
FIRST_STEP = re.compile(r"train step compiled and run once in ([\d.]+) s \(([\d.]+) s after")
EVAL = re.compile(r"eval\s+step (\d+) .*\(([\d.]+) s\)$")
REPORT = re.compile(r"report: evaluated in ([\d.]+) s")
COMMAND_END = re.compile(r"=== command (\d+): exit (\d+), wall ([\d.]+) s")
STOPPED = re.compile(r"Stopped at step (\d+)")
RESUMING = re.compile(r"resuming at step (\d+)")


def read_jsonl(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def commands_from_log(text: str) -> list[dict]:
  """One dict per command of whole_job.sh: exit status, wall time, start-up, evaluations."""
  commands, current = [], {"evals": [], "report_s": None}
  for line in text.splitlines():
    if m := FIRST_STEP.search(line):
      current["compile_and_first_step_s"] = float(m.group(1))
      current["to_first_step_s"] = float(m.group(2))
    elif m := EVAL.search(line):
      current["evals"].append({"step": int(m.group(1)), "seconds": float(m.group(2))})
    elif m := REPORT.search(line):
      current["report_s"] = float(m.group(1))
    elif m := STOPPED.search(line):
      current["stopped_at"] = int(m.group(1))
    elif m := RESUMING.search(line):
      current["resumed_at"] = int(m.group(1))
    elif m := COMMAND_END.search(line):
      current.update(exit=int(m.group(2)), wall_s=float(m.group(3)))
      commands.append(current)
      current = {"evals": [], "report_s": None}
  return commands


def speed(rows: list[dict], images_per_step: int, start_steps: list[int]) -> dict:
  """Images/s over the log intervals, the first interval of each command left out.

  `start_steps`: the step each command started at. The first interval of a command
  holds its input pipeline's warm-up (the compiled first step is already left out
  by the trainer). The speed is images per step over the mean step time of the
  intervals (each interval's `train/step_time_s` excludes evaluations and saves).
  """
  train = [r for r in rows if "train/step_time_s" in r]
  firsts = set()
  for start in start_steps:
    after = [r["step"] for r in train if r["step"] > start]
    if after:
      firsts.add(min(after))
  kept = [r for r in train if r["step"] not in firsts]
  if not kept:
    return {}
  per_interval = [r["train/images_per_s"] for r in kept]
  return {
      "intervals": len(kept),
      "images_per_s": images_per_step / statistics.fmean(r["train/step_time_s"] for r in kept),
      "images_per_s_median": statistics.median(per_interval),
      "images_per_s_min": min(per_interval),
      "images_per_s_max": max(per_interval),
      "host_cpu_cores_median": statistics.median(r.get("train/host_cpu_cores", 0.0)
                                                 for r in kept),
      "input_wait_median": statistics.median(r.get("train/input_wait", float("nan"))
                                             for r in kept),
      "images_per_s_by_command": [
          images_per_step / statistics.fmean(r["train/step_time_s"] for r in part) if part
          else None for part in _by_command(kept, start_steps)],
      "save_s": [r["time/save_s"] for r in train if "time/save_s" in r],
  }


def _by_command(rows: list[dict], start_steps: list[int]) -> list[list[dict]]:
  """`rows` split by the command that logged them (commands start at `start_steps`)."""
  bounds = list(start_steps) + [float("inf")]
  return [[r for r in rows if lo < r["step"] <= hi] for lo, hi in zip(bounds, bounds[1:])]


def continuity(rows: list[dict], results: dict | None, spe: int, total: int,
               eval_every: int, trials: int) -> dict:
  """Whether the resumed run is the interrupted one continued: each check True or False."""
  train_steps = [r["step"] for r in rows if "loss/total" in r]
  eval_steps = sorted({r["step"] for r in rows
                       if any(k.startswith("eval/") and k.endswith("/rank1") for k in r)})
  due = [s for s in range(1, total + 1)
         if eval_every and (s % (eval_every * spe) == 0 or s == total)]
  protocols = {k: v for k, v in (results or {}).items() if isinstance(v, dict) and "rank1" in v}
  return {
      "log_steps_each_once": len(train_steps) == len(set(train_steps)),
      "log_steps_increasing": train_steps == sorted(train_steps),
      "last_logged_step": max(train_steps) if train_steps else None,
      "evaluations_due": due,
      "evaluations_done": eval_steps,
      "every_due_evaluation_done": set(due) <= set(eval_steps),
      "results_protocols": sorted(protocols),
      "results_trials": sorted({int(v.get("trials", 0)) for v in protocols.values()}),
      "results_complete": bool(protocols) and all(int(v.get("trials", 0)) == trials
                                                  for v in protocols.values()),
  }


def extrapolate(epochs: int, spe: int, images_per_step: int, speed_s: dict, commands: list[dict],
                eval_every: int, save_every: int = 1) -> dict:
  """Wall time of the whole recipe: a fresh start, every step, evaluation and save, the report."""
  # A process's first evaluation also decodes the test images; later ones reuse them.
  firsts = [c["evals"][0]["seconds"] for c in commands if c["evals"]]
  laters = [e["seconds"] for c in commands for e in c["evals"][1:]]
  # No command evaluated twice: the later ones are at most as slow as the fastest first one.
  upper_bound = bool(firsts) and not laters
  laters = laters or [min(firsts or [0.0])]
  num_evals = epochs // eval_every if eval_every else 0
  first = commands[0] if commands else {}
  saves = speed_s.get("save_s") or [0.0]
  reports = [c["report_s"] for c in commands if c.get("report_s")]
  parts = {
      "start_to_first_step_s": first.get("to_first_step_s", 0.0),
      "steps_s": epochs * spe * images_per_step / speed_s["images_per_s"],
      "evaluations_s": (max(firsts) + (num_evals - 1) * statistics.median(laters)
                        if num_evals and firsts else 0.0),
      # The loop saves every `save_every` epochs and at the last step (periodic.itstime).
      "saves_s": math.ceil(epochs / max(save_every, 1)) * statistics.median(saves),
      "report_s": reports[-1] if reports else 0.0,
  }
  parts["total_s"] = sum(parts.values())
  parts["epochs"], parts["steps_per_epoch"] = epochs, spe
  parts["evaluations_upper_bound"] = upper_bound
  return parts


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--log", required=True)
  ap.add_argument("--step", required=True, help="step_speed JSON of the same config and batch")
  ap.add_argument("--gpu", default="", help="nvidia-smi samples: timestamp, utilization %, MiB")
  ap.add_argument("--recipe_epochs", type=int, default=0,
                  help="epochs of the whole recipe (default: num_epochs of the run)")
  ap.add_argument("--out", default="")
  args = ap.parse_args()

  with open(os.path.join(args.workdir, "config.json")) as f:
    config = json.load(f)
  info = read_jsonl(os.path.join(args.workdir, "run_info.jsonl"))[-1]
  spe, total = int(info["steps_per_epoch"]), int(info["total_steps"])
  images_per_step = 2 * config["batch"]["identities"] * config["batch"]["instances"]
  eval_every = int(config["eval"]["every_epochs"])
  rows = read_jsonl(os.path.join(args.workdir, "metrics.jsonl"))
  results = None
  if os.path.exists(os.path.join(args.workdir, "results.json")):
    with open(os.path.join(args.workdir, "results.json")) as f:
      results = json.load(f)
  with open(args.log) as f:
    commands = commands_from_log(f.read())
  with open(args.step) as f:
    step_report = json.load(f)
  timed = [r["images_per_s"] for r in step_report["results"] if r["batch"] == images_per_step]
  if not timed:
    raise SystemExit(f"{args.step} has no step timed at the run's batch of {images_per_step} "
                     "images: run benchmarks.step_speed with --batch={images_per_step}.")
  step_alone = max(timed)

  starts = [0] + [c["resumed_at"] for c in commands if "resumed_at" in c]
  measured = speed(rows, images_per_step, starts)
  summary = {
      "config": {"num_epochs_run": config["num_epochs"], "steps_per_epoch": spe,
                 "images_per_step": images_per_step, "eval_every_epochs": eval_every},
      "step_alone_images_per_s": step_alone,
      "main_job": measured,
      "ratio_to_step_alone": measured["images_per_s"] / step_alone if measured else None,
      "commands": commands,
      "continuity": continuity(rows, results, spe, total, eval_every,
                               int(config["eval"]["trials"])),
  }
  stops = [c for c in commands if "stopped_at" in c]
  resumes = [c for c in commands[1:] if "to_first_step_s" in c]
  summary["resume_to_first_step_s"] = [c["to_first_step_s"] for c in resumes]
  if args.gpu and os.path.exists(args.gpu):
    util, busy_clocks = [], []
    with open(args.gpu) as f:
      for line in f:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[1].replace(".", "").isdigit():
          util.append(float(parts[1]))
          # SM clock while the GPU is busy: lower late in a run means it was throttled.
          if len(parts) >= 4 and parts[3].isdigit() and float(parts[1]) >= 50:
            busy_clocks.append(float(parts[3]))
    if util:
      summary["gpu_utilization_samples"] = {"n": len(util), "median": statistics.median(util),
                                            "mean": statistics.fmean(util)}
    if busy_clocks:
      summary["gpu_sm_clock_mhz_when_busy"] = {"min": min(busy_clocks),
                                               "median": statistics.median(busy_clocks),
                                               "max": max(busy_clocks)}
  epochs = args.recipe_epochs or int(config["num_epochs"])
  if measured:
    summary["recipe"] = extrapolate(epochs, spe, images_per_step, measured, commands, eval_every,
                                  int(config.get("checkpoint_every_epochs", 1)))

  print(f"step alone: {step_alone:,.0f} images/s; main job between log lines: "
        f"{measured.get('images_per_s', float('nan')):,.0f} images/s over "
        f"{measured.get('intervals', 0)} intervals (median "
        f"{measured.get('images_per_s_median', float('nan')):,.0f}, "
        f"{measured.get('images_per_s_min', float('nan')):,.0f}-"
        f"{measured.get('images_per_s_max', float('nan')):,.0f}) = "
        f"{100 * (summary['ratio_to_step_alone'] or float('nan')):.1f}% of the step; "
        f"host CPU cores busy (median) {measured.get('host_cpu_cores_median', float('nan')):.1f}; "
        f"waiting for input (median) {100 * measured.get('input_wait_median', float('nan')):.0f}%")
  by_command = measured.get("images_per_s_by_command") or []
  if len(by_command) > 1:
    print("main job by command: " + ", ".join(
        f"{i} {v:,.0f}" if v else f"{i} -" for i, v in enumerate(by_command, 1)) + " images/s")
  for i, c in enumerate(commands, 1):
    evals = ", ".join(f"{e['seconds']:.1f}" for e in c["evals"])
    print(f"command {i}: exit {c.get('exit')}, wall {c.get('wall_s', 0):.1f} s, first step "
          f"{c.get('to_first_step_s', float('nan')):.1f} s after its start (compile + first run "
          f"{c.get('compile_and_first_step_s', float('nan')):.1f} s)"
          + (f", stopped at step {c['stopped_at']}" if "stopped_at" in c else "")
          + (f", resumed at step {c['resumed_at']}" if "resumed_at" in c else "")
          + (f"; evaluations {evals} s" if evals else "")
          + (f"; report {c['report_s']:.1f} s" if c.get("report_s") else ""))
  if measured.get("save_s"):
    print(f"checkpoint save pauses: median {statistics.median(measured['save_s']):.3f} s "
          f"(n={len(measured['save_s'])})")
  if stops:
    print(f"stops: {len(stops)}; resume to first step: "
          f"{', '.join(f'{s:.1f}' for s in summary['resume_to_first_step_s'])} s")
  if "gpu_utilization_samples" in summary:
    g = summary["gpu_utilization_samples"]
    print(f"GPU utilisation (nvidia-smi, {g['n']} samples over all commands): median "
          f"{g['median']:.0f}%, mean {g['mean']:.0f}%")
  if "gpu_sm_clock_mhz_when_busy" in summary:
    c = summary["gpu_sm_clock_mhz_when_busy"]
    print(f"GPU SM clock while >= 50% busy: {c['min']:.0f}-{c['max']:.0f} MHz, median "
          f"{c['median']:.0f}")
  print("continuity:", json.dumps(summary["continuity"]))
  if "recipe" in summary:
    r = summary["recipe"]
    print(f"whole recipe, {r['epochs']} epochs x {r['steps_per_epoch']} steps: "
          f"{r['total_s'] / 60:.1f} min = start {r['start_to_first_step_s']:.0f} s + steps "
          f"{r['steps_s']:.0f} s + evaluations {r['evaluations_s']:.0f} s + saves "
          f"{r['saves_s']:.0f} s + report {r['report_s']:.0f} s"
          + (" (no command evaluated twice: later evaluations taken as long as the fastest "
             "first one, an upper bound)" if r["evaluations_upper_bound"] else ""))
  if args.out:
    with open(args.out, "w") as f:
      json.dump(summary, f, indent=1)


if __name__ == "__main__":
  main()
