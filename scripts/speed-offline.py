#!/usr/bin/env python3
"""Offline link-speed measurements of docs/incidents.md "Speeds, eighth pass", over the dump of bench/eval's
TestSpeedDump (python3 only, no packages):

    CITYBRAIN_SPEED_DUMP=/tmp/dump go test -run TestSpeedDump -timeout 60m ./bench/eval
    python3 scripts/speed-offline.py /tmp/dump [cities]

Per city, at 15 % and 5 % probes, link MAPE (|est - truth| / max(truth, 5 km/h), link-windows with >= 150
vehicle-seconds and a reading) of: the engine's estimate; (a) the queue ahead of standing probes folded into the
sample (scale 0.25 and 1, with lanes; the true penetration given); a perfect measurement (the probe vehicles' own
every-second speed in place of the engine's sample); the estimate with the true speed of the window before as
a prior (one vehicle-minute); and (c) a perfect flow: the true total distance over the probes' time.
"""
import collections, csv, math, os, sys

START = 1795764600000  # simStart (2026-11-27 07:30 UTC), ms
JAM_M = 7.5
CITIES = "bologna,monaco,hangzhou,nanchang,grid,spider,random"


def ape(est, truth):
    return abs(est - truth) / max(truth, 5)


def load(d, city, seed, pct):
    links = {int(r["idx"]): r for r in csv.DictReader(open(f"{d}/{city}-links.csv"))}
    byid = {r["link"]: i for i, r in links.items()}
    truth = {(int(r["w"]), r["unit"]): (float(r["sumkmh"]), float(r["vehs"])) for r in csv.DictReader(open(f"{d}/{city}-s{seed}-truth.csv"))}
    est = {}
    for r in csv.DictReader(open(f"{d}/{city}-s{seed}-{pct}-est.csv")):
        est[(int(r["w"]), r["link"])] = {k: (v if k == "link" else float(v)) for k, v in r.items()}
    fixes = collections.defaultdict(list)
    with open(f"{d}/{city}-s{seed}-{pct}-fixes.csv") as f:
        next(f)
        for line in f:
            ts, kind, vid, link, off, sp, *_ = line.rstrip("\n").split(",")
            fixes[((int(ts) - START) // 300000, int(link))].append((int(ts), int(kind), float(off), float(sp)))
    own = "P:" if pct == "15" else "Q:"
    for (w, unit), (s, vs) in truth.items():
        if unit[0] != "L" or vs < 150:
            continue
        e = est.get((w, unit[2:]))
        if e is None or math.isnan(e["est"]) or unit[2:] not in byid:
            continue
        i = byid[unit[2:]]
        p = truth.get((w, own + unit[2:]))
        prev = truth.get((w - 1, unit))
        yield dict(truth=s / vs, vehs=vs, e=e, meta=links[i], fx=fixes.get((w, i), []),
                   own=p[0] / p[1] if p and p[1] > 0 else math.nan, prev=prev[0] / prev[1] if prev and prev[1] > 0 else math.nan)


def queue_ahead(r, p, scale):
    """(a): the sample with the standing vehicles ahead of standing probes added to its standing time."""
    e, m = r["e"], r["meta"]
    fx = [f for f in r["fx"] if f[1] == 1]
    if not fx or math.isnan(e["sample"]):
        return e["est"]
    n = len(fx)
    stand = [f for f in fx if f[3] < 5]
    slots = {}
    for ts, _, off, _ in stand:
        slots[ts // 5000] = max(slots.get(ts // 5000, 0), (1 - off) * float(m["glen"]) * max(1, int(m["lanes"])) / JAM_M + 1)
    t_stand = max(5 * len(stand) / p, scale * 5 * sum(slots.values()))
    v = max(0.5, 5 * sum(f[3] for f in fx) / (5 * (n - len(stand)) + p * t_stand))
    share = min(1, n / max(1e-9, e["own"] * 12)) * e["own"] / e["evid"]  # the probes' part of the estimate
    return e["est"] * (v / max(e["sample"], 0.5)) ** share


def perfect_measurement(r):
    e = r["e"]
    if math.isnan(r["own"]) or math.isnan(e["sample"]) or e["evid"] <= 0:
        return e["est"]
    return e["est"] * (max(r["own"], 1) / max(e["sample"], 1)) ** (e["own"] / e["evid"])


def prior_oracle(r):
    e = r["e"]
    if math.isnan(r["prev"]):
        return e["est"]
    return math.exp((e["evid"] * math.log(max(e["est"], 1)) + math.log(max(r["prev"], 1))) / (e["evid"] + 1))


def perfect_flow(r, p):
    fx = [f for f in r["fx"] if f[1] == 1]
    if not fx:
        return r["e"]["est"]
    return r["truth"] * r["vehs"] / (5 * len(fx) / p)  # true distance / the probes' time scaled by 1/p


def main():
    d = sys.argv[1]
    cities = (sys.argv[2] if len(sys.argv) > 2 else CITIES).split(",")
    for pct, p in (("15", 0.15), ("5", 0.05)):
        cols = {"estimate": lambda r: r["e"]["est"], "(a) x0.25": lambda r: queue_ahead(r, p, 0.25), "(a) x1": lambda r: queue_ahead(r, p, 1),
                "perfect measurement": perfect_measurement, "oracle prior": prior_oracle, "(c) perfect flow": lambda r: perfect_flow(r, p)}
        print(f"\nProbes {pct} %: link MAPE\n\n| city | n | " + " | ".join(cols) + " |\n|---|---|" + "---|" * len(cols))
        tot = collections.Counter()
        for c in cities:
            s = collections.Counter()
            for seed in (1, 2):
                for r in load(d, c, seed, pct):
                    s["n"] += 1
                    for k, f in cols.items():
                        s[k] += ape(f(r), r["truth"])
            tot.update(s)
            print(f"| {c} | {s['n']} | " + " | ".join(f"{s[k] / s['n']:.4f}" for k in cols) + " |")
        print(f"| corpus | {tot['n']} | " + " | ".join(f"{tot[k] / tot['n']:.4f}" for k in cols) + " |")


if __name__ == "__main__":
    main()
