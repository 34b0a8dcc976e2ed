#!/usr/bin/python3
"""plot.py - draws the benchmark charts from the figures of bench/run-bench.

Reads the JSON results file that bench/compare.py writes (run-bench keeps a
copy as bench/charts/results.json) and writes three PNGs:

  query-throughput.png  QUERY/s against the number of clients: attnkvd over
                        TCP (bench/loadgen --query), FAISS IndexFlatL2 and
                        hnswlib in process with as many threads
  latency.png           single-client QUERY latency of attnkvd (histogram
                        with p50 and p99), and its distribution next to
                        FAISS's and hnswlib's one-query searches
  set-vs-redis.png      SET/s of attnkvd and redis-server, with and without
                        pipelining, with redis-benchmark and with bench/loadgen

Every chart carries a footnote with the machine (CPU model and count, from
the results file, else from this machine's /proc/cpuinfo), the date of the
run and the command that took it. A chart whose figures are missing from
the file is skipped with a note on stderr.

Usage: bench/plot.py [--out DIR] RESULTS.json   (DIR defaults to bench/charts)
Needs Debian's python3-matplotlib; draws with the Agg backend (no display).
"""

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402

COLOURS = {"attnkvd": "#1f77b4", "redis": "#d62728", "faiss": "#ff7f0e",
           "hnswlib": "#2ca02c", "target": "#7f7f7f"}
DPI = 100


def cpu_from_proc():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() == "model name":
                    model = val.strip()
                    break
    except OSError:
        pass
    return model, os.cpu_count()


def footnote(r):
    """Machine, date, command: one or two lines under each chart."""
    m = r.get("meta", {})
    if "cpu_model" in m:
        model, cpus = m["cpu_model"], m.get("cpus", "?")
    else:
        model, cpus = cpu_from_proc()
    when = m.get("date", "date unknown")
    cmd = m.get("command", "bench/run-bench")
    rev = f", revision {m['revision']}" if "revision" in m else ""
    load = ""
    if m.get("load_average"):
        load = f", load average {m['load_average'][0]:.1f} at the start"
    return (f"{model}, {cpus} CPUs (shared VM, other work running{load}: figures are noisy)\n"
            f"{when}, command: {cmd}{rev}")


def percentile(xs, p):
    """The same rank as bench/compare.py, so the marks match its table."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def thousands(v, _pos=None):
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def finish(fig, r, path):
    fig.text(0.01, 0.01, footnote(r), fontsize=7, color="#555555", ha="left", va="bottom")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"  wrote {path} ({os.path.getsize(path) // 1024} KB)")


def chart_throughput(r, path):
    if "query_sweep" not in r:
        return "no query_sweep (bench/compare.py qsweep)"
    fig, ax = plt.subplots(figsize=(8, 6.2))
    fig.subplots_adjust(left=0.10, right=0.97, top=0.84, bottom=0.33)
    series = [("query_sweep", "attnkvd over TCP (bench/loadgen, one QUERY in flight per client)",
               "attnkvd", "o", "-"),
              ("hnsw_sweep", "hnswlib, in process (one query per call per thread)",
               "hnswlib", "s", "--"),
              ("faiss_flat_sweep", "FAISS IndexFlatL2, in process (one query per call per thread)",
               "faiss", "^", "--")]
    allc, rounds = [], 0
    for key, label, colour, marker, style in series:
        if key not in r:
            continue
        s = r[key]
        allc += s["clients"]
        yerr = None
        if s.get("qps_runs") and s.get("rounds", 1) > 1:
            yerr = [[q - min(runs) for q, runs in zip(s["qps"], s["qps_runs"])],
                    [max(runs) - q for q, runs in zip(s["qps"], s["qps_runs"])]]
            rounds = s["rounds"]
        ax.errorbar(s["clients"], s["qps"], yerr=yerr, marker=marker, linestyle=style,
                    label=label, color=COLOURS[colour],
                    linewidth=2 if colour == "attnkvd" else 1.4, markersize=6, capsize=3,
                    elinewidth=1)
        if colour == "attnkvd":
            for c, q in zip(s["clients"], s["qps"]):
                ax.annotate(f"{q:,.0f}", (c, q), textcoords="offset points", xytext=(0, 7),
                            ha="center", fontsize=8, color=COLOURS[colour])
    # The other 50-client figures of attnkvd: other load generators.
    # Drawn a little apart around x = 50 so that equal figures stay visible.
    lg_n = r.get("query_lg_requests")
    extra = [("query_lg", "attnkvd, bench/loadgen" +
              (f", {lg_n:,}-request run" if lg_n else ", one long run"), "D", 0.93),
             ("query_qps_rb", "attnkvd, 10 redis-benchmark x 5 clients", "P", 1.0),
             ("query_qps_c50", "attnkvd, Python asyncio client", "X", 1.07)]
    for key, label, marker, dx in extra:
        if key in r:
            ax.plot([50 * dx], [r[key]], marker=marker, linestyle="none",
                    color=COLOURS["attnkvd"], alpha=0.55, markersize=7,
                    label=f"{label} (50 clients, {r[key]:,.0f}/s)")
    ax.axhline(5000, color=COLOURS["target"], linestyle=":", linewidth=1.2,
               label="target: 5,000 QUERY/s with 50 clients")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted(set(allc))
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_xlabel("concurrent clients (attnkvd) / threads (FAISS, hnswlib)")
    ax.set_ylabel("queries per second (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", axis="y", alpha=0.1)
    lo = min(min(min(x) for x in r[k].get("qps_runs", [r[k]["qps"]])) for k, *_ in series
             if k in r)
    hi = max([max(max(x) for x in r[k].get("qps_runs", [r[k]["qps"]])) for k, *_ in series
              if k in r] +
             [r[k] for k, *_ in extra if k in r] + [5000])
    ax.set_ylim(lo / 2, hi * 4)
    # Series first, then the single figures (errorbar handles sort last).
    handles, labels = ax.get_legend_handles_labels()
    first = [lb for _k, lb, *_ in series]
    order = sorted(range(len(labels)),
                   key=lambda i: (first.index(labels[i]) if labels[i] in first else 9, i))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7.5,
              loc="upper center", bbox_to_anchor=(0.45, -0.13), ncol=2, frameon=False)
    entries = r.get("entries", r.get("meta", {}).get("entries", 1000))
    fig.suptitle("QUERY throughput against concurrency", fontsize=13, y=0.975)
    note = (f"QUERY <word> over a {entries:,}-entry store, GloVe 6B 100d vocabulary "
            f"(400,000 words); each client keeps one request in flight.")
    if rounds:
        note += f"\nLines: median of {rounds} rounds; bars: lowest to highest round."
    if "faiss_flat_batch_qps" in r and "hnsw_batch_qps" in r:
        note += (f"\nFAISS and hnswlib do the ranking step alone, without network or protocol; "
                 f"batched (2,000 queries a call):\nFAISS {r['faiss_flat_batch_qps']:,.0f}/s, "
                 f"hnswlib {r['hnsw_batch_qps']:,.0f}/s (hnswlib recall@5 "
                 f"{r.get('hnsw_recall', float('nan')):.2f}, attnkvd's "
                 f"{r.get('query_recall', float('nan')):.2f}).")
    fig.text(0.5, 0.885, note, ha="center", va="center", fontsize=8)
    finish(fig, r, path)


def chart_latency(r, path):
    if "query_latency_ms" not in r:
        return "no query_latency_ms (bench/compare.py latency)"
    lat = r["query_latency_ms"]
    p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 5.2), gridspec_kw={"width_ratios": [1.1, 1]})
    fig.subplots_adjust(left=0.08, right=0.98, top=0.85, bottom=0.30, wspace=0.25)

    # Left: the histogram, cut at a little beyond p99 so the body is legible.
    hi = max(p99 * 1.3, 6.5)
    shown = [x for x in lat if x <= hi]
    ax.hist(shown, bins=50, range=(0, hi), color=COLOURS["attnkvd"], alpha=0.8)
    for v, name, style in ((p50, "p50", "-"), (p99, "p99", "--")):
        ax.axvline(v, color="black", linestyle=style, linewidth=1.2)
        ax.annotate(f"{name} {v:.2f} ms", (v, 1), xycoords=("data", "axes fraction"),
                    textcoords="offset points", xytext=(3, -12 if name == "p50" else -26),
                    fontsize=8.5)
    for v, name in ((3, "p50 target 3 ms"), (6, "p99 target 6 ms")):
        if v <= hi:
            ax.axvline(v, color=COLOURS["target"], linestyle=":", linewidth=1)
            ax.annotate(name, (v, 0.3), xycoords=("data", "axes fraction"), rotation=90,
                        textcoords="offset points", xytext=(-9, 0), fontsize=7.5,
                        color=COLOURS["target"], va="center")
    ax.set_xlim(0, hi)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("requests")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    over = len(lat) - len(shown)
    ax.set_title(f"attnkvd, {len(lat):,} requests" +
                 (f" ({over} above {hi:.1f} ms not shown)" if over else ""), fontsize=9.5)
    ax.grid(True, axis="y", alpha=0.3)

    # Right: the distributions side by side on a log scale.
    for key, label, colour in (("query_latency_ms", "attnkvd over TCP", "attnkvd"),
                               ("hnsw_latency_ms", "hnswlib, in process", "hnswlib"),
                               ("faiss_flat_latency_ms", "FAISS flat, in process", "faiss")):
        if key not in r:
            continue
        xs = sorted(r[key])
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        bx.step(xs, ys, where="post", color=COLOURS[colour],
                label=f"{label}: p50 {percentile(xs, .5):.3g}, p99 {percentile(xs, .99):.3g} ms")
    bx.set_xscale("log")
    bx.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    bx.set_ylim(0, 1.02)
    for y, name, style in ((0.5, "p50", "-"), (0.99, "p99", "--")):
        bx.axhline(y, color="black", linewidth=0.6, alpha=0.4, linestyle=style)
        bx.annotate(name, (0, y), xycoords=("axes fraction", "data"), textcoords="offset points",
                    xytext=(3, -9), fontsize=7.5, color="#555555")
    bx.set_xlabel("latency (ms, log scale)")
    bx.set_ylabel("fraction of requests at or below")
    bx.set_title("cumulative distribution, one query at a time", fontsize=9.5)
    bx.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.4, -0.15), frameon=False)
    bx.grid(True, which="major", alpha=0.3)

    fig.suptitle("Single-client QUERY latency", fontsize=13, y=0.975)
    fig.text(0.5, 0.905, "One client, one request at a time, timed at the client (Python); "
             "a different word in every request. FAISS and hnswlib: the ranking step alone, "
             "no network.", ha="center", va="center", fontsize=8)
    finish(fig, r, path)


def chart_set(r, path):
    panels = [("no pipelining (50 clients)",
               [("SET cat animal\n(redis-benchmark)", "set_akv", "set_redis"),
                ("word list\n(bench/loadgen)", "set_words_akv", "set_words_redis")]),
              ("pipelined, 16 commands a batch (50 clients)",
               [("SET cat animal\n(redis-benchmark)", "set_p16_akv", "set_p16_redis"),
                ("word list\n(bench/loadgen)", "set_words_p16_akv", "set_words_p16_redis")])]
    if not any(k in r for _, groups in panels for _, a, b in groups for k in (a, b)):
        return "no SET figures"
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.8))
    fig.subplots_adjust(left=0.09, right=0.98, top=0.84, bottom=0.24, wspace=0.22)
    width = 0.38
    for ax, (title, groups) in zip(axes, panels):
        top = 0
        for i, (label, ka, kr) in enumerate(groups):
            for j, (key, name, colour) in enumerate(((ka, "attnkvd", "attnkvd"),
                                                     (kr, "redis-server", "redis"))):
                if key not in r:
                    continue
                x = i + (j - 0.5) * width
                v = r[key]
                top = max(top, v)
                ax.bar(x, v, width * 0.95, color=COLOURS[colour],
                       label=name if i == 0 else None)
                ax.annotate(thousands(round(v, -2 if v < 1e6 else -4)), (x, v),
                            textcoords="offset points", xytext=(0, 3), ha="center",
                            fontsize=8.5)
            if ka in r and kr in r and r[kr]:
                ax.annotate(f"attnkvd = {r[ka] / r[kr]:.2f}x redis", (i, max(r[ka], r[kr])),
                            textcoords="offset points", xytext=(0, 16), ha="center",
                            fontsize=8, fontweight="bold")
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([g[0] for g in groups], fontsize=8.5)
        ax.set_ylim(0, top * 1.32)
        ax.yaxis.set_major_formatter(FuncFormatter(thousands))
        ax.set_ylabel("SET requests per second")
        ax.set_title(title, fontsize=9.5)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", ncol=2)
    fig.suptitle("SET throughput: attnkvd against redis-server", fontsize=13, y=0.975)
    fig.text(0.5, 0.905, "Same commands to both servers, append-only file with fsync every "
             "second. Word list: keys and values from 49,216 common words, DBSIZE checked.",
             ha="center", va="center", fontsize=8)
    finish(fig, r, path)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="the JSON results file of bench/compare.py")
    p.add_argument("--out", default=os.path.join(here, "charts"),
                   help="directory for the PNGs (default: bench/charts)")
    a = p.parse_args()
    with open(a.results) as f:
        r = json.load(f)
    os.makedirs(a.out, exist_ok=True)
    failed = False
    for name, draw in (("query-throughput.png", chart_throughput),
                       ("latency.png", chart_latency),
                       ("set-vs-redis.png", chart_set)):
        why = draw(r, os.path.join(a.out, name))
        if why:
            print(f"plot.py: {name} not drawn: {why}", file=sys.stderr)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
