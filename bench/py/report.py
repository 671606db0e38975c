"""Turns the benchmark's measurements into its results, for bench/run.sh: every figure
(median, min and max of its runs), the issue's targets marked met or short, written to
RESULTS.md with a PNG chart of the ratios, and the tables printed.

  report.py FIGURES.tsv NOTES.tsv OUT_DIR

FIGURES.tsv lines: KEY SERVER UNIT VALUE (UNIT "fail" or "na": VALUE is the reason).
NOTES.tsv lines: NAME TEXT (the machine, the versions, the knobs).
"""

import os
import statistics
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MEMORY_LIMIT_MIB = 128
LABELS = {
    "get": "raw GET (curl, signed)", "cat": "cat through our mount", "rclone": "cat through rclone mount",
    "s3fs": "cat through s3fs-fuse", "python": "Python startifact", "cli": "our startifact --stage",
    "cp": "cp into our mount", "rsync": "rsync -a into our mount",
    "cli1": "our startifact --stage --multipart-threshold 5G (one request a region)",
    "cp1": "cp into our mount with --multipart-threshold 5G (one request a region)", "put1": "one raw PUT (curl)",
    "put3": "three raw PUTs at once (curl)", "mount-cold": "re-read through the mount, page cache dropped",
    "local-cold": "local file, page cache dropped", "mount-warm": "re-read through the mount, page cache warm",
    "local-warm": "local file, page cache warm",
}


class Figure:
    def __init__(self, key, server):
        self.key, self.server, self.unit = key, server, ""
        self.values, self.failures, self.na = [], [], []

    @property
    def ok(self):
        return bool(self.values)

    def median(self):
        return statistics.median(self.values)

    def describe(self):
        parts = self.key.split(".")
        if parts[0] in ("read", "stage", "cache"):
            what = {"read": "cold read", "stage": "stage to 3 regions", "cache": "cached"}[parts[0]]
            return f"{what} {parts[1]}: {LABELS.get(parts[2], parts[2])}"
        if parts[0] == "mem":
            return "daemon peak RSS (VmHWM), " + " ".join(parts[1:])
        if parts[0] == "meta":
            call = {"ls-cold": "ls, cold (the first listing on a fresh mount)",
                    "ls-warm": "ls, warm", "ls-local": "the same listing of a local folder (the bound of ls)",
                    "readlink": "readlink latest, warm",
                    "stat": "stat of the latest version's file, warm",
                    "readlink16": "readlink latest, warm, 16 processes at once",
                    "stat16": "stat of the latest version's file, warm, 16 processes at once",
                    "readlink16-local": "readlink of a local symlink, 16 processes at once",
                    "stat16-local": "stat of a local file, 16 processes at once",
                    "list-raw": "the same listing with boto3, straight from the server"}.get(parts[1], parts[1])
            return f"many versions: {call}" + (f", {parts[2]}" if len(parts) > 2 else "")
        if parts[0] == "random":
            return f"random 4 KiB reads, {parts[1]}"
        return describe_more(parts) or self.key


def load(path):
    figures = OrderedDict()
    with open(path) as f:
        for line in f:
            key, server, unit, value = line.rstrip("\n").split("\t", 3)
            figure = figures.setdefault((key, server), Figure(key, server))
            if unit == "fail":
                figure.failures.append(value)
            elif unit == "na":
                figure.na.append(value)
            else:
                figure.unit = unit
                try:
                    figure.values.append(float(value))
                except ValueError:
                    figure.failures.append(f"unreadable value {value!r}")
    return figures


def targets(figures):
    """(target, server, ratio text, value, op, limit, status) for each target that applies."""
    rows = []
    servers = OrderedDict((s, None) for (_, s) in figures)
    sizes = OrderedDict((k.split(".")[1], None) for (k, _) in figures if k.split(".")[0] in ("read", "stage", "cache"))

    def get(key, server):
        return figures.get((key, server))

    def ratio(name, server, num, den, op, limit, how):
        a, b = get(num, server), get(den, server)
        if a is None or b is None or (a.na and not a.values):
            return
        if not (a.ok and b.ok):
            rows.append((name, server, how, None, op, limit, "failed"))
            return
        value = a.median() / b.median()
        met = value >= limit if op == ">=" else value <= limit if op == "<=" else value < limit
        failed = len(a.failures) + len(b.failures)
        status = ("met" if met else "short") + (f" ({failed} runs failed)" if failed else "")
        rows.append((name, server, how, value, op, limit, status))

    for server in servers:
        for size in sizes:
            s = f"stage.{size}"
            # cp1 and cli1: the same with one request a region (--multipart-threshold 5G),
            # which shows what the completion of a multipart upload costs the server.
            for tool in ("cp", "cli", "cp1", "cli1"):
                ratio(f"stage {size}: {tool} ≤1.2x three raw PUTs at once", server, f"{s}.{tool}", f"{s}.put3",
                      "<=", 1.2, f"{tool} / 3 PUTs")
                ratio(f"stage {size}: {tool} faster than Python", server, f"{s}.{tool}", f"{s}.python",
                      "<", 1.0, f"{tool} / Python")
            r = f"read.{size}"
            ratio(f"cold read {size}: ≥0.9x raw GET speed", server, f"{r}.get", f"{r}.cat", ">=", 0.9, "GET / cat")
            for peer in ("rclone", "s3fs"):
                ratio(f"cold read {size}: ≥2x faster than {peer}", server, f"{r}.{peer}", f"{r}.cat",
                      ">=", 2.0, f"{peer} / cat")
            cat = get(f"{r}.cat", server)
            if cat is not None:
                if cat.ok:
                    worst = max(cat.values) / cat.median()
                    rows.append((f"cold read {size}: no run >1.5x the median", server, "slowest / median", worst,
                                 "<=", 1.5, "met" if worst <= 1.5 else "short"))
                else:
                    rows.append((f"cold read {size}: no run >1.5x the median", server, "slowest / median", None,
                                 "<=", 1.5, "failed"))
            for state in ("cold", "warm"):
                c = f"cache.{size}"
                ratio(f"cached re-read {size} (page cache {'dropped' if state == 'cold' else 'warm'}): "
                      "≥0.8x local disk", server, f"{c}.local-{state}", f"{c}.mount-{state}",
                      ">=", 0.8, "local / mount")
        for call in ("ls-warm", "readlink", "stat"):
            f = get(f"meta.{call}.p50", server)
            if f is not None:
                value = f.median() if f.ok else None
                status = "failed" if value is None else "met" if value < 1.0 else "short"
                how = "ms"
                local = get("meta.ls-local.p50", server)
                if call == "ls-warm" and local is not None and local.ok:
                    how = f"ms (a local folder of as many entries: {fmt(local.median())} ms)"
                rows.append((f"warm {call.replace('-warm', '')} p50 < 1 ms", server, how, value, "<", 1.0, status))
        for call in ("readlink16", "stat16"):
            f = get(f"meta.{call}.p99", server)
            if f is not None:
                value = f.median() if f.ok else None
                status = "failed" if value is None else "met" if value < 0.1 else "short"
                local = get(f"meta.{call}-local.p99", server)
                how = "ms" if local is None or not local.ok else f"ms (local: {fmt(local.median())} ms)"
                rows.append((f"warm {call[:-2]} from 16 processes p99 < 0.1 ms", server, how, value, "<", 0.1,
                             status))
        for (key, srv), f in figures.items():
            if srv == server and key.startswith("mem."):
                value = max(f.values) if f.values else None
                status = "failed" if value is None else "met" if value <= MEMORY_LIMIT_MIB else "short"
                rows.append((f"daemon peak RSS ≤128 MiB: {key[4:]}", server, "MiB (max)", value, "<=",
                             MEMORY_LIMIT_MIB, status))
    return rows


# What each figure runs (MNT our mount, PEER_MNT rclone's or s3fs's, V a version, FILE
# the local random file, S3 the server's URL); kept beside the code in bench/*.sh.
COMMANDS = """\
cold read (page cache dropped before each, every mount fresh):
  curl --aws-sigv4 aws:amz:us-east-1:s3 --user testing:testing -o /dev/null S3/bench-us-east-1/Read@V
  startifact-fs -f aws MNT;  cat MNT/Read/V/Read@V > /dev/null
  rclone mount bench:bench-us-east-1 PEER_MNT --read-only;  cat PEER_MNT/Read@V > /dev/null
  s3fs bench-us-east-1 PEER_MNT -f -o url=S3,use_path_request_style,passwd_file=F,ro;  cat PEER_MNT/Read@V > /dev/null
  venv/bin/startifact Read V --download DOWNLOADED_FILE
cached re-read:
  startifact-fs -f --cache-dir EMPTY aws MNT;  cat MNT/Read/V/Read@V (untimed);  then, timed:
  drop caches; cat MNT/Read/V/Read@V;  drop caches; cat FILE;  cat MNT/Read/V/Read@V;  cat FILE
stage to us-east-1,us-west-2,eu-west-2 (a new version V each time):
  venv/bin/startifact Stage V --stage FILE;  startifact Stage V --stage FILE
  startifact Stage V --stage FILE --multipart-threshold 5G   (cli1: one request a region)
  startifact-fs -f --staging-dir DIR aws MNT;  mkdir MNT/Stage/V;  cp FILE MNT/Stage/V/   (or rsync -a)
  the same cp with startifact-fs --multipart-threshold 5G   (cp1)
  curl --aws-sigv4 aws:amz:us-east-1:s3 -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -T FILE S3/bench-us-east-1/raw-V
  the same PUT to each region's bucket, three curls at once
metadata (one Python process, each call timed with time.perf_counter_ns):
  os.listdir(MNT/Meta) once on a fresh mount (cold), then LS_CALLS times (warm)
  os.listdir(LOCAL) LS_CALLS times, LOCAL a local folder of as many entries (the bound)
  os.readlink(MNT/Meta/latest) and os.stat(MNT/Meta/LATEST/FILE_NAME), CALLS times each
  PROCESSES (16) processes at once, each CALLS x (os.readlink(MNT/Meta/latest), then
  os.stat(MNT/Meta/LATEST/FILE_NAME)); the same on LOCAL/latest and a local file
random reads: os.pread(fd, 4096, offset) at RANDOM_READS offsets of random.Random(42)
memory: VmHWM in /proc/PID/status of the startifact-fs process after each case
"""


def fmt(v):
    if v is None:
        return "-"
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def figure_rows(figures):
    rows = []
    for f in figures.values():
        if f.na and not f.values:
            rows.append((f.describe(), f.server, "n/a", "", "", "", "", "; ".join(sorted(set(f.na)))))
            continue
        note = "; ".join(f"failed: {r}" for r in sorted(set(f.failures)))
        if f.key.startswith("read.") and f.key.endswith(".cat") and f.values:
            slow = [v for v in f.values if v > 1.5 * f.median()]
            if slow:
                note = "; ".join(x for x in (note, f"runs >1.5x the median: {slow}") if x)
        if not f.values:
            rows.append((f.describe(), f.server, "failed", "", "", "", f.unit, note))
            continue
        rows.append((f.describe(), f.server, fmt(f.median()), fmt(min(f.values)), fmt(max(f.values)),
                     str(len(f.values)), f.unit, note))
    return rows


def servers_rows(figures):
    """Each time figure measured on both servers: moto's median, s3s-fs's, and their ratio."""
    rows = []
    for (key, server), f in figures.items():
        other = figures.get((key, "s3s"))
        if server != "moto" or other is None or not (f.ok and other.ok) or f.unit not in ("s", "ms"):
            continue
        rows.append((f.describe(), f.unit, fmt(f.median()), fmt(other.median()), f"{other.median() / f.median():.2f}"))
    return rows


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- CPU seconds per GiB, and the load phase: kept apart from the rest -----------------

LOAD_READERS = 8  # the artifacts bench/load.sh reads at once
LOAD_LABELS = {
    "get8": f"{LOAD_READERS} raw GETs at once (curl, signed)",
    "cat8": f"{LOAD_READERS} cats through our mount at once",
    "seq8": f"{LOAD_READERS} cats through our mount, one after another",
    "vs-get": f"{LOAD_READERS} raw GETs at once / {LOAD_READERS} cats at once (each round's ratio)",
    "vs-seq": f"{LOAD_READERS} cats one after another / {LOAD_READERS} at once (each round's ratio)",
}
CPU_HEADER = "CPU s/GiB: median (min-max)"
LOAD_COMMANDS = """\
load (LOAD_READERS = 8 artifacts of LOAD_SIZE, each its own version; page cache dropped before each batch):
  the curl GET above of each artifact, all 8 at once (timed: the whole batch)
  startifact-fs -f aws MNT;  cat MNT/Load/V1/Load@V1 & ... cat MNT/Load/V8/Load@V8 & wait   (cmp of each in round 1)
  startifact-fs -f aws MNT;  cat MNT/Load/V1/Load@V1; ... cat MNT/Load/V8/Load@V8   (one after another)
CPU (user + system seconds, per GiB of the artifact; of the 8 artifacts in the load phase):
  curl, our startifact, the Python startifact: their processes' own (bash's times, children)
  a mount's cat, cp, rsync: its daemon's, utime + stime in /proc/PID/stat just before and after
"""


def describe_more(parts):
    """The words for the cpu.* and load.* figures (None for any other)."""
    if parts[0] == "cpu" and len(parts) > 1:
        return "CPU seconds: " + Figure(".".join(parts[1:]), "").describe()
    if parts[0] == "load" and len(parts) == 3:
        return f"{LOAD_READERS} cold reads of {parts[1]} each: {LOAD_LABELS.get(parts[2], parts[2])}"
    return None


def size_bytes(size):
    """Bytes in a size as bench/common.sh writes it (200MB, 1GiB), None if it is none."""
    for unit, scale in (("MiB", 2**20), ("GiB", 2**30), ("MB", 10**6), ("GB", 10**9)):
        if size.endswith(unit) and size[: -len(unit)].isdigit():
            return int(size[: -len(unit)]) * scale
    return None


def cpu_per_gib(figures):
    """{(KEY, SERVER): CPU seconds per GiB of each run} of each figure KEY with a cpu.KEY."""
    out = {}
    for (key, server), f in figures.items():
        parts = key.split(".")
        if parts[0] != "cpu" or len(parts) < 4 or not f.values:
            continue
        n = size_bytes(parts[2])
        if n is None:
            continue
        gib = n * (LOAD_READERS if parts[1] == "load" else 1) / 2**30
        out[(key[4:], server)] = [v / gib for v in f.values]
    return out


def figure_rows_with_cpu(figures):
    """figure_rows of every figure but the cpu.* ones, each with its CPU seconds per GiB
    (median, min and max of the runs) beside the unit."""
    per_gib = cpu_per_gib(figures)
    out = []
    for k, f in figures.items():
        if k[0].startswith("cpu."):
            continue
        v = per_gib.get(k)
        cell = f"{fmt(statistics.median(v))} ({fmt(min(v))}-{fmt(max(v))})" if v else ""
        # One figure at a time, so that each of its rows gets its own cell.
        out += [row[:-1] + (cell,) + row[-1:] for row in figure_rows(OrderedDict([(k, f)]))]
    return out


def load_targets(figures):
    """The load phase's targets, as targets() gives its rows: 8 cats at once ≥0.9x the
    aggregate of 8 raw GETs at once, and no slower than the 8 one after another (each the
    median of the rounds' ratios). The daemon's memory is among targets()' mem.* rows."""
    rows = []
    cases = OrderedDict(((k.split(".")[1], s), None) for (k, s) in figures if k.startswith("load."))
    for size, server in cases:
        for name, key, limit, how in (
            (f"{LOAD_READERS} cold cats of {size} at once: ≥0.9x the aggregate of {LOAD_READERS} raw GETs at once",
             "vs-get", 0.9, f"{LOAD_READERS} GETs / {LOAD_READERS} cats (median of the rounds)"),
            (f"{LOAD_READERS} cold cats of {size} at once: no slower than one after another",
             "vs-seq", 1.0, "one after another / at once (median of the rounds)"),
        ):
            f = figures.get((f"load.{size}.{key}", server))
            value = f.median() if f is not None and f.ok else None
            status = "failed" if value is None else "met" if value >= limit else "short"
            failed = sum(len(figures[(f"load.{size}.{t}", server)].failures) for t in ("get8", "cat8", "seq8")
                         if (f"load.{size}.{t}", server) in figures)
            if failed and value is not None:
                status += f" ({failed} runs failed)"
            rows.append((name, server, how, value, ">=", limit, status))
    return rows


def chart(target_rows, path):
    shown = [r for r in target_rows if r[3] is not None and r[3] > 0]
    if not shown:
        return False
    # Each bar is the margin: how far the figure is from its limit, >= 1 when met.
    margins = [(r[3] / r[5]) if r[4] == ">=" else (r[5] / r[3]) for r in shown]
    labels = [f"{r[0]} [{r[1]}]: {r[3]:.3g}" for r in shown]
    fig, ax = plt.subplots(figsize=(16, 0.32 * len(shown) + 1.5))
    y = range(len(shown))
    # Bars grow from 1 (the limit): right when met, left when short.
    ax.barh(list(y), [m - 1 for m in margins], left=1,
            color=["tab:green" if r[6].startswith("met") else "tab:red" for r in shown])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("figure relative to its target (log scale; ≥ 1 meets the target)")
    ax.set_title("startifact-fs benchmark: targets")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return True


def main():
    figures_path, notes_path, out_dir = sys.argv[1:4]
    figures = load(figures_path)
    notes = []
    if os.path.exists(notes_path):
        with open(notes_path) as f:
            notes = [line.rstrip("\n").split("\t", 1) for line in f if "\t" in line]
    target_rows = targets(figures) + load_targets(figures)
    fig_rows = figure_rows_with_cpu(figures)
    os.makedirs(out_dir, exist_ok=True)
    has_chart = chart(target_rows, os.path.join(out_dir, "results.png"))

    t_header = ["target", "server", "ratio", "value", "target", "status"]
    t_rows = [(r[0], r[1], r[2], fmt(r[3]), f"{r[4]} {r[5]:g}", r[6]) for r in target_rows]
    f_header = ["figure", "server", "median", "min", "max", "runs", "unit", CPU_HEADER, "note"]
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as out:
        out.write("# Benchmark results\n\nGenerated by `bench/run.sh` (see `bench/README.md` for what each "
                  "figure measures). Each figure is the median of its runs, with min and max.\n\n")
        out.write("## Machine, versions, settings\n\n")
        out.write("\n".join(f"- {name}: {text}" for name, text in notes) + "\n\n")
        out.write("## Commands\n\n```\n" + COMMANDS + LOAD_COMMANDS + "```\n\n")
        out.write("## Targets\n\n" + markdown(t_header, t_rows) + "\n\n")
        if has_chart:
            out.write("![each target's figure relative to its limit](results.png)\n\n")
        out.write("## Figures\n\n" + markdown(f_header, fig_rows) + "\n")
        s_rows = servers_rows(figures)
        if s_rows:
            out.write("\n## Which server bounds what\n\nThe figures measured with both servers serving S3. "
                      "Where a tool's time falls with the faster server about as much as the raw request's "
                      "(GET, PUTs, boto3 listing) does, the server bounds it on moto; where it stays, the "
                      "tool does.\n\n")
            out.write(markdown(["figure", "unit", "moto", "s3s-fs", "s3s-fs / moto"], s_rows) + "\n")
    print("\nFigures (median, min, max of the runs)")
    print(markdown(f_header, fig_rows))
    print("\nTargets")
    print(markdown(t_header, t_rows))
    short = sum(1 for r in target_rows if not r[6].startswith("met"))
    print(f"\n{len(target_rows) - short} met, {short} short or failed; written to {out_dir}/RESULTS.md")


if __name__ == "__main__":
    main()
