"""The live run page in a real browser: headless Chromium, started here
with a fresh profile and no background networking, opens
/runs/runner while a run replayed from a real splits file goes through
ctrd, and the rendered DOM is read back over the Chrome DevTools
Protocol: the splits in order, the pace colours, gold and PB moments,
producer text shown as text, a 360 px wide phone layout that does not
overflow, and a resume after ctrd restarts.  Screenshots are saved as
tests/page-screenshot.png (phone) and tests/page-screenshot-desktop.png.

The DevTools client is written here on the standard library: a minimal
WebSocket client (RFC 6455: masked text frames out, fragmented frames
in) and JSON-RPC over it.  Without /usr/bin/chromium the whole test is
skipped, with TAP's SKIP plan, never passed silently."""

import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET

import ctrtest
from ctrtest import Ctrd

CHROMIUM = os.environ.get("CTR_CHROMIUM", "/usr/bin/chromium")
LSS = "super_mario_64_16_star.lss"
# Pace of each split against the PB, in ms, cycled: both signs and zero.
OFFSETS_MS = [-1200, 850, -2400, 1500, 0, 3100, -75, 420, -1999, -2600,
              -640, 15]
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"
PHONE = (360, 740)
DESKTOP = (1100, 900)


# ---------------------------------------------------------------------
# WebSocket and DevTools


class WebSocket:
    """A client for one ws:// URL on loopback."""

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, url, timeout=10.0):
        m = re.match(r"^ws://(127\.0\.0\.1):(\d+)(/.*)$", url)
        if not m:
            raise ValueError("not a loopback ws:// URL: %r" % url)
        self.sock = socket.create_connection((m.group(1), int(m.group(2))),
                                             timeout=timeout)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        # No Origin header: Chromium refuses DevTools connections from
        # web origins it was not told to allow.
        req = ("GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" %
               (m.group(3), m.group(1), m.group(2), key))
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.partial = []
        lines = head.decode("latin-1").split("\r\n")
        if not re.match(r"^HTTP/1\.1 101 ", lines[0]):
            raise ConnectionError("handshake refused: %s" % lines[0])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        want = base64.b64encode(hashlib.sha1(
            (key + self.GUID).encode()).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            raise ConnectionError("bad Sec-WebSocket-Accept")

    def _frame(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = secrets.token_bytes(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send(self, text):
        self._frame(0x1, text.encode())

    def _parse(self):
        """One whole frame off the front of the buffer, as (first byte,
        payload), or None while it is still arriving."""
        b = self.buf
        if len(b) < 2:
            return None
        n, off = b[1] & 0x7f, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, off = struct.unpack("!H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, off = struct.unpack("!Q", b[2:10])[0], 10
        mask = None
        if b[1] & 0x80:
            if len(b) < off + 4:
                return None
            mask, off = b[off:off + 4], off + 4
        if len(b) < off + n:
            return None
        data, self.buf = b[off:off + n], b[off + n:]
        if mask:
            data = bytes(x ^ mask[i % 4] for i, x in enumerate(data))
        return b[0], data

    def recv(self, timeout):
        """One whole text message, or None after timeout seconds.  The
        frames of a message cut short by the timeout wait in
        self.partial for the next call."""
        end = time.time() + timeout
        while True:
            frame = self._parse()
            if frame is None:
                left = end - time.time()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    raise ConnectionError("WebSocket closed")
                self.buf += chunk
                continue
            b0, data = frame
            op = b0 & 0x0f
            if op == 0x9:
                self._frame(0xa, data)
            elif op == 0x8:
                raise ConnectionError("WebSocket closed by the peer")
            elif op in (0x0, 0x1, 0x2):
                self.partial.append(data)
                if b0 & 0x80:
                    msg = b"".join(self.partial).decode()
                    self.partial = []
                    return msg

    def close(self):
        try:
            self._frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


class DevTools:
    """JSON-RPC to one page target; events are kept until taken."""

    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0
        self.events = []

    def call(self, method, timeout=10.0, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method,
                                 "params": params}))
        end = time.time() + timeout
        while time.time() < end:
            raw = self.ws.recv(max(0.01, end - time.time()))
            if raw is None:
                break
            msg = json.loads(raw)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError("%s: no answer in %.0f s" % (method, timeout))

    def pump(self, seconds):
        """Collect events for a while."""
        end = time.time() + seconds
        while time.time() < end:
            raw = self.ws.recv(max(0.01, end - time.time()))
            if raw is None:
                break
            msg = json.loads(raw)
            if "method" in msg:
                self.events.append(msg)

    def eval(self, expr):
        """The value of a JavaScript expression, as JSON."""
        res = self.call("Runtime.evaluate", expression=expr,
                        returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError("JavaScript: %s" % json.dumps(
                res["exceptionDetails"])[:800])
        return res["result"].get("value")

    def wait_for(self, expr, timeout=10.0):
        """Poll a JavaScript expression until it is truthy; returns its
        last value.  A throw counts as false: the page may still be
        loading."""
        end = time.time() + timeout
        val = None
        while time.time() < end:
            try:
                val = self.eval(expr)
            except RuntimeError:
                val = None
            if val:
                return val
            self.pump(0.1)
        return val

    def screenshot(self, path):
        res = self.call("Page.captureScreenshot", timeout=20.0,
                        format="png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(res["data"]))

    def viewport(self, width, height, mobile):
        self.call("Emulation.setDeviceMetricsOverride", width=width,
                  height=height, deviceScaleFactor=2 if mobile else 1,
                  mobile=mobile)

    def close(self):
        self.ws.close()


class Chromium:
    """Headless Chromium in its own process group, with a throwaway
    profile, that can reach loopback only."""

    def __init__(self, tap):
        self.profile = tempfile.mkdtemp(prefix="ctr-chromium-")
        tap.cleanups.append(lambda: shutil.rmtree(self.profile, True))
        self.stderr = []
        self.ws_url = None
        self.found = threading.Event()
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-quic", "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions",
                "--no-default-browser-check", "--no-proxy-server",
                "--host-resolver-rules=MAP * ~NOTFOUND, "
                "EXCLUDE 127.0.0.1",
                "--remote-debugging-port=0",
                "--user-data-dir=" + self.profile, "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE,
                                     start_new_session=True)
        tap.cleanups.append(self.kill)
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stderr.append(line)
            del self.stderr[:-60]
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m and not self.found.is_set():
                self.ws_url = m.group(1)
                self.found.set()

    def page_ws(self, timeout=20.0):
        """The DevTools URL of the first page target, or None."""
        if not self.found.wait(timeout):
            return None
        port = int(re.match(r"ws://127\.0\.0\.1:(\d+)/",
                            self.ws_url).group(1))
        end = time.time() + timeout
        while time.time() < end:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/json/list")
            targets = json.loads(conn.getresponse().read())
            conn.close()
            for t in targets:
                if t.get("type") == "page":
                    return t["webSocketDebuggerUrl"]
            time.sleep(0.1)
        return None

    def kill(self):
        """The whole process group, by the leader's PID."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


# ---------------------------------------------------------------------
# The run


def timespan_ms(text):
    """.NET TimeSpan text, "[-][d.]hh:mm:ss[.fffffff]", as ms."""
    m = re.match(r"^(-)?(?:(\d+)\.)?(\d+):(\d\d):(\d\d)(?:\.(\d{1,7}))?$",
                 text.strip())
    days, h, mi, s, frac = m.group(2, 3, 4, 5, 6)
    ms = ((((int(days or 0) * 24 + int(h)) * 60 + int(mi)) * 60 + int(s))
          * 1000 + int((frac or "").ljust(7, "0")[:3]))
    return -ms if m.group(1) else ms


def fmt_ms(ms):
    sign = "-" if ms < 0 else ""
    u = abs(ms)
    return "%s%d:%02d:%02d.%03d" % (sign, u // 3600000, u // 60000 % 60,
                                    u // 1000 % 60, u % 1000)


def read_lss(path):
    root = ET.parse(path).getroot()
    segs = []
    for seg in root.find("Segments").findall("Segment"):
        pb = best = None
        for st in seg.find("SplitTimes").findall("SplitTime"):
            if st.get("name") == "Personal Best":
                pb = st.findtext("RealTime")
        best = seg.find("BestSegmentTime").findtext("RealTime")
        segs.append({"name": seg.findtext("Name"),
                     "pb": timespan_ms(pb) if pb else None,
                     "best": timespan_ms(best) if best else None})
    return {"game": root.findtext("GameName"),
            "category": root.findtext("CategoryName"),
            "attempts": int(root.findtext("AttemptCount") or 0),
            "segments": segs}


def make_run(run):
    """Native event bodies for one run, and what the page must show."""
    game, cat = run["game"], run["category"]
    bodies = [{"type": "speedrun.start", "source": "livesplit",
               "detail": {"game": game, "category": cat,
                          "attempt": run["attempts"] + 1,
                          "message": "good luck \u202e" + XSS}}]
    splits, golds = [], []
    prev = 0
    pace = 0
    for i, seg in enumerate(run["segments"]):
        if seg["pb"] is None:
            continue
        pace = OFFSETS_MS[i % len(OFFSETS_MS)]
        t = seg["pb"] + pace
        seg_ms = t - prev
        prev = t
        bodies.append({"type": "speedrun.split", "source": "livesplit",
                       "detail": {"game": game, "category": cat,
                                  "split": seg["name"], "split_index": i,
                                  "pace": fmt_ms(pace),
                                  "run_time": fmt_ms(t),
                                  "segment_time": fmt_ms(seg_ms)}})
        splits.append((seg["name"], pace))
        if seg["best"] is not None and seg_ms < seg["best"]:
            bodies.append({"type": "speedrun.gold", "source": "livesplit",
                           "detail": {"game": game, "category": cat,
                                      "split": seg["name"],
                                      "split_index": i,
                                      "segment_time": fmt_ms(seg_ms),
                                      "best_segment_time":
                                      fmt_ms(seg["best"]),
                                      "improvement":
                                      fmt_ms(seg["best"] - seg_ms)}})
            golds.append(seg["name"])
    bodies.append({"type": "speedrun.finish", "source": "livesplit",
                   "detail": {"game": game, "category": cat,
                              "run_time": fmt_ms(prev),
                              "pace": fmt_ms(pace),
                              "message": "gg" + "_wp" * 50}})
    return bodies, splits, golds, pace


def inline_hash(html, tag):
    m = re.search(r"<%s>(.*?)</%s>" % (tag, tag), html, re.S)
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(
        m.group(1).encode()).digest()).decode()


# What the page shows, read in one go: the list oldest first.
READ_DOM = r"""(() => {
  const t = (root, sel) => { const e = root.querySelector(sel);
                            return e ? e.textContent : null; };
  const items = [...document.querySelectorAll('#events > li')].reverse();
  const card = document.querySelector('#runs .run');
  return {
    conn: document.getElementById('conn').getAttribute('data-state'),
    heading: document.getElementById('title').firstChild.textContent,
    title: document.title,
    notice: document.getElementById('notice').hidden ? null :
            document.getElementById('notice').textContent,
    imgs: document.querySelectorAll('img').length,
    scripts: document.querySelectorAll('script').length,
    items: items.map(li => ({type: li.getAttribute('data-type'),
                             cls: li.className,
                             text: t(li, '.ev-text'),
                             msg: t(li, '.ev-msg'),
                             pace: t(li, '.ev-pace')})),
    cards: document.querySelectorAll('#runs .run').length,
    card: card && {producer: t(card, '.producer'), game: t(card, '.game'),
                   category: t(card, '.category'),
                   split: t(card, '.split'), status: t(card, '.status'),
                   pace: t(card, '.pace'),
                   paceCls: card.querySelector('.pace').className,
                   moment: t(card, '.moment')},
    bg: getComputedStyle(document.body).backgroundColor,
  };
})()"""

OVERFLOW = r"""(() => {
  const w = document.documentElement.clientWidth;
  const out = [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && (r.right > w + 0.5 || r.left < -0.5);
  }).map(e => e.tagName + '.' + e.className);
  return {scrollWidth: document.documentElement.scrollWidth, width: w,
          out: out.slice(0, 10)};
})()"""


# ---------------------------------------------------------------------


def main():
    if not os.access(CHROMIUM, os.X_OK):
        print("1..0 # SKIP chromium is not installed (%s); "
              "apt-get install chromium to run the browser test" %
              CHROMIUM)
        return 0

    tap = ctrtest.Tap()
    try:
        run_checks(tap)
    except Exception:   # a DevTools or HTTP failure: report, clean up
        tap.ok(False, "the browser test ran to its end",
               traceback.format_exc())
    tap.finish()


def run_checks(tap):
    run = read_lss(os.path.join(ctrtest.DATA, "lss", LSS))
    bodies, splits, golds, final_pace = make_run(run)
    tap.ok(len(splits) >= 10 and any(p < 0 for _, p in splits) and
           any(p > 0 for _, p in splits) and golds,
           "replay data: %s gives %d splits of both paces and %d golds" %
           (LSS, len(splits), len(golds)), (splits, golds))

    d = Ctrd(tap, producers=[{"name": "runner"}, {"name": "other"}])
    if not tap.ok(d.start(), "ctrd starts", d.read_log()[-2000:]):
        tap.finish()
    base = "http://127.0.0.1:%d" % d.port

    # The page as served.
    st, h, body = d.request("GET", "/runs/runner")
    html = body if isinstance(body, str) else ""
    csp = h.get("content-security-policy", "")
    tap.ok(st == 200 and h.get("content-type", "").startswith("text/html")
           and "<title>" in html,
           "GET /runs/runner serves the page as text/html", (st, h))
    tap.ok("default-src 'none'" in csp and "connect-src 'self'" in csp and
           inline_hash(html, "style") in csp and
           inline_hash(html, "script") in csp and
           "unsafe-inline" not in csp,
           "the page's CSP allows its own style and script by hash and "
           "connections to itself only", csp)
    tap.eq(h.get("x-content-type-options"), "nosniff",
           "the page is sent with X-Content-Type-Options: nosniff")
    src = os.path.join(os.environ.get("CTR_SRCDIR", "."), "src",
                       "page.html")
    with open(src, encoding="utf-8") as f:
        tap.ok(html == f.read(), "the page served is src/page.html, "
               "byte for byte")
    st, h, body = d.request("GET", "/")
    tap.ok(st == 200 and body == html, "GET / serves the same page")
    bad = []
    for path in ("/runs/", "/runs/-x", "/runs/a/b", "/runs/" + "a" * 65,
                 "/runs/%3Cimg%3E", "/runs/runner/", "/runsx"):
        st, h, body = d.request("GET", path)
        if not (st == 404 and isinstance(body, dict) and
                body.get("error", {}).get("code") == "not_found"):
            bad.append((path, st, body))
    tap.eq(bad, [], "paths under /runs/ that are not a producer name "
           "get a JSON 404")
    st, h, _ = d.request("HEAD", "/runs/" + "a" * 64)
    tap.eq(st, 200, "HEAD /runs/<64-character name> is 200")

    chrome = Chromium(tap)
    ws = chrome.page_ws()
    if not tap.ok(ws is not None, "chromium starts and offers DevTools",
                  "\n".join(chrome.stderr[-20:])):
        tap.finish()
    cdp = DevTools(ws)
    tap.cleanups.append(cdp.close)
    for m in ("Page.enable", "Runtime.enable", "Log.enable"):
        cdp.call(m)
    cdp.viewport(DESKTOP[0], DESKTOP[1], False)
    cdp.call("Page.navigate", url=base + "/runs/runner")
    state = cdp.wait_for("(s => s === 'live' && s)(document"
                         ".getElementById('conn').getAttribute("
                         "'data-state'))")
    if not tap.eq(state, "live", "the page connects to the stream"):
        tap.finish()

    # The run, with another producer's events in between.
    ids, refused = [], []
    for i, b in enumerate(bodies):
        st, _, rb = d.post(b, producer="runner")
        if st != 202:
            refused.append((b["type"], st, rb))
        else:
            ids.append(rb["entries"][0]["id"])
        if i == 3:
            d.post({"type": "speedrun.split", "source": "livesplit",
                    "detail": {"game": "Other Game", "split": "not-mine",
                               "pace": "0:00:01.000"}}, producer="other")
    tap.eq(refused, [], "ctrd accepts all %d events of the run" %
           len(bodies))
    n = len(bodies)
    cdp.wait_for("document.querySelectorAll('#events > li').length >= %d"
                 % n)
    cdp.pump(0.3)
    dom = cdp.eval(READ_DOM)
    items = dom["items"]
    tap.eq([it["type"] for it in items], [b["type"] for b in bodies],
           "the event list holds the run's events in order, newest first")
    got_splits = [it["text"] for it in items
                  if it["type"] == "speedrun.split"]
    tap.eq(got_splits, [s for s, _ in splits],
           "the splits appear in the order they were run")
    want_cls = [("ahead" if p < 0 else "behind" if p > 0 else "even")
                for _, p in splits]
    got_cls = [next((c for c in ("ahead", "behind", "even")
                     if c in it["cls"].split()), None)
               for it in items if it["type"] == "speedrun.split"]
    tap.eq(got_cls, want_cls, "each split is coloured ahead (negative "
           "pace), behind (positive) or even")
    tap.ok(all(it["pace"].startswith("\u2212") for it in items
               if it["type"] == "speedrun.split" and "ahead" in it["cls"])
           and all(it["pace"].startswith("+") for it in items
                   if it["type"] == "speedrun.split" and
                   "behind" in it["cls"]),
           "ahead paces read -x.xx and behind paces +x.xx",
           [it["pace"] for it in items])
    tap.eq([it["text"] for it in items if it["type"] == "speedrun.gold"],
           golds, "gold splits are listed for the right segments")
    tap.ok(all("ev-gold" in it["cls"].split() for it in items
               if it["type"] == "speedrun.gold"),
           "gold entries are highlighted")
    tap.ok("ev-pb" in items[-1]["cls"].split(),
           "a finish ahead of the PB is highlighted as a PB", items[-1])
    tap.ok(not any("not-mine" in (it["text"] or "") for it in items),
           "another producer's events stay off /runs/runner")
    c = dom["card"] or {}
    tap.eq((dom["heading"], dom["title"].split(" ")[0]), ("runner", "runner"),
           "the page's heading and title name the producer")
    tap.eq((c.get("game"), c.get("category"), c.get("split")),
           (run["game"], run["category"], splits[-1][0]),
           "the run card shows game, category and the last split")
    want = "ahead" if final_pace < 0 else "behind"
    tap.ok(want in c.get("paceCls", "").split(),
           "the card's pace is coloured %s at the finish" % want, c)
    tap.ok(final_pace < 0 and c.get("status") == "PB!" and
           "New personal best" in (c.get("moment") or ""),
           "a finish ahead of the PB is shown as a new PB", c)
    start = items[0] if items else {}
    tap.ok(start.get("msg") == "good luck " + XSS and dom["imgs"] == 0 and
           dom["scripts"] == 1,
           "producer text with HTML is shown as text: no element made, "
           "and a direction override (U+202E) is dropped",
           (start, dom["imgs"], dom["scripts"]))
    dialogs = [e for e in cdp.events
               if e["method"] == "Page.javascriptDialogOpening"]
    csp_errors = [e["params"]["entry"]["text"] for e in cdp.events
                  if e["method"] == "Log.entryAdded" and
                  "Content Security Policy" in
                  e["params"]["entry"].get("text", "")]
    tap.eq(dialogs, [], "no script from producer text ran")
    tap.ok(csp_errors == [] and dom["bg"] == "rgb(16, 18, 24)",
           "the page's style and script run under its CSP",
           (csp_errors, dom["bg"]))

    shots = os.path.join(os.getcwd(), "tests")
    os.makedirs(shots, exist_ok=True)
    cdp.pump(2.5)       # let the highlight animations end
    cdp.screenshot(os.path.join(shots, "page-screenshot-desktop.png"))
    cdp.viewport(PHONE[0], PHONE[1], True)
    cdp.pump(0.3)
    o = cdp.eval(OVERFLOW)
    tap.ok(o["scrollWidth"] <= PHONE[0] and o["out"] == [],
           "at %d px wide nothing overflows sideways" % PHONE[0], o)
    cdp.call("Runtime.evaluate", expression="window.scrollTo(0, 0)")
    cdp.pump(0.5)
    cdp.screenshot(os.path.join(shots, "page-screenshot.png"))
    tap.ok(os.path.getsize(os.path.join(shots, "page-screenshot.png")) >
           10000, "a phone screenshot is saved in tests/page-screenshot.png")

    # Opened after the run, the page shows it from the stream's ring.
    cdp.viewport(DESKTOP[0], DESKTOP[1], False)
    cdp.call("Page.reload", ignoreCache=True)
    cdp.wait_for("document.querySelectorAll('#events > li').length >= %d"
                 % n)
    cdp.pump(0.3)
    again = cdp.eval(READ_DOM)
    tap.ok([it["type"] for it in again["items"]] ==
           [b["type"] for b in bodies] and again["notice"] is None and
           again["conn"] == "live" and
           (again["card"] or {}).get("status") == "PB!",
           "reopened after the run, the page shows the run so far, "
           "without a gap notice",
           (again["conn"], again["notice"], again["card"],
            [it["type"] for it in again["items"]]))

    # A restart of ctrd on the same port: the page shows that it is
    # reconnecting, resumes by itself and says that events were lost.
    port = d.port
    tap.eq(d.stop(), 0, "ctrd stops on SIGTERM with the page open")
    state = cdp.wait_for("(s => s !== 'live' && s)(document."
                         "getElementById('conn').getAttribute('data-state'))")
    tap.ok(state in ("reconnecting", "offline"),
           "the page shows it is reconnecting", state)
    with open(d.conf) as f:
        conf = f.read()
    with open(d.conf, "w") as f:
        f.write(conf.replace('listen: "127.0.0.1:0"',
                             'listen: "127.0.0.1:%d"' % port))
    if not tap.ok(d.start(), "ctrd starts again on port %d" % port,
                  d.read_log()[-2000:]):
        tap.finish()
    state = cdp.wait_for("document.getElementById('conn')"
                         ".getAttribute('data-state') === 'live'", 20)
    tap.ok(state, "the page is live again after the restart")
    gap = cdp.wait_for("!document.getElementById('notice').hidden && "
                       "document.querySelectorAll('#events > "
                       "li[data-type=\"ctr.gap\"]').length", 5)
    tap.ok(gap == 1, "after the restart the page notes the gap once", gap)
    st, _, _ = d.post({"type": "speedrun.reset", "source": "livesplit",
                       "detail": {"game": run["game"],
                                  "category": run["category"]}})
    last = cdp.wait_for("(li => li && li.getAttribute('data-type'))"
                        "(document.querySelector('#events > li'))"
                        " === 'speedrun.reset'", 5)
    tap.ok(st == 202 and last, "an event after the resume is shown live")

    # / follows every producer, one card each.
    cdp.viewport(DESKTOP[0], DESKTOP[1], False)
    cdp.call("Page.navigate", url=base + "/")
    cdp.wait_for("document.getElementById('conn')"
                 ".getAttribute('data-state') === 'live'")
    d.post({"type": "speedrun.split", "source": "livesplit",
            "detail": {"game": "Other Game", "split": "Level 1",
                       "pace": "0:00:01.000"}}, producer="other")
    d.post(bodies[1], producer="runner")
    d.post({"type": "speedrun.finish", "source": "livesplit",
            "detail": {"game": "Other Game", "run_time": "0:10:00.000",
                       "pace": "0:00:01.000"}}, producer="other")
    cards = cdp.wait_for("(c => c.length === 2 && c.map(x => x.textContent))"
                         "([...document.querySelectorAll("
                         "'#runs .run .producer')])", 5)
    tap.eq(cards, ["runner", "other"],
           "/ shows a card for each producer, in order of appearance "
           "(runner's from the ring)")
    status = cdp.wait_for("(s => s[1] === 'finished' && s)([...document"
                          ".querySelectorAll('#runs .run .status')]"
                          ".map(x => x.textContent))", 5)
    tap.eq(status, ["running", "finished"], "a run under way is shown "
           "as running, a finish behind the PB as finished")
    links = cdp.eval("[...document.querySelectorAll('#runs a.producer')]"
                     ".map(a => a.getAttribute('href'))")
    tap.eq(links, ["/runs/runner", "/runs/other"],
           "each card on / links to that producer's page")

    cdp.close()
    chrome.kill()
    left = subprocess.run(["pgrep", "-f", chrome.profile],
                          capture_output=True, text=True).stdout.split()
    tap.eq(left, [], "no chromium process is left")


if __name__ == "__main__":
    sys.exit(main())
