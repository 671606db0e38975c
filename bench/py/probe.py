"""Times file-system calls one by one, inside one Python process (so no process start-up
is counted), with time.perf_counter_ns. Prints one "NAME VALUE" line per figure, values
in milliseconds. Used by bench/metadata.sh and bench/random.sh.

  probe.py meta PROJECT_DIR FILE LS_CALLS CALLS [LOCAL_DIR]
      the first os.listdir(PROJECT_DIR) (cold on a fresh mount), then LS_CALLS more
      (warm), CALLS x os.readlink(PROJECT_DIR/latest) and CALLS x os.stat(FILE), each
      after one untimed call: ls-cold, ls-warm.p50/p99, readlink.p50/p99, stat.p50/p99;
      and LS_CALLS x os.listdir(LOCAL_DIR), a local folder of as many entries (what
      listing that many names costs in Python without FUSE): ls-local.p50/p99
  probe.py parallel PROJECT_DIR FILE CALLS PROCESSES [LOCAL_PROJECT_DIR LOCAL_FILE]
      PROCESSES processes at once (started together, each after one untimed call of
      each), each doing CALLS x (os.readlink(PROJECT_DIR/latest), then os.stat(FILE)),
      each call timed on its own; the samples of all processes together:
      readlinkN.p50/p99, statN.p50/p99 (N = PROCESSES); and the same on a local folder
      (LOCAL_PROJECT_DIR holding latest, LOCAL_FILE a file): readlinkN-local, statN-local
  probe.py pread FILE LOCAL READS SEED
      READS x os.pread of 4 KiB at random offsets (random.Random(SEED)) on one open fd;
      each read is compared with the same range of the local copy LOCAL: p50, p99
"""

import os
import random
import sys
from time import perf_counter_ns


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(call, count):
    call()
    samples = []
    for _ in range(count):
        t0 = perf_counter_ns()
        call()
        samples.append((perf_counter_ns() - t0) / 1e6)
    return samples


def show(name, samples):
    print(f"{name}.p50 {percentile(samples, 50):.4f}")
    print(f"{name}.p99 {percentile(samples, 99):.4f}")


def meta(project_dir, file, ls_calls, calls, local_dir=None):
    t0 = perf_counter_ns()
    names = os.listdir(project_dir)
    print(f"ls-cold {(perf_counter_ns() - t0) / 1e6:.4f}")
    show("ls-warm", timed(lambda: os.listdir(project_dir), ls_calls))
    if local_dir is not None:
        if len(os.listdir(local_dir)) != len(names):
            sys.exit(f"{local_dir} does not hold {len(names)} entries")
        show("ls-local", timed(lambda: os.listdir(local_dir), ls_calls))
    latest = os.path.join(project_dir, "latest")
    show("readlink", timed(lambda: os.readlink(latest), calls))
    show("stat", timed(lambda: os.stat(file), calls))


def _worker(project_dir, file, calls, start, out):
    latest = os.path.join(project_dir, "latest")
    os.readlink(latest)
    os.stat(file)
    start.wait()
    links, stats = [], []
    for _ in range(calls):
        t0 = perf_counter_ns()
        os.readlink(latest)
        t1 = perf_counter_ns()
        os.stat(file)
        t2 = perf_counter_ns()
        links.append((t1 - t0) / 1e6)
        stats.append((t2 - t1) / 1e6)
    out.put((links, stats))


def parallel_case(project_dir, file, calls, processes):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    start = context.Barrier(processes)
    out = context.Queue()
    workers = [context.Process(target=_worker, args=(project_dir, file, calls, start, out))
               for _ in range(processes)]
    for w in workers:
        w.start()
    links, stats = [], []
    for _ in workers:
        got_links, got_stats = out.get()
        links += got_links
        stats += got_stats
    for w in workers:
        w.join()
        if w.exitcode != 0:
            sys.exit(f"a process of the parallel case failed ({w.exitcode})")
    return links, stats


def parallel(project_dir, file, calls, processes, local_dir=None, local_file=None):
    links, stats = parallel_case(project_dir, file, calls, processes)
    show(f"readlink{processes}", links)
    show(f"stat{processes}", stats)
    if local_dir is not None:
        links, stats = parallel_case(local_dir, local_file, calls, processes)
        show(f"readlink{processes}-local", links)
        show(f"stat{processes}-local", stats)


def pread(file, local, reads, seed):
    size = os.stat(local).st_size
    block = 4096
    rng = random.Random(seed)
    offsets = [rng.randrange(0, size - block) for _ in range(reads)]
    fd = os.open(file, os.O_RDONLY)
    samples, got = [], []
    try:
        for offset in offsets:
            t0 = perf_counter_ns()
            data = os.pread(fd, block, offset)
            samples.append((perf_counter_ns() - t0) / 1e6)
            got.append(data)
    finally:
        os.close(fd)
    with open(local, "rb") as f:
        for offset, data in zip(offsets, got):
            f.seek(offset)
            if f.read(block) != data:
                sys.exit(f"the 4 KiB read at {offset} differs from the local copy")
    show("random", samples)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "meta":
        meta(args[0], args[1], int(args[2]), int(args[3]), args[4] if len(args) > 4 else None)
    elif mode == "parallel":
        parallel(args[0], args[1], int(args[2]), int(args[3]),
                 args[4] if len(args) > 4 else None, args[5] if len(args) > 5 else None)
    elif mode == "pread":
        pread(args[0], args[1], int(args[2]), int(args[3]))
    else:
        sys.exit(f"unknown mode {mode}")
