"""Replay real LiveSplit splits files as runs, through the native API and
through the legacy LiveSplit component's wire format, and check what the
consumers receive: every event, in order, signed, with the envelope and
the speedrun fields as specified.

For each file a synthetic run is made from the personal best: each split
lands at the PB split time plus a fixed offset (so pace has both signs),
a speedrun.gold follows each split whose synthetic segment beats the
file's best segment, and the run ends with speedrun.finish.  The .lss
times are parsed here, in Python, independently of ctrd's C parser."""

import calendar
import datetime
import json
import os
import re
import sys
import time
import traceback
import xml.etree.ElementTree as ET

import ctrtest
from ctrtest import Ctrd, Receiver, Tap, new_whsec, verify_signature

tap = Tap()
T_START = time.time()


LSS_DIR = os.path.join(ctrtest.DATA, "lss")
MAIN = "super_mario_64_16_star.lss"
ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# Pace offsets from the PB, in ms, cycled over the segments, with extra
# ticks (100 ns) below the millisecond for the legacy .NET text.
OFFSETS_MS = [-1000, 830, -2400, 1500, -15, 3100, -75, 420, -1999, 0, 2,
              -640]
SUB_TICKS = [0, 4321, 9999, 1, 5000, 0, 7, 1234, 9000, 0, 3, 6666]
# Time zones of the producer's local timestamps, one per file, and the
# start of the first run: at +05:30 the first run crosses midnight into
# 29 February local time, and the runs are a day apart.
ZONES = [330, -300, 60, 0, -210]
BASE_UTC = datetime.datetime(2024, 2, 28, 18, 20, 44, 123456,
                             tzinfo=datetime.timezone.utc)


# ---------------------------------------------------------------------
# .NET TimeSpan and DateTime text, written and read here


def timespan_ticks(s):
    """.NET TimeSpan "c" text, "[-][d.]hh:mm:ss[.fffffff]", as ticks."""
    m = re.match(r"^(-)?(?:(\d+)\.)?(\d+):(\d\d):(\d\d)(?:\.(\d{1,7}))?$",
                 s.strip())
    if not m:
        raise ValueError("not a TimeSpan: %r" % s)
    neg, days, h, mi, sec, frac = m.groups()
    ticks = ((((int(days or 0) * 24 + int(h)) * 60 + int(mi)) * 60 +
              int(sec)) * 10 ** 7 + int((frac or "").ljust(7, "0")))
    return -ticks if neg else ticks


def ticks_ms(t):
    """Ticks to milliseconds, truncated toward zero."""
    return -((-t) // 10000) if t < 0 else t // 10000


def fmt_timespan(ticks):
    """As .NET's TimeSpan.ToString() writes it: no fraction when zero."""
    sign = "-" if ticks < 0 else ""
    t = abs(ticks)
    secs, frac = divmod(t, 10 ** 7)
    mins, s = divmod(secs, 60)
    hours, m = divmod(mins, 60)
    days, h = divmod(hours, 24)
    out = "%s%s%02d:%02d:%02d" % (sign, "%d." % days if days else "", h, m,
                                  s)
    return out + (".%07d" % frac if frac else "")


def fmt_ms(ms):
    """The canonical duration text: "-0:00:05.000"."""
    sign = "-" if ms < 0 else ""
    u = abs(ms)
    return "%s%d:%02d:%02d.%03d" % (sign, u // 3600000, u // 60000 % 60,
                                    u // 1000 % 60, u % 1000)


def rfc3339_ms(dt):
    dt = dt.astimezone(datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (
        dt.microsecond // 1000)


def dotnet_roundtrip(dt, zone_min, extra_digit):
    """.NET's "o" format of a local time: seven fractional digits and the
    offset, e.g. 2024-11-14T18:47:44.1234567+01:00."""
    tz = datetime.timezone(datetime.timedelta(minutes=zone_min))
    loc = dt.astimezone(tz)
    off = "%s%02d:%02d" % ("-" if zone_min < 0 else "+",
                           abs(zone_min) // 60, abs(zone_min) % 60)
    return loc.strftime("%Y-%m-%dT%H:%M:%S.") + "%06d%d" % (
        loc.microsecond, extra_digit) + off


def rfc3339_local(dt, zone_min):
    """RFC 3339 with an offset and microseconds, for the native API."""
    tz = datetime.timezone(datetime.timedelta(minutes=zone_min))
    loc = dt.astimezone(tz)
    off = "Z" if zone_min == 0 else "%s%02d:%02d" % (
        "-" if zone_min < 0 else "+", abs(zone_min) // 60,
        abs(zone_min) % 60)
    return loc.strftime("%Y-%m-%dT%H:%M:%S.%f") + off


# ---------------------------------------------------------------------
# The splits file


def read_lss(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    root = ET.fromstring(raw.replace(b"\r\n", b"\n"))

    def rt(el):
        t = el.findtext("RealTime") if el is not None else None
        return timespan_ticks(t) if t and t.strip() else None

    def gt(el):
        t = el.findtext("GameTime") if el is not None else None
        return timespan_ticks(t) if t and t.strip() else None

    segs = []
    for seg in root.find("Segments").findall("Segment"):
        pb = None
        for st in seg.find("SplitTimes").findall("SplitTime"):
            if st.get("name") == "Personal Best":
                pb = st
        segs.append({"name": seg.findtext("Name"),
                     "pb": rt(pb), "pb_game": gt(pb),
                     "best": rt(seg.find("BestSegmentTime"))})
    return {"game": root.findtext("GameName"),
            "category": root.findtext("CategoryName"),
            "attempts": int(root.findtext("AttemptCount") or 0),
            "segments": segs}


def synthetic_run(run, file_no):
    """The run's events: a list of dicts with what to send in each
    format and what the consumer must see."""
    game, cat = run["game"], run["category"]
    zone = ZONES[file_no % len(ZONES)]
    out = []

    def add(kind, t_ms, native_detail, legacy, want):
        when = BASE_UTC + datetime.timedelta(days=file_no,
                                             milliseconds=t_ms)
        out.append({"type": kind, "when": when, "native": native_detail,
                    "legacy": legacy, "want": want})

    add("speedrun.start", 0,
        {"game": game, "category": cat, "attempt": run["attempts"] + 1},
        {"EventType": "speedrun.start", "SplitName": None, "Pace": None,
         "Message": "attempt %d" % (run["attempts"] + 1)},
        {"split": None, "pace_ms": None, "run_time_ms": None})
    prev_run_ticks = 0
    last_pace = None
    last_run_ticks = 0
    for i, seg in enumerate(run["segments"]):
        if seg["pb"] is None:
            add("speedrun.skip", last_run_ticks // 10000,
                {"game": game, "category": cat, "split": seg["name"],
                 "split_index": i},
                {"EventType": "speedrun.skip", "SplitName": seg["name"],
                 "Pace": None, "Message": None},
                {"split": seg["name"], "pace_ms": None,
                 "run_time_ms": None})
            continue
        k = i % len(OFFSETS_MS)
        off_ms = OFFSETS_MS[k]
        sub = SUB_TICKS[k] if off_ms != 0 else 0
        pace_ticks = off_ms * 10000 + (sub if off_ms >= 0 else -sub)
        run_ticks = seg["pb"] + pace_ticks
        run_ms = ticks_ms(run_ticks)
        pace_ms = ticks_ms(pace_ticks)
        seg_ticks = run_ticks - prev_run_ticks
        prev_run_ticks = last_run_ticks = run_ticks
        real = fmt_timespan(pace_ticks)
        game_side = ""
        game_ms = None
        if seg["pb_game"] is not None:
            gticks = pace_ticks - 2500000   # 250 ms better in game time
            game_side = fmt_timespan(gticks)
            game_ms = ticks_ms(gticks)
        native = {"game": game, "category": cat, "split": seg["name"],
                  "split_index": i, "run_time": fmt_ms(run_ms),
                  "pace": fmt_ms(pace_ms),
                  "pb_time": fmt_ms(ticks_ms(seg["pb"])),
                  "segment_time": fmt_ms(ticks_ms(seg_ticks))}
        legacy = {"EventType": "speedrun.pb" if pace_ms < 0 else
                  "speedrun.split",
                  "SplitName": seg["name"],
                  "Pace": "%s | %s" % (real, game_side),
                  "Message": "%s %s" % (seg["name"], fmt_ms(pace_ms))}
        add("speedrun.split", run_ms, native, legacy,
            {"split": seg["name"], "pace_ms": pace_ms, "run_time_ms": run_ms,
             "pace_game_ms": game_ms, "pb_pace": pace_ms < 0})
        last_pace = (pace_ticks, pace_ms, game_side, game_ms)
        if seg["best"] is not None and seg_ticks < seg["best"]:
            sm, bm = ticks_ms(seg_ticks), ticks_ms(seg["best"])
            add("speedrun.gold", run_ms,
                {"game": game, "category": cat, "split": seg["name"],
                 "split_index": i, "segment_time": fmt_ms(sm),
                 "best_segment_time": fmt_ms(bm),
                 "improvement": fmt_ms(bm - sm)},
                {"EventType": "speedrun.gold", "SplitName": seg["name"],
                 "Pace": None, "Message": "gold on %s" % seg["name"]},
                {"split": seg["name"], "pace_ms": None,
                 "run_time_ms": None, "segment_time_ms": sm,
                 "improvement_ms": bm - sm})
    pt, pm, gs, gm = last_pace
    fin_ms = ticks_ms(last_run_ticks)
    add("speedrun.finish", fin_ms,
        {"game": game, "category": cat, "run_time": fmt_ms(fin_ms),
         "pace": fmt_ms(pm)},
        {"EventType": "speedrun.finish", "SplitName": None,
         "Pace": "%s | %s" % (fmt_timespan(pt), gs),
         "Message": "finished in %s" % fmt_ms(fin_ms)},
        {"split": None, "pace_ms": pm, "run_time_ms": fin_ms,
         "pace_game_ms": gm})
    for e in out:
        e["zone"] = zone
    return out


# ---------------------------------------------------------------------
# What ctrd must make of each event


DURATIONS = ("pace", "run_time", "segment_time", "best_segment_time",
             "improvement")


def want_native_detail(native):
    d = dict(native)
    for k in DURATIONS:
        if k in native:
            d[k + "_ms"] = parse_ms(native[k])
    return d


def parse_ms(text):
    m = re.match(r"^(-)?(\d+):(\d\d):(\d\d)\.(\d{3})$", text)
    ms = (((int(m.group(2)) * 60 + int(m.group(3))) * 60 +
           int(m.group(4))) * 1000 + int(m.group(5)))
    return -ms if m.group(1) else ms


def want_legacy_detail(e, run, ts_text):
    lg = e["legacy"]
    d = {"game": run["game"], "category": run["category"]}
    if lg["SplitName"] is not None:
        d["split"] = lg["SplitName"]
    if lg["Message"] is not None:
        d["message"] = lg["Message"]
    if lg["Pace"] is not None:
        w = e["want"]
        d["pace"] = fmt_ms(w["pace_ms"])
        d["pace_ms"] = w["pace_ms"]
        if w.get("pace_game_ms") is not None:
            d["pace_game_ms"] = w["pace_game_ms"]
        d["pace_raw"] = lg["Pace"]
    d["timestamp_raw"] = ts_text
    if lg["EventType"] == "speedrun.pb":
        d["pb_pace"] = True
        d["legacy_type"] = "speedrun.pb"
    return d


# ---------------------------------------------------------------------
# The daemon and its consumers

files = sorted(f for f in os.listdir(LSS_DIR) if f.endswith(".lss"))
files = [MAIN] + [f for f in files if f != MAIN]
if not tap.ok(len(files) == 5 and os.path.exists(os.path.join(LSS_DIR, MAIN)),
              "the five real splits files are in $CTR_DATA/lss",
              "%s: %r" % (LSS_DIR, files)):
    tap.finish()

ordered = Receiver(tap)
wide = Receiver(tap)
golds = Receiver(tap)
ahead = Receiver(tap)
for r in (ordered, wide, golds, ahead):
    r.server.socket.listen(128)     # socketserver's backlog is only 5
whsec = {n: new_whsec() for n in ("ordered", "wide", "golds", "ahead")}
consumers = [
    {"name": "ordered", "url": ordered.url, "secret": whsec["ordered"],
     "max_in_flight": 1, "budget_ms": 10000},
    {"name": "wide", "url": wide.url, "secret": whsec["wide"],
     "budget_ms": 10000, "pattern": {"type": [{"prefix": "speedrun."}]}},
    {"name": "golds", "url": golds.url, "secret": whsec["golds"],
     "budget_ms": 10000, "pattern": {"type": ["speedrun.gold"]}},
    {"name": "ahead", "url": ahead.url, "secret": whsec["ahead"],
     "budget_ms": 10000,
     "pattern": {"detail": {"pace_ms": [{"numeric": ["<", 0]}]}}},
]
d = Ctrd(tap, producers=[{"name": "cyghfer", "sources": ["livesplit"],
                          "types": ["speedrun.*"]},
                         {"name": "legacy-relay"}],
         consumers=consumers)
if not tap.ok(d.start(), "ctrd starts", d.read_log()[-2000:]):
    tap.finish()

last_seq = {"cyghfer": 0, "legacy-relay": 0}
last_id = [""]


def replay(fname, file_no, fmt):
    run = read_lss(os.path.join(LSS_DIR, fname))
    evs = synthetic_run(run, file_no)
    producer = "cyghfer" if fmt == "native" else "legacy-relay"
    tag = "%s (%s, %s)" % (fname, fmt, producer)
    paces = [e["want"]["pace_ms"] for e in evs
             if e["type"] == "speedrun.split"]
    if file_no == 0 and fmt == "native":
        tap.ok(any(p < 0 for p in paces) and any(p > 0 for p in paces) and
               any(e["type"] == "speedrun.gold" for e in evs),
               "replay data: %s gives paces of both signs and a gold" %
               fname, paces)

    n0 = {r: len(r.got) for r in (ordered, wide, golds, ahead)}
    ids, bad_post, ts_texts = [], [], []
    for i, e in enumerate(evs):
        if fmt == "native":
            body = {"type": e["type"], "source": "livesplit",
                    "detail": e["native"]}
            if e["type"] != "speedrun.start":
                body["time"] = rfc3339_local(e["when"], e["zone"])
            ts_texts.append(body.get("time"))
            st, _, rb = d.post(body, producer=producer)
        else:
            ts = dotnet_roundtrip(e["when"], e["zone"], i % 10)
            ts_texts.append(ts)
            body = dict(e["legacy"])
            body.update({"EventSource": "livesplit", "Producer": producer,
                         "Game": run["game"], "Category": run["category"],
                         "Timestamp": ts})
            st, _, rb = d.request(
                "POST", "/api/event", body,
                {"Content-Type": "application/json",
                 "x-producer-key": d.keys[producer]})
        if (st == 202 and isinstance(rb, dict) and rb.get("accepted") == 1
                and rb.get("entries") and "id" in rb["entries"][0]):
            ids.append(rb["entries"][0]["id"])
        else:
            ids.append(None)
            bad_post.append((i, e["type"], st, rb))
    n = len(evs)
    tap.eq(bad_post, [], "%s: all %d events accepted with 202" % (tag, n))

    ordered.wait(n0[ordered] + n, timeout=10)
    time.sleep(0.05)
    got = ordered.got[n0[ordered]:]
    envs = []
    for g in got:
        try:
            envs.append(json.loads(g["body"]))
        except ValueError:
            envs.append({})

    def view(env):
        det = env.get("detail", {})
        return (env.get("type"), det.get("split"), det.get("pace_ms"),
                det.get("run_time_ms"))

    # The legacy format has no run time: nothing may invent one.
    want_seq = [(e["type"], e["want"]["split"], e["want"]["pace_ms"],
                 e["want"]["run_time_ms"] if fmt == "native" else None)
                for e in evs]
    got_seq = [view(x) for x in envs]
    first = next((i for i, (a, b) in enumerate(zip(got_seq, want_seq))
                  if a != b), min(len(got_seq), len(want_seq)))
    tap.ok(got_seq == want_seq,
           "%s: the consumer receives start, %d splits, the golds and "
           "finish in order (type, split, pace_ms, run_time_ms)" %
           (tag, len(run["segments"])),
           "%d received, %d sent; first difference at event %d:\n"
           "got:  %r\nwant: %r" % (
               len(got_seq), len(want_seq), first,
               got_seq[first] if first < len(got_seq) else None,
               want_seq[first] if first < len(want_seq) else None))
    tap.eq([x.get("id") for x in envs], ids,
           "%s: deliveries carry the ids the API returned, in order" % tag)
    seqs = [x.get("seq") for x in envs]
    tap.eq(seqs, list(range(last_seq[producer] + 1,
                            last_seq[producer] + 1 + n)),
           "%s: seq increases by 1 per event" % tag)
    # go on from what arrived, so that one lost event fails one check
    last_seq[producer] = max([x for x in seqs if isinstance(x, int)],
                             default=last_seq[producer] +
                             len([i for i in ids if i]))
    idl = [last_id[0]] + [x.get("id") or "" for x in envs]
    tap.ok(all(ID_RE.match(i) for i in idl[1:]) and
           all(a < b for a, b in zip(idl, idl[1:])),
           "%s: ids are 26-character ULIDs that increase with each event"
           % tag)
    if envs and envs[-1].get("id"):
        last_id[0] = envs[-1]["id"]

    bad_sig = [i for i, g in enumerate(got) if not verify_signature(
        whsec["ordered"], g["headers"], g["body"]) or
        g["headers"].get("webhook-id") != envs[i].get("id")]
    tap.eq(bad_sig, [], "%s: every delivery verifies and its webhook-id "
           "is the envelope id" % tag)

    now = time.time()
    bad_env = []
    for i, (e, env) in enumerate(zip(evs, envs)):
        p = []
        keys = {"id", "seq", "type", "source", "producer", "time",
                "detail"}
        if fmt == "legacy" or e["type"] != "speedrun.start":
            keys.add("origin_time")
            want_origin = rfc3339_ms(e["when"])
        else:
            want_origin = None
        if set(env) != keys:
            p.append("keys %r" % sorted(env))
        if env.get("producer") != producer:
            p.append("producer %r" % env.get("producer"))
        if env.get("source") != "livesplit":
            p.append("source %r" % env.get("source"))
        t = str(env.get("time"))
        if not TIME_RE.match(t) or abs(calendar.timegm(time.strptime(
                t[:19], "%Y-%m-%dT%H:%M:%S")) - now) > 60:
            p.append("time %r" % t)
        if env.get("origin_time") != want_origin:
            p.append("origin_time %r, want %r (sent %r)" %
                     (env.get("origin_time"), want_origin, ts_texts[i]))
        if fmt == "native":
            wd = want_native_detail(e["native"])
        else:
            wd = want_legacy_detail(e, run, ts_texts[i])
        if env.get("detail") != wd:
            dd = env.get("detail") or {}
            diff = sorted(set(dd.items()) ^ set(wd.items()))
            p.append("detail differs: %r" % diff)
        if p:
            bad_env.append((i, e["type"], p))
    tap.eq(bad_env[:5], [], "%s: envelope fields and detail are as "
           "specified (producer from the key, time RFC 3339 UTC ms, "
           "origin_time when sent)" % tag)

    want_golds = [ids[i] for i, e in enumerate(evs)
                  if e["type"] == "speedrun.gold"]
    want_ahead = [ids[i] for i, e in enumerate(evs)
                  if (e["want"]["pace_ms"] or 0) < 0]
    golds.wait(n0[golds] + len(want_golds), timeout=5)
    ahead.wait(n0[ahead] + len(want_ahead), timeout=5)
    wide.wait(n0[wide] + n, timeout=5)
    time.sleep(0.1)

    def idset(r):
        return sorted(str(json.loads(g["body"]).get("id"))
                      for g in r.got[n0[r]:])

    tap.eq(idset(wide), sorted(map(str, ids)), "%s: a consumer with many "
           "requests in flight gets the same %d events" % (tag, n))
    tap.eq((idset(golds), idset(ahead)),
           (sorted(map(str, want_golds)), sorted(map(str, want_ahead))),
           "%s: the gold-only and ahead-of-PB (pace_ms < 0) consumers get "
           "exactly theirs (%d golds, %d ahead)" %
           (tag, len(want_golds), len(want_ahead)))


for file_no, fname in enumerate(files):
    t0 = time.time()
    replay(fname, file_no, "native")
    replay(fname, file_no, "legacy")
    print("# %s replayed twice in %.2f s" % (fname, time.time() - t0))

tap.eq(d.dead_letters(), [], "no delivery of any replay was dead-lettered")
tap.ok(time.time() - T_START < 50, "script ran in under 50 s",
       "%.1f s" % (time.time() - T_START))
tap.finish()
