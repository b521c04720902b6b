#!/usr/bin/env python3
"""ctrctl's event tools: replay, send and sink.

The runs that ctrctl replay must play are computed here, in Python, from
the splits files read with xml.etree, following the rules ctrctl(1)
states: the synthetic run, a recorded attempt, pace against the personal
best, golds against the best segments, subsplit names and groups.  Then
the runs go through the real ctrd to a ctrctl sink, and what the sink
prints is checked against the same expectation."""

import base64
import calendar
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctrtest  # noqa: E402
from ctrtest import CTRCTL, Ctrd, Tap, free_port, new_key, new_whsec  # noqa: E402,E501
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402,E501

tap = Tap()
T_START = time.time()


LSS_DIR = os.path.join(ctrtest.DATA, "lss")
TICKS_MS = 10000
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DOTNET_O = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}[+-]\d\d:\d\d$")
LEGACY_KEYS = {"EventType", "EventSource", "Producer", "Game", "Category",
               "SplitName", "Pace", "Message", "Timestamp"}


# ---------------------------------------------------------------------
# The splits files, read here independently of ctrctl's libxml2 reader


def timespan(text):
    """.NET TimeSpan text as ticks; None for no text."""
    if text is None or not text.strip():
        return None
    m = re.match(r"^(-)?(?:(\d+)\.)?(\d+):(\d\d):(\d\d)(?:\.(\d{1,7}))?$",
                 text.strip())
    assert m, "not a TimeSpan: %r" % text
    neg, days, h, mi, s, frac = m.groups()
    t = ((((int(days or 0) * 24 + int(h)) * 60 + int(mi)) * 60 + int(s)) *
         10 ** 7 + int((frac or "").ljust(7, "0")))
    return -t if neg else t


def ms(ticks):
    """Ticks to milliseconds, truncated toward zero, as ctrd does."""
    if ticks is None:
        return None
    return -((-ticks) // TICKS_MS) if ticks < 0 else ticks // TICKS_MS


def dotnet(ticks):
    """As .NET's TimeSpan.ToString() writes it."""
    sign = "-" if ticks < 0 else ""
    secs, frac = divmod(abs(ticks), 10 ** 7)
    days, rest = divmod(secs, 86400)
    out = "%s%s%02d:%02d:%02d" % (sign, "%d." % days if days else "",
                                  rest // 3600, rest // 60 % 60, rest % 60)
    return out + (".%07d" % frac if frac else "")


def parse_ms(text):
    """ctrd's duration text, "-0:00:05.123", as milliseconds."""
    if text is None:
        return None
    m = re.match(r"^(-)?(\d+):(\d\d):(\d\d)\.(\d{3})$", text)
    assert m, "not a duration: %r" % text
    v = (((int(m.group(2)) * 60 + int(m.group(3))) * 60 + int(m.group(4))) *
         1000 + int(m.group(5)))
    return -v if m.group(1) else v


def read_lss(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    root = ET.fromstring(raw)

    def real(el):
        return timespan(el.findtext("RealTime")) if el is not None else None

    segs = []
    for seg in root.find("Segments").findall("Segment"):
        pb = None
        for st in seg.find("SplitTimes").findall("SplitTime"):
            if st.get("name") == "Personal Best":
                pb = st
        hist = {}
        sh = seg.find("SegmentHistory")
        for t in (sh.findall("Time") if sh is not None else []):
            hist[int(t.get("id"))] = real(t)
        segs.append({"name": (seg.findtext("Name") or "").strip(),
                     "pb": real(pb), "best": real(seg.find("BestSegmentTime")),
                     "hist": hist})
    return {"game": root.findtext("GameName").strip(),
            "category": root.findtext("CategoryName").strip(),
            "offset": timespan(root.findtext("Offset")) or 0,
            "attempt_count": int(root.findtext("AttemptCount") or 0),
            "segments": segs}


def labels(segs):
    """(split, group) as the native events show each segment."""
    def braced(name):
        m = re.match(r"^\{([^}]+)\} *(.+)$", name)
        return (m.group(2), m.group(1)) if m else (name, None)

    out = []
    for i, s in enumerate(segs):
        name = s["name"]
        if name.startswith("-") and name[1:].lstrip(" "):
            j = i + 1
            while j < len(segs) and segs[j]["name"].startswith("-"):
                j += 1
            group = braced(segs[j]["name"])[1] if j < len(segs) else None
            out.append((name[1:].lstrip(" "), group))
        else:
            out.append(braced(name))
    return out


def synthetic(run):
    """The synthetic run's split times (ctrctl(1)): 250, 500, 750, 1000 ms
    off the PB in turn, ahead on even segments, behind on odd ones, the
    last 1000 ms ahead."""
    segs, prev, times = run["segments"], 0, []
    for i, s in enumerate(segs):
        off = 250 * (1 + i % 4) * TICKS_MS
        off = -1000 * TICKS_MS if i == len(segs) - 1 else (
            -off if i % 2 == 0 else off)
        if s["pb"] is not None:
            t = max(s["pb"] + off, prev)
        elif s["best"] is not None:
            t = prev + s["best"]
        else:
            t = None
        times.append(t)
        if t is not None:
            prev = t
    return times, True


def attempt(run, aid):
    """Attempt aid's split times, as far as its history runs unbroken;
    None when none of them has a time."""
    segs, prev, times = run["segments"], 0, []
    for s in segs:
        if aid not in s["hist"]:
            break
        seg = s["hist"][aid]
        times.append(None if seg is None else prev + seg)
        if seg is not None:
            prev += seg
    if all(t is None for t in times):
        return None
    finished = len(times) == len(segs) and times[-1] is not None
    if len(times) == len(segs) and not finished:
        times.pop()
    return times, finished


def expected(run, times, finished):
    """The events: dicts of type, seg and the durations in ms."""
    segs = run["segments"]
    out = [{"type": "speedrun.start", "seg": None}]
    prev, skipped, final_known = 0, False, False
    for i, t in enumerate(times):
        s = segs[i]
        if t is None:
            out.append({"type": "speedrun.skip", "seg": i})
            skipped = True
            continue
        seg = t - prev
        out.append({"type": "speedrun.split", "seg": i, "run_time": ms(t),
                    "segment_time": ms(seg),
                    "pace": ms(t - s["pb"]) if s["pb"] is not None else None,
                    "pace_ticks": t - s["pb"] if s["pb"] is not None
                    else None})
        if s["best"] is not None and not skipped and seg < s["best"]:
            out.append({"type": "speedrun.gold", "seg": i,
                        "segment_time": ms(seg),
                        "best_segment_time": ms(s["best"]),
                        "improvement": ms(s["best"] - seg)})
        prev, skipped, final_known = t, False, i == len(segs) - 1
    if not finished:
        out.append({"type": "speedrun.reset", "seg": len(times)})
        return out
    pb = segs[-1]["pb"]
    fin = {"type": "speedrun.finish", "seg": None, "run_time": ms(prev)}
    if final_known and pb is not None:
        fin["pace"] = ms(prev - pb)
        fin["pace_ticks"] = prev - pb
    out.append(fin)
    if final_known and (pb is None or prev < pb):
        out.append({"type": "speedrun.pb", "seg": None, "run_time": ms(prev),
                    "improvement": ms(pb - prev) if pb is not None
                    else None})
    return out


DURATIONS = ("run_time", "segment_time", "pace", "best_segment_time",
             "improvement")


def want_view(run, ev):
    """What a native event must carry: type, split, group, split_index
    and each duration in ms (None where absent)."""
    lb = labels(run["segments"])
    seg = ev["seg"]
    return ((ev["type"],) +
            ((lb[seg][0], lb[seg][1], seg) if seg is not None else
             (None, None, None)) +
            tuple(ev.get(k) for k in DURATIONS))


def got_view(detail, from_ctrd=False):
    """The same view of a native event's detail as printed by ctrctl
    (durations as text) or as delivered by ctrd (their _ms twins)."""
    if from_ctrd:
        durs = tuple(detail.get(k + "_ms") for k in DURATIONS)
    else:
        durs = tuple(parse_ms(detail.get(k)) for k in DURATIONS)
    return (detail.get("split"), detail.get("group"),
            detail.get("split_index")) + durs


def rfc3339_s(text):
    """ctrd's "2026-12-03T21:48:17.123Z" as seconds since the epoch."""
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) + \
        int(text[20:23]) / 1000.0


def first_diff(got, want):
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return "at %d:\ngot:  %r\nwant: %r" % (i, a, b)
    return "lengths %d and %d" % (len(got), len(want))


# ---------------------------------------------------------------------
# Running ctrctl


def ctrctl(args, env=None, stdin=None, timeout=30):
    e = dict(os.environ)
    e.pop("CTR_KEY", None)
    e.update(env or {})
    p = subprocess.run([CTRCTL] + args, input=stdin, capture_output=True,
                       text=True, env=e, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def dry_run(path, extra=()):
    rc, out, err = ctrctl(["replay", "--dry-run"] + list(extra) + [path])
    lines = [json.loads(x) for x in out.splitlines() if x.strip()]
    return rc, lines, err


class Sink:
    """ctrctl sink on a port it picks, its JSON lines collected."""

    def __init__(self, args):
        self.proc = subprocess.Popen(
            [CTRCTL, "sink", "--listen", "127.0.0.1:0", "--json"] + args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        tap.cleanups.append(self.kill)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)",
                      self.proc.stderr.readline())
        self.port = int(m.group(1)) if m else None
        self.url = "http://127.0.0.1:%d/hook" % (self.port or 0)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(json.loads(line))
                self.cond.notify_all()

    def wait(self, n, timeout=10.0):
        end = time.time() + timeout
        with self.cond:
            while len(self.lines) < n and time.time() < end:
                self.cond.wait(max(0.0, end - time.time()))
            return list(self.lines)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def sign(whsec, msg_id, ts, body):
    raw = base64.b64decode(whsec[len("whsec_"):])
    mac = hmac.new(raw, ("%s.%d." % (msg_id, ts)).encode() + body,
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def post(port, body, headers=None, path="/hook"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, body=body, headers=headers or {})
    st = conn.getresponse().status
    conn.close()
    return st


# ---------------------------------------------------------------------
# replay --dry-run: the runs themselves

files = sorted(f for f in os.listdir(LSS_DIR) if f.endswith(".lss"))
if not tap.ok(len(files) >= 5, "the real splits files are in $CTR_DATA/lss",
              "%s: %r" % (LSS_DIR, files)):
    tap.finish()
runs = {f: read_lss(os.path.join(LSS_DIR, f)) for f in files}

for f in files:
    run, path = runs[f], os.path.join(LSS_DIR, f)
    want = expected(run, *synthetic(run))
    rc, evs, err = dry_run(path)
    got = [(e.get("type"),) + got_view(e.get("detail", {})) for e in evs]
    wv = [want_view(run, e) for e in want]
    tap.ok(rc == 0 and got == wv,
           "%s: the synthetic run is start, %d splits, %d gold(s), finish, pb "
           "(type, split, group, index, run/segment time, pace, best, "
           "improvement)" % (f, len(run["segments"]),
                             sum(e["type"] == "speedrun.gold"
                                 for e in want)),
           "rc %d %s\n%s" % (rc, err, first_diff(got, wv)))
    bad = [e for e in evs if set(e) != {"type", "source", "time", "detail"}
           or e["source"] != "livesplit" or not RFC3339_MS.match(e["time"])
           or e["detail"].get("game") != run["game"]
           or e["detail"].get("category") != run["category"]]
    tap.eq(bad[:2], [], "%s: every event is {type, source livesplit, time "
           "RFC 3339, detail with game and category}" % f)
    tap.eq(evs[0]["detail"].get("attempt") if evs else None,
           run["attempt_count"] + 1,
           "%s: the synthetic run is attempt AttemptCount + 1" % f)
    rc2, evs2, _ = dry_run(path)
    tap.ok([dict(e, time=None) for e in evs] ==
           [dict(e, time=None) for e in evs2],
           "%s: the synthetic run is the same every time" % f)

sm64 = runs["super_mario_64_16_star.lss"]
sm64_path = os.path.join(LSS_DIR, "super_mario_64_16_star.lss")
paces = [e["pace"] for e in expected(sm64, *synthetic(sm64))
         if e["type"] == "speedrun.split"]
tap.ok(any(p < 0 for p in paces) and any(p > 0 for p in paces),
       "replay data: the synthetic run has paces of both signs", paces)

metroid = [e["detail"] for e in dry_run(
    os.path.join(LSS_DIR, "super_metroid_any.lss"))[1]
    if e["type"] == "speedrun.split"]
tap.eq([(d["split"], d.get("group")) for d in metroid][:4] +
       [(d["split"], d.get("group")) for d in metroid][16:18],
       [("Entering Ceres Ridley", "Ceres Station"),
        ("Leaving Ceres Ridley", "Ceres Station"),
        ("Escaping Ceres Station", "Ceres Station"),
        ("Brinstar Elevator", "Kraid"), ("Kraid", "Kraid"),
        ("Varia", "Kraid")],
       "subsplits: \"-Name\" and \"{Group} Name\" become split Name with "
       "detail.group")

# Every recorded attempt of every file, against its segment history.
for f in files:
    run, path = runs[f], os.path.join(LSS_DIR, f)
    ids = sorted({i for s in run["segments"] for i in s["hist"]})
    bad, played = [], {"finish": 0, "reset": 0, "synthetic": 0}
    for aid in ids:
        a = attempt(run, aid)
        want = expected(run, *(a or synthetic(run)))
        rc, evs, err = dry_run(path, ["--run", str(aid)])
        got = [(e.get("type"),) + got_view(e.get("detail", {}))
               for e in evs]
        wv = [want_view(run, e) for e in want]
        start = evs[0]["detail"].get("attempt") if evs else None
        want_start = (aid if aid > 0 else None) if a else \
            run["attempt_count"] + 1
        if rc != 0 or got != wv or start != want_start or \
                (a is None) != ("synthetic run" in err):
            bad.append((aid, rc, err, first_diff(got, wv)))
        played["synthetic" if a is None else
               "finish" if a[1] else "reset"] += 1
    tap.eq(bad[:2], [], "%s: each of the %d recorded attempts replays as "
           "its segment history says (%r)" % (f, len(ids), played))

rc, evs, err = dry_run(sm64_path, ["--run", "27"])
tap.ok(rc == 0 and [e["type"] for e in evs][-1] == "speedrun.finish" and
       all(e["detail"].get("pace") == "0:00:00.000" for e in evs
           if e["type"] == "speedrun.split") and
       not any(e["type"] in ("speedrun.gold", "speedrun.pb") for e in evs),
       "--run 27 (the PB itself): pace 0 at every split, no gold, no pb",
       "%d %s %r" % (rc, err, [e["type"] for e in evs]))
rc, evs, err = dry_run(sm64_path, ["--run", "5"])
tap.ok(rc == 0 and evs[-1]["type"] == "speedrun.reset" and
       evs[-1]["detail"].get("split") == "FS" and
       evs[-1]["detail"].get("split_index") == 8 and
       evs[0]["detail"].get("attempt") == 5,
       "--run 5: a reset attempt ends with speedrun.reset at the split "
       "it did not reach", evs[-1:])
rc, evs, err = dry_run(sm64_path, ["--run", "46"])
tap.ok(rc == 0 and [e["type"] for e in evs][:3] ==
       ["speedrun.start", "speedrun.skip", "speedrun.split"] and
       "speedrun.gold" not in [e["type"] for e in evs[:4]],
       "--run 46: a skipped first split is speedrun.skip, and the segment "
       "timed across it is no gold", [e["type"] for e in evs[:4]])
rc, evs, err = dry_run(sm64_path, ["--run", "1"])
tap.ok(rc == 0 and evs[-1]["type"] == "speedrun.reset" and
       "no history for segment 8" in err,
       "--run 1: a history cleaned of a segment ends the run there, "
       "said on stderr", err)
rc, evs, err = dry_run(sm64_path, ["--run", "2"])
tap.ok(rc == 0 and "no segment times; playing a synthetic run" in err and
       evs[0]["detail"].get("attempt") == 54,
       "--run of an attempt with no segment times plays the synthetic run",
       err)
# An attempt the file does not have used to play a made-up run, exit 0,
# that could end in a fake personal best.
rc, evs, err = dry_run(sm64_path, ["--run", "9999"])
tap.ok(rc == 2 and evs == [] and "no attempt 9999" in err,
       "--run of an attempt not in the file is an error, exit 2",
       (rc, err))

# A file made here for what the real ones lack: a PB without times.
tmp = tempfile.mkdtemp(prefix="ctrctl-test-")
tap.cleanups.append(lambda: shutil.rmtree(tmp, True))
edge = os.path.join(tmp, "edge.lss")
with open(edge, "w", encoding="utf-8") as fh:
    fh.write("""<?xml version="1.0" encoding="UTF-8"?>
<Run version="1.7.0"><GameName> Édge &amp; Co </GameName>
<CategoryName>Any%</CategoryName><Offset>-00:00:02</Offset>
<AttemptCount>0</AttemptCount><AttemptHistory />
<Segments>
<Segment><Name>-</Name><SplitTimes><SplitTime name="Personal Best">
<RealTime>00:00:10</RealTime></SplitTime></SplitTimes>
<BestSegmentTime><RealTime>00:00:09.5</RealTime></BestSegmentTime>
<SegmentHistory /></Segment>
<Segment><Name>{} B</Name><SplitTimes><SplitTime name="Personal Best" />
</SplitTimes><BestSegmentTime><RealTime>00:00:05</RealTime>
</BestSegmentTime><SegmentHistory /></Segment>
<Segment><Name>C</Name><SplitTimes><SplitTime name="Personal Best" />
</SplitTimes><BestSegmentTime /><SegmentHistory /></Segment>
<Segment><Name>D</Name><SplitTimes><SplitTime name="Personal Best" />
</SplitTimes><BestSegmentTime /><SegmentHistory /></Segment>
</Segments></Run>
""")
rc, evs, err = dry_run(edge)
tap.eq([(e["type"], e["detail"].get("split"), e["detail"].get("pace"),
         e["detail"].get("run_time")) for e in evs],
       [("speedrun.start", None, None, None),
        ("speedrun.split", "-", "-0:00:00.250", "0:00:09.750"),
        ("speedrun.split", "{} B", None, "0:00:14.750"),
        ("speedrun.skip", "C", None, None),
        ("speedrun.skip", "D", None, None),
        ("speedrun.finish", None, None, "0:00:14.750")],
       "a PB without times: best segment time, then skips; no pace, no pb")
tap.eq(evs[0]["detail"].get("game") if evs else None, "Édge & Co",
       "names: entities decoded, UTF-8 kept, blanks trimmed")
with open(edge, "w") as fh:
    fh.write("<Run><Segments><Segment><Name/><SplitTimes><SplitTime "
             "name=\"Personal Best\"><RealTime>0:01:00</RealTime>"
             "</SplitTime></SplitTimes></Segment></Segments></Run>")
rc, evs, err = dry_run(edge)
tap.eq((rc, [(e["type"], e["detail"].get("split"), e["detail"].get("pace"))
             for e in evs]),
       (0, [("speedrun.start", None, None),
            ("speedrun.split", "", "-0:00:01.000"),
            ("speedrun.finish", None, "-0:00:01.000"),
            ("speedrun.pb", None, None)]),
       "a segment without a name, in a file without a game, replays as is")
bad_lss = os.path.join(tmp, "bad.lss")
with open(bad_lss, "w") as fh:
    fh.write("<Run><Segments><Segment><Name>A</Name><BestSegmentTime>"
             "<RealTime>1:2</RealTime></BestSegmentTime></Segment>"
             "</Segments></Run>\n")
rc, _, err = ctrctl(["replay", "--dry-run", bad_lss])
tap.ok(rc == 2 and re.search(r"bad\.lss:1: not a \.NET TimeSpan", err),
       "a time that is not TimeSpan text is refused with file:line", err)
with open(bad_lss, "w") as fh:
    fh.write("<Run><Segments><Segment>\n<Name>A</Name></Segments></Run>\n")
rc, _, err = ctrctl(["replay", "--dry-run", bad_lss])
tap.ok(rc == 2 and re.search(r"bad\.lss:2: .*mismatch", err),
       "malformed XML is refused with libxml2's line", err)
rc, _, err = ctrctl(["replay", "--dry-run", os.path.join(tmp, "none")])
tap.ok(rc == 2 and "No such file or directory" in err,
       "a missing splits file: exit 2 with the system's reason", err)
with open(bad_lss, "w") as fh:
    fh.write("")
rc, _, err = ctrctl(["replay", "--dry-run", bad_lss])
tap.ok(rc == 2 and "bad.lss" in err, "an empty file is refused", err)
rc, _, err = ctrctl(["replay", "--dry-run", "--speed", "x", sm64_path])
tap.eq(rc, 2, "replay: a bad --speed is a usage error (2)")

# --speed: the SM64 run is 17:35.659 on the timer.
t0 = time.time()
rc, evs, err = dry_run(sm64_path, ["--speed", "2000"])
dt = time.time() - t0
tap.ok(rc == 0 and 0.52 <= dt < 2.0, "--speed 2000 plays a 17:35 run in "
       "about 0.53 s", "%.3f s" % dt)
span = rfc3339_s(evs[-1]["time"]) - rfc3339_s(evs[0]["time"]) if evs else 0
tap.ok(0.5 <= span < 2.0, "--speed: each event's time is when it is sent",
       "%.3f s" % span)

# --legacy: the LiveSplit component's wire format.
for f in ("super_mario_64_16_star.lss", "super_metroid_any.lss"):
    run, path = runs[f], os.path.join(LSS_DIR, f)
    want = [e for e in expected(run, *synthetic(run))
            if e["type"] != "speedrun.pb"]
    rc, evs, err = dry_run(path, ["--legacy", "--producer", "runner"])
    wv = []
    for e in want:
        t = e["type"]
        if t == "speedrun.split" and (e.get("pace") or 0) < 0:
            t = "speedrun.pb"
        pace = e.get("pace_ticks")
        wv.append((t, run["segments"][e["seg"]]["name"]
                   if e["seg"] is not None else None,
                   dotnet(pace) + " | " if pace is not None else None))
    got = [(e.get("EventType"), e.get("SplitName"), e.get("Pace"))
           for e in evs]
    tap.ok(rc == 0 and got == wv, "%s --legacy: EventType (speedrun.pb for "
           "a split ahead), SplitName as in the file, Pace \"REAL | \" as "
           ".NET TimeSpan text" % f, first_diff(got, wv))
    bad = [e for e in evs if set(e) != LEGACY_KEYS or
           e["EventSource"] != "livesplit" or e["Producer"] != "runner" or
           e["Game"] != run["game"] or e["Category"] != run["category"] or
           not DOTNET_O.match(e["Timestamp"])]
    tap.eq(bad[:2], [], "%s --legacy: exactly the component's PascalCase "
           "fields, Timestamp in .NET round-trip form" % f)
rc, evs, _ = dry_run(sm64_path, ["--legacy"])
tap.ok(rc == 0 and evs[0]["Message"] == "attempt 54" and
       evs[0]["Producer"] is None and evs[1]["Pace"] ==
       "-00:00:00.2500000 | " and evs[-1]["EventType"] ==
       "speedrun.finish" and evs[-1]["Message"] ==
       "finished in 0:17:35.659",
       "--legacy: absent fields are null, start and finish carry messages",
       evs[:2] + evs[-1:])

# ---------------------------------------------------------------------
# The real thing: ctrd between ctrctl replay and ctrctl sink

whsec = new_whsec()
sink = Sink(["--secret", whsec])
if not tap.ok(sink.port is not None, "ctrctl sink --listen 127.0.0.1:0 "
              "says the port it bound"):
    tap.finish()
retry_sink = Sink(["--secret", whsec, "--status-seq", "500,500,200"])
d = Ctrd(tap, producers=[{"name": "runner"}, {"name": "other"}],
         consumers=[{"name": "sink", "url": sink.url, "secret": whsec,
                     "max_in_flight": 1, "budget_ms": 10000,
                     "pattern": {"source": ["livesplit"]}},
                    {"name": "retry", "url": retry_sink.url,
                     "secret": whsec, "budget_ms": 10000,
                     "pattern": {"detail": {"retry": [True]}}}])
if not tap.ok(d.start(), "ctrd starts", d.read_log()[-2000:]):
    tap.finish()
native_url = "http://127.0.0.1:%d/v1/events" % d.port
legacy_url = "http://127.0.0.1:%d/api/event" % d.port
key_env = {"CTR_KEY": d.keys["runner"]}
seq = [0]


def through_ctrd(f, legacy):
    run, path = runs[f], os.path.join(LSS_DIR, f)
    tag = "%s%s" % (f, " --legacy" if legacy else "")
    want = expected(run, *synthetic(run))
    if legacy:
        want = [e for e in want if e["type"] != "speedrun.pb"]
    n0 = len(sink.lines)
    args = ["replay", "--speed", "0"] + (["--legacy"] if legacy else []) + [
        "-u", legacy_url if legacy else native_url, path]
    # A producer's clock in another zone: ctrd must read the offset.
    rc, out, err = ctrctl(args, env=dict(key_env, TZ="Asia/Kolkata"))
    lines = out.splitlines()
    ids = [m.group(1) for m in (re.search(r" id=(\S+)", x) for x in lines)
           if m]
    tap.ok(rc == 0 and len(lines) == len(want) and
           all(x.startswith("status=202 ") for x in lines) and
           len(ids) == len(want),
           "%s: replay sends %d events, each answered 202 with an id" %
           (tag, len(want)), "rc %d %s\n%s" % (rc, err, "\n".join(lines[:3])))
    got = sink.wait(n0 + len(want))[n0:]
    time.sleep(0.05)
    got = sink.lines[n0:]
    if legacy:
        # ctrd makes the component's speedrun.pb a split with pb_pace,
        # and its names are the file's own.
        wv = [("speedrun.split" if e["type"] == "speedrun.split" else
               e["type"], run["segments"][e["seg"]]["name"]
               if e["seg"] is not None else None,
               e.get("pace"), True if e["type"] == "speedrun.split" and
               (e.get("pace") or 0) < 0 else None)
              for e in want]
        gv = [(g["type"], g["detail"].get("split"),
               g["detail"].get("pace_ms"), g["detail"].get("pb_pace"))
              for g in got]
    else:
        wv = [want_view(run, e) for e in want]
        gv = [(g["type"],) + got_view(g["detail"], True) for g in got]
    tap.ok(gv == wv, "%s: the sink receives exactly the run, in order" %
           tag, "%d received, %d sent; %s" % (len(gv), len(wv),
                                              first_diff(gv, wv)))
    tap.ok([g["id"] for g in got] == ids and
           all(g["signature"] == "ok" and g["producer"] == "runner" and
               g["status"] == 204 for g in got),
           "%s: each delivery has the id replay printed, a good signature, "
           "the key's producer" % tag, got[:1])
    skew = [abs(rfc3339_s(g["origin_time"]) - rfc3339_s(g["time"]))
            if g.get("origin_time") else None for g in got]
    tap.ok(all(x is not None and x < 5 for x in skew),
           "%s: origin_time is the producer's clock, read with its UTC "
           "offset" % tag, [(g["time"], g["origin_time"]) for g in got[:2]])
    seqs = [g["seq"] for g in got]
    tap.eq(seqs, list(range(seq[0] + 1, seq[0] + 1 + len(want))),
           "%s: seq goes up by 1 per event" % tag)
    seq[0] += len(want)
    lat = [g["latency_ms"] for g in got]
    tap.ok(all(isinstance(x, (int, float)) and 0 <= x < 2000 for x in lat),
           "%s: the sink prints a latency from the envelope's receive time"
           % tag, lat[:5])


for f in files:
    through_ctrd(f, False)
for f in files:
    through_ctrd(f, True)

rc, out, err = ctrctl(["replay", "--speed", "0", "--run", "5", "-u",
                       native_url, sm64_path], env=key_env)
n_run5 = len(expected(sm64, *attempt(sm64, 5)))
got = sink.wait(len(sink.lines) + n_run5)
tap.ok(rc == 0 and got[-1]["type"] == "speedrun.reset" and
       got[-1]["detail"]["split"] == "FS",
       "--run 5 through ctrd: the sink's last event is the reset at FS",
       got[-1:])

rc, out, err = ctrctl(["replay", "--speed", "0", "--legacy", "--producer",
                       "other", "-u", legacy_url, sm64_path], env=key_env)
tap.ok(rc == 1 and "status=403" in out and "error=producer_mismatch" in out,
       "replay --legacy --producer naming another producer: 403 on each "
       "event, exit 1", out[:300])
rc, out, err = ctrctl(["replay", "--speed", "0", sm64_path])
tap.ok(rc == 2 and "CTR_KEY" in err, "replay without a key: exit 2, says "
       "how to give one", err)

# ---------------------------------------------------------------------
# ctrctl send

n0 = len(sink.lines)
rc, out, err = ctrctl(["send", "-u", native_url, "speedrun.split",
                       "source=livesplit", "game=Celeste", "split=1A",
                       "split_index=3", "pb_pace=true", "count=007",
                       "pace=-0:00:01.5", "extra:={\"a\":[1,null]}",
                       "time=2026-01-02T03:04:05.678Z"], env=key_env)
reply = json.loads(out) if rc == 0 else {}
got = sink.wait(n0 + 1)[n0:]
det = got[0]["detail"] if got else {}
tap.ok(rc == 0 and reply.get("accepted") == 1 and
       got and got[0]["id"] == reply["entries"][0]["id"],
       "send with CTR_KEY: 202, prints ctrd's reply, exit 0", out + err)
tap.eq((det.get("split_index"), det.get("pb_pace"), det.get("count"),
        det.get("pace_ms"), det.get("extra"), "source" in det),
       (3, True, "007", -1500, {"a": [1, None]}, False),
       "send: key=value is a number or boolean when it reads as JSON, else "
       "text; key:=json is JSON; source goes to the envelope")
rc, out, err = ctrctl(["send", "-u", native_url, "ops.note", "who=me"],
                      env=key_env)
tap.eq(rc, 0, "send: any dotted type, source left to ctrd")

keyfile = os.path.join(tmp, "key")
fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT, 0o600)
os.write(fd, (d.keys["runner"] + "\n").encode())
os.close(fd)
ev_file = os.path.join(tmp, "batch.json")
with open(ev_file, "w") as fh:
    json.dump([{"type": "speedrun.start", "source": "livesplit",
                "detail": {"game": "Celeste"}},
               {"type": "speedrun.reset", "source": "livesplit",
                "detail": {"game": "Celeste"}}], fh)
rc, out, err = ctrctl(["send", "-u", native_url, "-k", keyfile, "-f",
                       ev_file])
tap.ok(rc == 0 and json.loads(out).get("accepted") == 2,
       "send -k KEYFILE -f a batch of two: both accepted", out + err)
rc, out, err = ctrctl(["send", "-u", native_url, "-k", keyfile, "-f", "-"],
                      stdin='{"type":"speedrun.start","source":"livesplit",'
                      '"detail":{"game":"Celeste"}}')
tap.ok(rc == 0 and json.loads(out).get("accepted") == 1,
       "send -f - reads the event from standard input", out + err)
# Repeated keys used to keep the last value; ctrd refuses duplicate keys.
rc, out, err = ctrctl(["send", "-u", native_url, "ops.note", "a=1", "a=2"],
                      env=key_env)
tap.ok(rc == 2 and "given more than once" in err,
       "send refuses a key given twice, exit 2", (rc, out, err))
# 1e999 reads as a JSON number but no double holds it: ctrd would refuse.
rc, out, err = ctrctl(["send", "-u", native_url, "ops.note", "big=1e999"],
                      env=key_env)
tap.ok(rc == 0 and json.loads(out).get("accepted") == 1,
       "send passes a number too large for a double as text", (rc, out))
# A 202 whose batch refused one event exited 0 before.
rc, out, err = ctrctl(["send", "-u", native_url, "-k", keyfile, "-f", "-"],
                      stdin='[{"type":"chat.message"},{"type":"BAD"}]')
tap.ok(rc == 1 and json.loads(out).get("failed") == 1,
       "send -f of a batch with a refused event exits 1", (rc, out, err))
rc, out, err = ctrctl(["send", "-u", native_url, "speedrun.split",
                       "game=Celeste", "split=64"], env=key_env)
tap.ok(rc == 1 and "invalid_field" in out,
       "send: a 400 from ctrd prints its error and exits 1", out)
rc, out, err = ctrctl(["send", "-u", native_url, "speedrun.start",
                       "game=X"], env={"CTR_KEY": new_key()})
tap.ok(rc == 1 and "unknown_key" in out,
       "send with a key ctrd does not know: 401, exit 1", out)
rc, out, err = ctrctl(["send", "-u", "http://127.0.0.1:%d/v1/events" %
                       free_port(), "speedrun.start", "game=X"],
                      env=key_env)
tap.ok(rc == 2 and out == "" and "127.0.0.1" in err,
       "send with no server listening: exit 2, the reason on stderr", err)
os.chmod(keyfile, 0o640)
rc, out, err = ctrctl(["send", "-u", native_url, "-k", keyfile,
                       "speedrun.start", "game=X"])
tap.ok(rc == 2 and "chmod 600" in err,
       "send refuses a key file that group or others can read", err)
rc, out, err = ctrctl(["send", "-u", native_url, "speedrun.start"],
                      env={"CTR_KEY": "not-a-key"})
tap.ok(rc == 2 and "not an API key" in err, "send refuses a malformed "
       "key before sending it anywhere", err)
rc, _, err = ctrctl(["send", "-u", native_url, "speedrun.start"])
tap.ok(rc == 2 and "CTR_KEY" in err, "send without any key: exit 2", err)
usage = [ctrctl(a, env=key_env)[0] for a in
         (["send"], ["send", "-f", ev_file, "speedrun.start"],
          ["send", "speedrun.start", "novalue"],
          ["send", "speedrun.start", "=x"], ["send", "x", "bad:={"])]
tap.eq(usage, [2] * 5, "send: no type, -f with a type, key without =, "
       "empty key and bad JSON are usage errors (2)")

# ---------------------------------------------------------------------
# ctrctl sink

rc, out, err = ctrctl(["send", "-u", native_url, "speedrun.start",
                       "game=Retry", "retry=true"], env=key_env)
ev_id = json.loads(out)["entries"][0]["id"] if rc == 0 else None
got = retry_sink.wait(3, timeout=8)
tap.eq([(g["id"], g["status"], g["signature"]) for g in got],
       [(ev_id, 500, "ok"), (ev_id, 500, "ok"), (ev_id, 200, "ok")],
       "sink --status-seq 500,500,200 through ctrd: two 500s, then the "
       "retry that lands gets 200")

direct = Sink(["--status-seq", "503,201"])
body = json.dumps({"id": "x", "type": "t.x", "seq": 1,
                   "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                         time.gmtime(time.time() - 1.5)),
                   "detail": {"k": "v"}}).encode()
sts = [post(direct.port, body) for _ in range(4)]
lines = direct.wait(4)
tap.ok(sts == [503, 201, 201, 201] and
       [x["status"] for x in lines] == sts,
       "sink --status-seq: answers in order, the last repeats", sts)
tap.ok(lines and lines[0]["signature"] == "unsigned" and
       lines[0]["detail"] == {"k": "v"} and lines[0]["id"] is None and
       1400 <= lines[0]["latency_ms"] < 5000,
       "sink --json: detail, unsigned without --secret, latency from the "
       "envelope's time", lines[:1])

slow = Sink(["--delay-ms", "600", "--secret", whsec])
ts = int(time.time())
res = []


def slow_post(i):
    b = json.dumps({"id": "e%d" % i, "type": "t.x"}).encode()
    res.append(post(slow.port, b, {
        "webhook-id": "e%d" % i, "webhook-timestamp": str(ts),
        "webhook-signature": sign(whsec, "e%d" % i, ts, b) if i != 2 else
        "v1,AAAA"}))


t0 = time.time()
threads = [threading.Thread(target=slow_post, args=(i,)) for i in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join(10)
dt = time.time() - t0
tap.ok(res == [204] * 3 and 0.55 <= dt < 1.1,
       "sink --delay-ms 600: three connections at once are all answered "
       "in about 0.6 s, not 1.8 s", "%r %.2f s" % (res, dt))
sigs = sorted((x["id"], x["signature"]) for x in slow.wait(3))
tap.eq(sigs, [("e0", "ok"), ("e1", "ok"), ("e2", "BAD")],
       "sink --secret: good signatures are ok, a wrong one is BAD")

p = subprocess.Popen([CTRCTL, "sink", "--listen", "127.0.0.1:0",
                      "--count", "2"], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
tap.cleanups.append(lambda: p.poll() is None and p.kill())
port = int(re.search(r":(\d+)$", p.stderr.readline().strip()).group(1))
sts = [post(port, b"{}") for _ in range(2)]
try:
    rc = p.wait(5)
except subprocess.TimeoutExpired:
    rc = None
out = p.stdout.read()
tap.ok(sts == [204, 204] and rc == 0 and
       re.match(r"^event=- type=- producer=- seq=-1 signature=unsigned "
                r"latency_ms=-1 bytes=2 status=204$", out.splitlines()[0]),
       "sink --count 2: plain lines, and it exits 0 after two answers",
       "%r %r %r" % (sts, rc, out))
usage = [ctrctl(a)[0] for a in (["sink"], ["sink", "--listen", "1.2.3"],
                                ["sink", "--listen", "127.0.0.1:0",
                                 "--status-seq", "200,99"],
                                ["sink", "--listen", "127.0.0.1:0",
                                 "--secret", "nope"])]
tap.eq(usage, [2] * 4, "sink: missing --listen, a bad address, a status "
       "below 100 and a bad secret are usage errors (2)")

# ---------------------------------------------------------------------
# keygen takes only names that ctr.conf takes, and makes nothing else


def conf_check(name, stanza=None):
    """Exit status of ctrctl check on a config whose one producer is
    name, with keygen's stanza if given."""
    conf = os.path.join(tmp, "names.conf")
    with open(conf, "w", encoding="utf-8") as fh:
        fh.write("listen: \"127.0.0.1:0\"\nsecret_file: %s\n"
                 "producers:\n" % kg_secret)
        fh.write(stanza or "  - name: %s\n    key_hash: %s\n" %
                 (json.dumps(name), "0" * 64))
        fh.write("consumers: []\n")
    return ctrctl(["check", conf])[0]


kg_secret = os.path.join(tmp, "kg-secret")
tap.eq(ctrctl(["secret-gen", kg_secret])[0], 0, "secret-gen for keygen")
bad_names = ["", "-x", ".x", "_x", "a b", "x" * 65, "\u00fcmlaut", "../x",
             "a/b", "a:b", "a\tb"]
for name in bad_names:
    rc, out, err = ctrctl(["keygen", "-s", kg_secret, name])
    tap.ok(rc == 2 and out == "" and "ctr_" not in err and
           "is not a producer name: 1 to 64 letters, digits" in err,
           "keygen %r: exit 2 with the naming rule, no key printed" %
           name, "rc=%r out=%r err=%r" % (rc, out, err))
    tap.eq(conf_check(name), 1, "ctr.conf refuses %r too" % name)
rc, out, err = ctrctl(["keygen", "-s", os.path.join(tmp, "none"), "a b"])
tap.ok(rc == 2 and "not a producer name" in err,
       "keygen checks the name before it reads the secret", err)
for name in ["a", "0", "A.b_c-9", "x" * 64, "a..b", "Z-"]:
    rc, out, err = ctrctl(["keygen", "-s", kg_secret, name])
    m = re.search(r"^  - name: .*\n    key_hash: [0-9a-f]{64}\n", out,
                  re.M)
    tap.ok(rc == 0 and m is not None and re.search(
        r"^ctr_[A-Za-z0-9_-]{43}$", out, re.M) is not None,
        "keygen %r: a key and its stanza" % name, "rc=%r %r" % (rc, err))
    tap.eq(conf_check(name, m.group(0) if m else None), 0,
           "keygen %r: ctrctl check accepts the stanza as printed" % name)

# A busy ctrd: 503 with Retry-After is waited out and the body sent again.
class Busy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answers = []            # statuses still to give, then 202
    bodies = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Busy.bodies.append((time.time(), body))
        st = Busy.answers.pop(0) if Busy.answers else 202
        out = (b'{"error":{"code":"overloaded","message":"busy"}}'
               if st == 503 else
               b'{"accepted":1,"failed":0,"entries":[{"id":"x"}]}')
        self.send_response(st)
        if st == 503:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


busy = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
threading.Thread(target=busy.serve_forever, daemon=True).start()
tap.cleanups.append(busy.shutdown)
busy_url = "http://127.0.0.1:%d/v1/events" % busy.server_address[1]
Busy.answers = [503]
rc, out, err = ctrctl(["send", "-u", busy_url, "ops.note", "n=1"],
                      env=key_env)
times = [t for t, _ in Busy.bodies]
tap.ok(rc == 0 and len(Busy.bodies) == 2 and
       Busy.bodies[0][1] == Busy.bodies[1][1] and
       times[1] - times[0] >= 0.9 and "503, retrying in 1 s" in err,
       "send: a 503 with Retry-After: 1 is waited out, then the same body "
       "is sent again and accepted", (rc, out, err, times))
Busy.bodies, Busy.answers = [], [503] * 5
rc, out, err = ctrctl(["send", "-u", busy_url, "ops.note", "n=2"],
                      env=key_env)
tap.ok(rc == 1 and len(Busy.bodies) == 5 and "overloaded" in out,
       "send: after 5 attempts that all got 503 it gives up, exit 1, with "
       "ctrd's last reply", (rc, out, err, len(Busy.bodies)))
busy.shutdown()

tap.eq(d.dead_letters(), [], "nothing was dead-lettered")
tap.ok(time.time() - T_START < 60, "script ran in under 60 s",
       "%.1f s" % (time.time() - T_START))
tap.finish()
