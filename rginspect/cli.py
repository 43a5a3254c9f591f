"""The `rginspect` command line: thin click wrappers over the Python API."""

from __future__ import annotations

import json
import shlex
import sys
import warnings
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import RGInspectError
from .training_settings import (
    FIELD_ANNEAL,
    FIELD_COUPLING_MASKS,
    FIELD_GROW_FRACTION,
    FIELD_RADIAL_BINS,
    FIELD_SPLINE_BINS,
    FIELD_TRAINING,
    GROW_FROM_L,
    IMAGE_TRAINING,
    TrainingSettings,
)

COMMAND_LINE = "rginspect.command_line"  # where the group keeps the command line in ctx.meta


class RGInspectGroup(click.Group):
    """Turns every RGInspectError into one `error:` line and its exit status, never a traceback;
    keeps the command line as given, for the results' CF `history`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[COMMAND_LINE] = shlex.join(["rginspect", *map(str, args)])
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RGInspectError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)


def _one_line_warnings(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


def _int_list(value: str) -> int | list[int]:
    """'8,6,4,2' -> [8, 6, 4, 2]; '2' -> 2 (as RG-Flow's --nlayers)."""
    try:
        numbers = [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an integer or a comma-separated list") from None
    return numbers[0] if len(numbers) == 1 else numbers


def _one_int(value: str, name: str, architecture: str = "NeuralRG") -> int:
    number = _int_list(value)
    if not isinstance(number, int):
        raise click.BadParameter(
            f"the {architecture} architecture takes one number, not {value!r}", param_hint=name
        )
    return number


@click.group(cls=RGInspectGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rginspect")
def main() -> None:
    """Open up trained renormalization-group flow models and show what they learned."""
    warnings.showwarning = _one_line_warnings


trust_option = click.option(
    "--trust-checkpoint",
    is_flag=True,
    help="Allow pickled code in the checkpoint to run (only for files from people you trust).",
)
format_option = click.option("--format", "format_name", help="Checkpoint format (default: detect).")
load_option = click.option(
    "--load",
    "load_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A loader option, as rginspect.load(..., KEY=VALUE) takes it (values read as Python "
    "literals: --load input_shape=[3,32,32]); repeat for several.",
)


def parse_load_options(items: tuple[str, ...]) -> dict[str, Any]:
    """--load KEY=VALUE options as keyword arguments for the loader."""
    from .engine import literal_value

    options = {}
    for item in items:
        key, equals, text = item.partition("=")
        if not (equals and key.strip().isidentifier()):
            raise click.BadParameter(f"{item!r}: write it as KEY=VALUE", param_hint="--load")
        options[key.strip()] = literal_value(text)
    return options


@main.command()
@click.argument("checkpoint")
@format_option
@load_option
@trust_option
@click.option("--json", "as_json", is_flag=True, help="Print the model card as JSON.")
def info(
    checkpoint: str,
    format_name: str | None,
    load_options: tuple[str, ...],
    trust_checkpoint: bool,
    as_json: bool,
) -> None:
    """Print the model card of CHECKPOINT: format, architecture, parameters, latents per level."""
    from .formats import load

    model = load(
        checkpoint,
        format=format_name,
        trust_checkpoint=trust_checkpoint,
        **parse_load_options(load_options),
    )
    card = model.info() | {"load_check": model.load_check}
    if as_json:
        click.echo(json.dumps(card, indent=2))
        return
    for key in (
        "format",
        "architecture",
        "domain",
        "data_shape",
        "n_levels",
        "latents_per_level",
        "parameters",
        "dtype",
        "prior",
        "action",
        "load_check",
    ):
        click.echo(f"{key:>18}: {card[key]}")
    training = card["provenance"].get("training")
    if training:
        click.echo(
            f"{'trained':>18}: {training.get('command')} -> {training.get('loss_unit')} "
            f"{training.get('final_loss'):.4g}"
        )


EXIT_INTERRUPTED = 130  # as a shell reports SIGINT

DEMO = [("msds1_rgflow.pt", "msds1:256"), ("phi4_L16.pt", None)]


def analysis_options(command):
    """The options `run` and `sweep` share: what to run, on which data, with which parameters."""
    options = [
        click.option(
            "--plugins", help="Analyses: a,b,... or all (default: the config's plugins, or all)."
        ),
        click.option(
            "--data",
            help="msds1[:N], msds2[:N], digits, folder:PATH, npz:PATH or model (default: the "
            "data the checkpoint records it was trained on, when rginspect can make them).",
        ),
        click.option(
            "--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder."
        ),
        click.option(
            "-p", "overrides", multiple=True, metavar="NAME.PARAM=VALUE", help="Set a parameter."
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="TOML file: plugins and data keys, a [load] table of loader options and one "
            "[analysis] table of parameters each (command-line options take precedence).",
        ),
        format_option,
        load_option,
        click.option("--seed", default=0, show_default=True),
        click.option(
            "--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N (docs/gpu.md)."
        ),
        click.option(
            "--samples",
            type=click.IntRange(min=1),
            help="Data inputs the run prepares: MSDS images made, the first N of stored data, or "
            "model/HMC samples (default: the most that a selected analysis asks for).",
        ),
        trust_option,
        click.option(
            "--resume", is_flag=True, help="Reuse finished analyses with the same inputs."
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            help="Stop an analysis after this many seconds (it is reported as failed).",
        ),
        click.option(
            "--max-memory",
            type=click.FloatRange(min=0, min_open=True),
            metavar="GIB",
            help="Refuse analyses expected to need more (default: the memory available on the "
            "device: free GPU memory with --device cuda).",
        ),
        click.option("--quiet", is_flag=True, help="No progress bars."),
        click.option(
            "--raise",
            "raise_errors",
            is_flag=True,
            help="Stop at the first analysis that fails, with its full traceback (what finished "
            "before stays in results.nc; without --raise the traceback is kept in its group).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run_settings(data: str | None, options: dict[str, Any]):
    """The RunSettings of `run`, `sweep` or `compare`: the command line over the config file."""
    from .engine import RunSettings, read_config

    config = read_config(options["config_file"])
    return RunSettings(
        plugins=options["plugins"] or config.plugins or "all",
        data=data if data is not None else config.data,
        format=options["format_name"],
        load_options=config.load | parse_load_options(options["load_options"]),
        history=click.get_current_context().meta.get(COMMAND_LINE, "rginspect"),
        overrides=options["overrides"],
        config_file=options["config_file"],
        seed=options["seed"],
        device=_device(options["device"]),
        samples=options["samples"],
        trust_checkpoint=options["trust_checkpoint"],
        resume=options["resume"],
        progress=not options["quiet"],
        timeout=options["timeout"],
        max_memory=int(options["max_memory"] * 2**30) if options["max_memory"] else None,
        raise_errors=options["raise_errors"],
    )


@main.command("run")
@click.argument("checkpoints", nargs=-1)
@click.option("--demo", is_flag=True, help="Run on the bundled demo checkpoints.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Checkpoints analysed at once, each in its own process with its share of the CPUs "
    "(default: 1; with --demo, one per demo checkpoint up to the CPU count).",
)
@analysis_options
def run_command(checkpoints, demo, jobs, out, data, **options) -> None:
    """Run analyses on each CHECKPOINT and write results.nc and report.html per checkpoint."""
    from .engine import folder_name
    from .machine import usable_cpus

    runs = [(checkpoint, data) for checkpoint in checkpoints]
    if demo:
        assets = Path(__file__).parent / "assets"
        runs += [(str(assets / name), data or demo_data) for name, demo_data in DEMO]
    if not runs:
        raise click.UsageError("give a CHECKPOINT (or several), or --demo")
    cpus = usable_cpus()
    jobs = min(jobs or (min(len(DEMO), cpus) if demo else 1), len(runs))
    planned = []
    for position, (checkpoint, run_data) in enumerate(runs):
        stem = folder_name(checkpoint)
        target = (out / stem if len(runs) > 1 else out) if out else Path("reports") / stem
        settings = _run_settings(run_data, options)
        if jobs > 1:  # one bar per process, on lines of its own
            settings = replace(settings, bar_position=position % jobs)
        planned.append((checkpoint, target, settings))
    status = 0
    try:
        if jobs == 1:
            for run in planned:
                status = max(status, _echo_run(*_run_one(*run)))
        else:
            status = _run_in_processes(
                planned, jobs, threads=max(1, cpus // jobs), device=planned[0][2].device
            )
    except KeyboardInterrupt:
        click.echo(
            "interrupted: the analyses that finished are in each run's results.nc; rerun the "
            "same command with --resume to complete the rest",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(status)


def _run_one(checkpoint: str, target: Path, settings) -> tuple[int, list[tuple[str, bool]]]:
    """One checkpoint of `run`: its exit status and the lines to print (text, to stderr)."""
    from .engine import run_checkpoint

    try:
        result = run_checkpoint(checkpoint, target, settings)
    except RGInspectError as error:  # the other checkpoints still run
        return error.exit_code, [(f"error: {error}", True)]
    lines = [
        (f"{outcome.status}: {outcome.name}: {outcome.message}", True)
        for outcome in result.outcomes
        if outcome.status in ("failed", "skipped")
    ]
    return (1 if result.failed else 0), [*lines, (f"report: {result.report_path}", False)]


def _echo_run(status: int, lines: list[tuple[str, bool]]) -> int:
    for text, to_stderr in lines:
        click.echo(text, err=to_stderr)
    return status


def _run_in_processes(planned: list[tuple], jobs: int, threads: int, device: str = "cpu") -> int:
    """Each checkpoint in a worker with `threads` torch threads; output in run order. Workers
    are forked, or spawned when they use CUDA (a forked child cannot start CUDA again)."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from . import plugin_manager
    from .device import worker_start_method
    from .machine import follow_parent

    method = worker_start_method(device)
    if method == "fork":
        plugin_manager.available_analyses()  # imported once, before the workers fork
    pool = ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context(method),
        initializer=follow_parent,
        initargs=(os.getpid(), 0, threads),
    )
    try:
        futures = [(run[0], pool.submit(_run_one, *run)) for run in planned]
        return max(_echo_run(*_worker_result(checkpoint, future)) for checkpoint, future in futures)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _worker_result(checkpoint: str, future) -> tuple[int, list[tuple[str, bool]]]:
    """A worker's status and lines; a crash in it (not an RGInspectError, which _run_one turns
    into lines) is one error line for its checkpoint, and the other checkpoints go on."""
    try:
        return future.result()
    except Exception as error:
        first_line = f"{type(error).__name__}: {error}".splitlines()[0]
        return 1, [(f"error: {checkpoint}: {first_line}", True)]


@main.command("sweep")
@click.argument("checkpoints", nargs=-1)
@analysis_options
@click.option(
    "--scheduler",
    metavar="local[:N]|tcp://HOST:PORT",
    help="Run every (checkpoint, analysis) as a Dask task: on a local cluster of N "
    "one-thread workers (with --device cuda, one per GPU unless N says more, each worker on "
    "a GPU of its own, in turn), or on a running cluster. Default: one after another.",
)
@click.option(
    "--train",
    "train_kind",
    type=click.Choice(["field"]),
    help="First train one model per coupling (ranges as START:STOP:COUNT), then analyse.",
)
@click.option("--action", "action_name", type=click.Choice(["phi4", "ising", "xy"]))
@click.option("--size", "L", default=16, show_default=True, help="Lattice size for --train.")
@click.option("--kappa", help="φ⁴ κ, or a range START:STOP:COUNT.")
@click.option("--lamb", help="φ⁴ λ, or a range.")
@click.option("--temperature", help="Ising T, or a range.")
@click.option("--beta", help="XY β, or a range.")
@click.option(
    "--steps", default=FIELD_TRAINING.steps, show_default=True, help="Training steps per model."
)
def sweep_command(
    checkpoints, out, data, scheduler, train_kind, action_name, L, steps, **options
) -> None:
    """Run analyses on every CHECKPOINT (or on models trained first with --train) and combine
    their scalar results along a checkpoint dimension, with the couplings each one recorded
    (κ, λ, T, β, L, steps, epoch) as coordinates."""
    from .sweep import plan_sweep, run_sweep

    out = out or Path("reports") / "sweep"
    couplings = {key: options.pop(key) for key in ("kappa", "lamb", "temperature", "beta")}
    if train_kind is None and not checkpoints:
        raise click.UsageError("give CHECKPOINTs, or --train field with an action and couplings")
    settings = replace(_run_settings(data, options), strict=False)
    with _executor(scheduler, settings.device) as client:
        if client is not None:
            from .distributed import task_device

            settings = replace(settings, device=task_device(scheduler, settings.device))
        if train_kind:
            jobs = _training_jobs(action_name, L, couplings, steps, out / "models", settings.device)
            trained = _train_all(client, jobs)
            checkpoints = [*checkpoints, *(path for path in trained if path)]
            for job, path in zip(jobs, trained, strict=True):
                if path is None:
                    click.echo(f"error: training failed: {job['out']} ({job['action']})", err=True)
        if not checkpoints:
            raise RGInspectError("no model was trained; see the errors above")
        if client is None:
            jobs = plan_sweep(checkpoints, out, settings)
            map_jobs = map
        else:
            from .distributed import dask_map
            from .plugin_manager import available_analyses

            names = (
                settings.plugins.split(",")
                if settings.plugins != "all"
                else list(available_analyses())
            )
            jobs = plan_sweep(checkpoints, out, settings, analyses=names, threads=1)
            map_jobs = dask_map(client)
        try:
            outcomes, sweep_path = run_sweep(jobs, out, map_jobs)
        except KeyboardInterrupt:
            click.echo(
                f"interrupted: finished checkpoints are in {out}; rerun the same command with "
                "--resume to complete the sweep",
                err=True,
            )
            sys.exit(EXIT_INTERRUPTED)
    status = max(1 if train_kind and None in trained else 0, _echo_outcomes(outcomes))
    if sweep_path is None:
        raise RGInspectError("no checkpoint of the sweep could be analysed; see the errors above")
    click.echo(f"sweep: {sweep_path} and {sweep_path.with_name('sweep.html')}")
    sys.exit(status)


DEMO_COMPARISON = ("msds1_rgflow.pt", "msds1_glow.pt")
DEMO_COMPARISON_SETTINGS = {
    "plugins": "likelihood,receptive,inpaint,disentangle",
    "data": "msds1:2000",
    # bits/dim on all 2000 images, the inputs disentangle reads
    "overrides": ("inpaint.mask=square:4;square:8", "likelihood.inputs=2000"),
}


@main.command("compare")
@click.argument("checkpoints", nargs=-1)
@click.option(
    "--demo",
    is_flag=True,
    help="Compare the bundled RG-Flow and Glow MSDS1 models (likelihood, receptive, inpaint of a "
    "4×4 and an 8×8 hole, disentangle, all on msds1:2000).",
)
@analysis_options
@click.pass_context
def compare_command(ctx, checkpoints, demo, out, data, **options) -> None:
    """Run the same analyses with the same data and seed on every CHECKPOINT and write one report
    that puts them side by side (compare.html), with their results in one file (compare.nc: the
    scalars along a model dimension, each model's results in its own group)."""
    from click.core import ParameterSource

    from .compare import COMPARE_REPORT, run_compare

    if demo:
        assets = Path(__file__).parent / "assets"
        checkpoints = (*checkpoints, *(str(assets / name) for name in DEMO_COMPARISON))
        data = data or DEMO_COMPARISON_SETTINGS["data"]
        for key in ("plugins", "overrides"):  # the demo's, unless given on the command line
            if ctx.get_parameter_source(key) is ParameterSource.DEFAULT:
                options[key] = DEMO_COMPARISON_SETTINGS[key]
    if len(checkpoints) < 2:
        raise click.UsageError("give two or more CHECKPOINTs to compare, or --demo")
    out = out or Path("reports") / ("compare_demo" if demo else "compare")
    settings = _run_settings(data, options)
    try:
        outcomes, compare_path = run_compare(checkpoints, out, settings)
    except KeyboardInterrupt:
        click.echo(
            f"interrupted: the models that finished are in {out}; rerun the same command with "
            "--resume to complete the comparison",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    status = _echo_outcomes(outcomes)
    if compare_path is None:
        raise RGInspectError("no model of the comparison could be analysed; see the errors above")
    click.echo(f"comparison: {compare_path} and {compare_path.with_name(COMPARE_REPORT)}")
    sys.exit(status)


def _echo_outcomes(outcomes) -> int:
    """One line per checkpoint that failed to load or had analyses fail; the exit status."""
    status = 0
    for outcome in outcomes:
        if outcome.error:
            click.echo(f"error: {outcome.error}", err=True)
            status = 1
        elif outcome.failed_analyses:
            click.echo(
                f"failed: {outcome.checkpoint}: {', '.join(outcome.failed_analyses)} "
                f"(see {outcome.results_path.parent / 'report.html'})",
                err=True,
            )
            status = 1
    return status


@contextmanager
def _executor(scheduler: str | None, device: str):
    if scheduler is None:
        yield None
        return
    from .distributed import dask_client

    with dask_client(scheduler, echo=click.echo, device=device) as client:
        yield client


def _train_all(client, jobs: list[dict[str, Any]]) -> list[str | None]:
    """Train every job (on the cluster when there is one); the checkpoint each wrote, or None."""
    from .distributed import run_training, train_many

    if client is not None:
        return train_many(client, jobs)
    trained = []
    for job in jobs:
        try:
            trained.append(run_training(job, threads=None))
        except RGInspectError as error:
            click.echo(f"error: {error}", err=True)
            trained.append(None)
    return trained


def _training_jobs(
    action: str | None,
    L: int,
    couplings: dict[str, str | None],
    steps: int,
    folder: Path,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """One `train_field_checkpoint` job (its keyword arguments, TrainingSettings' fields among
    them) per point of the coupling grid."""
    if action is None:
        raise click.UsageError("--train field needs --action (and its couplings)")
    grid = [{}]
    for name, text in couplings.items():
        if text is not None:
            grid = [
                point | {name: value} for point in grid for value in _coupling_values(name, text)
            ]
    names = {"temperature": "T"}  # the action's own names for the CLI's couplings
    jobs = []
    for point in grid:
        label = "_".join(f"{name[0]}{value:g}" for name, value in point.items())
        parameters = {names.get(name, name): value for name, value in point.items()}
        jobs.append(
            {
                "out": str(folder / f"{action}_L{L}_{label}.pt"),
                "steps": steps,
                "device": device,
                "action": {"name": action, "L": L, **parameters},
            }
        )
    return jobs


def _coupling_values(name: str, text: str) -> list[float]:
    """'0.1:0.7:13' -> 13 evenly spaced values from 0.1 to 0.7; '0.5' -> [0.5]."""
    import numpy as np

    try:
        parts = [float(part) for part in text.split(":")]
        if len(parts) == 1:
            return parts
        start, stop, count = parts
        if count < 1 or count != int(count):
            raise ValueError
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: write a number or START:STOP:COUNT", param_hint=f"--{name}"
        ) from None
    return [round(float(v), 6) for v in np.linspace(start, stop, int(count))]


@main.command("plugins")
def plugins_command() -> None:
    """List every registered analysis and checkpoint format."""
    from .plugin_manager import provided

    analyses = provided("rginspect_analyses")  # a broken plugin fails here, before any output
    formats = provided("rginspect_checkpoint_formats")
    click.echo("analyses:")
    for analysis, source in analyses:
        domains = "/".join(analysis.domains)
        click.echo(f"  {analysis.name:<14} {analysis.description}  [{domains}; from {source}]")
        for key, parameter in analysis.parameters.items():
            click.echo(
                f"      {analysis.name}.{key} ({parameter.type.__name__}, default "
                f"{parameter.default!r}): {parameter.help}"
            )
    click.echo("checkpoint formats:")
    for checkpoint_format, source in formats:
        click.echo(
            f"  {checkpoint_format.name:<14} {checkpoint_format.description}  [from {source}]"
        )


@main.command("report")
@click.argument("results", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file (default: report.html beside RESULTS).",
)
def report_command(results: Path, out: Path | None) -> None:
    """Re-render the report from stored RESULTS (a results.nc or its folder), without the model.
    Exits 1, with a line each, when analyses cannot be drawn (their plugin is not installed, or
    its renderer fails); the report still shows every other section."""
    from .report.build import read_report

    if results.is_dir():
        results = results / "results.nc"
    report = read_report(results)
    path = report.write(out or results.with_name("report.html"))
    for name, why in report.undrawn.items():
        click.echo(f"cannot draw: {name}: {why}", err=True)
    click.echo(f"report: {path}")
    sys.exit(1 if report.undrawn else 0)


@main.group()
def train() -> None:
    """Train a small RG flow and write a native checkpoint."""


def training_options(defaults: Any):
    """The options `train image` and `train field` share, with that command's defaults (a
    TrainingSettings)."""

    def sizes(value: int | list[int]) -> str:
        return ",".join(map(str, value)) if isinstance(value, list) else str(value)

    options = [
        click.option("--steps", default=defaults.steps, show_default=True, help="Optimizer steps."),
        click.option(
            "--batch-size",
            default=defaults.batch_size,
            show_default=True,
            help="Samples per step (train field: on an 8×8 lattice; L×L draws (8/L)² times as many).",
        ),
        click.option("--lr", default=defaults.lr, show_default=True, help="Learning rate."),
        click.option("--seed", default=defaults.seed, show_default=True),
        click.option("--device", default="cpu", show_default=True, help="cpu or cuda."),
        click.option(
            "--nlayers",
            default=sizes(defaults.nlayers),
            show_default=True,
            help="Couplings per block (n or a,b,..).",
        ),
        click.option(
            "--nmlp",
            default=sizes(defaults.nmlp),
            show_default=True,
            help="Hidden layers per conditioner.",
        ),
        click.option(
            "--nhidden",
            default=sizes(defaults.nhidden),
            show_default=True,
            help="Conditioner width.",
        ),
        click.option(
            "--nresblocks",
            default=sizes(defaults.nresblocks),
            show_default=True,
            help="Residual blocks (rgflow).",
        ),
        click.option(
            "-o",
            "--out",
            type=click.Path(dir_okay=False, path_type=Path),
            required=True,
            help="Where to write the checkpoint (.pt or .safetensors).",
        ),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]

    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


@train.command("image")
@click.option(
    "--data", default="msds1:10000", show_default=True, help="msds1[:N], msds2[:N], digits..."
)
@click.option(
    "--architecture",
    type=click.Choice(["rgflow", "glow"]),
    default="rgflow",
    show_default=True,
    help="rgflow: RG-Flow's MERA, a native checkpoint; glow: a normflows Glow (nlayers Glow "
    "steps per level, nhidden coupling channels; sigmoid_inv scales, so decoding is bounded), a "
    "normflows checkpoint.",
)
@click.option("--kernel", default=4, show_default=True, help="Block size K of the MERA (rgflow).")
@click.option(
    "--prior",
    type=click.Choice(["laplace", "gaussian"]),
    default="laplace",
    show_default=True,
    help="Latent prior (rgflow; a Glow learns a Gaussian per level and channel).",
)
@click.option(
    "--levels",
    type=click.IntRange(min=1),
    help="Multiscale levels (glow; default: down to a 2×2 top level).",
)
@click.option("--weight-decay", default=5e-2, show_default=True)
@training_options(IMAGE_TRAINING)
@click.pass_context
def train_image_command(
    ctx, data, architecture, kernel, prior, levels, weight_decay, **options
) -> None:
    """Maximum likelihood on image data, RG-Flow or Glow (bits/dim logged)."""
    from click.core import ParameterSource

    from .train import train_image_checkpoint

    other = {"rgflow": ("levels",), "glow": ("kernel", "nresblocks", "prior", "nmlp")}
    given = [
        name
        for name in other[architecture]
        if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
    ]
    if given:
        raise click.UsageError(
            f"--architecture {architecture} does not take --{', --'.join(given)}"
        )
    layers = _layer_settings(options)
    if architecture == "glow":
        for key in ("nlayers", "nhidden"):
            layers[key] = _one_int(options[key], f"--{key}", "Glow")
    model = train_image_checkpoint(
        options["out"],
        _training_settings(options, layers),
        data=data,
        architecture=architecture,
        kernel=kernel,
        prior=prior,
        levels=levels,
        weight_decay=weight_decay,
    )
    _report_written(model, options["out"])


@train.command("field")
@click.option("--action", "action_name", type=click.Choice(["phi4", "ising", "xy"]), required=True)
@click.option("--size", "L", default=16, show_default=True, help="Lattice size L (a power of 2).")
@click.option("--kappa", type=float, help="φ⁴ hopping parameter κ.")
@click.option("--lamb", type=float, help="φ⁴ coupling λ.")
@click.option("--temperature", "T", type=float, help="Ising temperature T.")
@click.option("--beta", type=float, help="XY inverse temperature β.")
@click.option(
    "--architecture",
    type=click.Choice(["rgflow", "neuralrg"]),
    default="rgflow",
    show_default=True,
    help="rgflow: all channels of a K×K block in one bijector; neuralrg: as NeuralRG (2×2, MLPs).",
)
@click.option("--kernel", default=2, show_default=True, help="Block size K (rgflow).")
@click.option("--nrepeat", default=1, show_default=True, help="MERA layers per level (neuralrg).")
@click.option(
    "--anneal",
    default=FIELD_ANNEAL,
    show_default=True,
    help="Fraction of the steps over which the action's weight rises from 0.2 to 1.",
)
@click.option(
    "--coupling-masks",
    default=FIELD_COUPLING_MASKS,
    show_default=True,
    help="rgflow: checkerboard, or checkerboard+components to split each site's components too.",
)
@click.option(
    "--radial-bins",
    default=FIELD_RADIAL_BINS,
    show_default=True,
    help="rgflow: bins of the per-site radial spline (U(1)-equivariant); 0 for none.",
)
@click.option(
    "--spline-bins",
    default=FIELD_SPLINE_BINS,
    show_default=True,
    help="rgflow: rational-quadratic spline couplings of this many bins; 0 for affine.",
)
@click.option(
    "--quality-samples",
    default=4096,
    show_default=True,
    type=click.IntRange(min=2),
    help="Own samples the recorded sampler quality is measured on (the mixed one encodes each "
    "once per symmetry it mixes over, 16 on an O(2) field: fewer make a quick model quicker).",
)
@click.option(
    "--grow-fraction",
    default=FIELD_GROW_FRACTION,
    show_default=True,
    help=f"rgflow, L > {GROW_FROM_L}: share of the steps trained on L={GROW_FROM_L} first.",
)
@training_options(FIELD_TRAINING)
def train_field_command(
    action_name,
    L,
    kappa,
    lamb,
    T,
    beta,
    architecture,
    kernel,
    nrepeat,
    anneal,
    quality_samples,
    **options,
) -> None:
    """Reverse KL from a lattice action, as NeuralRG: no data needed."""
    from .train import train_field_checkpoint

    parameters = {"phi4": {"kappa": kappa, "lamb": lamb}, "ising": {"T": T}, "xy": {"beta": beta}}
    needed = parameters[action_name]
    missing = [
        f"--{'temperature' if name == 'T' else name}" for name, v in needed.items() if v is None
    ]
    if missing:
        raise click.UsageError(f"--action {action_name} needs {' and '.join(missing)}")
    layers = _layer_settings(options)
    if architecture == "neuralrg":
        for key in ("nlayers", "nmlp", "nhidden"):
            layers[key] = _one_int(options[key], f"--{key}")
    model = train_field_checkpoint(
        options["out"],
        _training_settings(options, layers),
        action={"name": action_name, "L": L, **needed},
        architecture=architecture,
        kernel=kernel,
        nrepeat=nrepeat,
        anneal=anneal,
        **{key: options.pop(key) for key in ("coupling_masks", "radial_bins", "spline_bins")},
        grow_fraction=options.pop("grow_fraction"),
        quality_samples=quality_samples,
    )
    _report_written(model, options["out"])


def _layer_settings(options: dict[str, Any]) -> dict[str, int | list[int]]:
    return {key: _int_list(options[key]) for key in ("nlayers", "nresblocks", "nmlp", "nhidden")}


def _training_settings(options: dict[str, Any], layers: dict[str, int | list[int]]):
    return TrainingSettings(
        **layers,
        **{key: options[key] for key in ("steps", "batch_size", "lr", "seed")},
        device=_device(options["device"]),
        progress=not options["quiet"],
    )


def _device(name: str) -> str:
    from .device import resolve_device

    return str(resolve_device(name))


def _report_written(model, out: Path) -> None:
    training = model.provenance["training"]
    click.echo(f"wrote {out} ({training['loss_unit']} {training['final_loss']:.4g})")


if __name__ == "__main__":
    sys.exit(main())
