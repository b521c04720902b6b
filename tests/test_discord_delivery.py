"""Discord consumers end to end: ctrd delivers to a local Discord stand-in
that enforces Discord's documented limits and rate limits."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import ctrtest
from discord_standin import DiscordStandin

tap = ctrtest.Tap()

GAME = {"game": "Super Mario 64", "category": "16 Star"}


def ev(type_, **detail):
    d = dict(GAME)
    d.update(detail)
    return {"type": type_, "source": "livesplit", "detail": d}


def texts(embed):
    """Every piece of text Discord would show for one embed."""
    out = [embed.get("title", ""), embed.get("description", ""),
           embed.get("author", {}).get("name", ""),
           embed.get("footer", {}).get("text", "")]
    for f in embed.get("fields", []):
        out += [f.get("name", ""), f.get("value", "")]
    return out


# --- formatting, one event a message ---------------------------------------

fmt = DiscordStandin(tap, limit=100, window=1.0)
burst = DiscordStandin(tap, limit=2, window=1.0)
slow = DiscordStandin(tap, limit=1, window=5.0)
other_url = slow.add_webhook("456", "tok-other")
hook = ctrtest.Receiver(tap)
picky = DiscordStandin(tap, limit=100, window=1.0)
consumers = [
    {"name": "picky", "kind": "discord", "url": picky.url,
     "types": ["speedrun.gold", "speedrun.pb"],
     "pattern": {"detail": {"case": ["fmt"]}}},
    {"name": "fmt", "kind": "discord", "url": fmt.url,
     "username": "CTR Bot", "pattern": {"detail": {"case": ["fmt"]}}},
    {"name": "burst", "kind": "discord", "url": burst.url,
     "pattern": {"detail": {"case": ["burst"]}}},
    {"name": "slow", "kind": "discord", "url": slow.url, "budget_ms": 1000,
     "pattern": {"detail": {"case": ["slow"]}}},
    {"name": "other", "kind": "discord", "url": other_url,
     "pattern": {"detail": {"case": ["slow"]}}},
    {"name": "hook", "url": hook.url},
]
d = ctrtest.Ctrd(tap, consumers=consumers)
if not tap.ok(d.start(), "ctrd starts with discord consumers", d.read_log()):
    tap.finish()

cases = [
    (ev("speedrun.start", case="fmt"), "Run started", None),
    (ev("speedrun.split", case="fmt", split="Bob-omb Battlefield",
        pace="-0:00:05.000"), "Bob-omb Battlefield", 0x2ECC71),
    (ev("speedrun.split", case="fmt", split="Whomp's Fortress",
        pace="+0:00:00.480"), "Whomp's Fortress", 0xE74C3C),
    (ev("speedrun.gold", case="fmt", split="Cool, Cool Mountain",
        segment_time="0:01:52.340"), "Cool, Cool Mountain", 0xF1C40F),
    (ev("speedrun.reset", case="fmt", split="Lethal Lava Land"),
     "Lethal Lava Land", None),
    (ev("speedrun.finish", case="fmt", run_time="0:17:53.249"),
     "finished", None),
    (ev("speedrun.pb", case="fmt", run_time="0:17:40.000",
        improvement="-0:00:13.249"), "personal best", 0xF1C40F),
    (ev("chat.message", case="fmt", message="hello"), "chat.message", None),
]
for i, (e, title_part, colour) in enumerate(cases):
    st, _, body = d.post(e)
    got = fmt.wait(i + 1, timeout=5, accepted=True)
    msgs = fmt.messages()
    if not tap.ok(st == 202 and len(msgs) == i + 1,
                  "%s arrives as its own message" % e["type"],
                  "%r %r %r" % (st, body, [r.error for r in got])):
        continue
    m = msgs[i]
    embed = m["embeds"][0] if m.get("embeds") else {}
    tap.ok(title_part.lower() in embed.get("title", "").lower(),
           "%s: the title names %r" % (e["type"], title_part),
           json.dumps(embed)[:800])
    if colour is not None:
        tap.eq(embed.get("color"), colour,
               "%s %s: colour %#x" % (e["type"],
                                      e["detail"].get("pace", ""), colour))
    if i == 1:
        shown = " ".join(texts(embed))
        tap.ok("Super Mario 64" in shown and "16 Star" in shown,
               "a split shows the game and category", shown)
        tap.ok("5.000" in shown and "ahead" in shown.lower(),
               "a split ahead shows the pace and says ahead", shown)
        tap.eq(m.get("username"), "CTR Bot", "the configured username")
        tap.eq(m.get("allowed_mentions"), {"parse": []},
               "allowed_mentions allows nobody")
        tap.ok(embed.get("timestamp", "").startswith("20"),
               "the embed carries a timestamp", embed.get("timestamp"))
tap.eq(fmt.refused(), [], "Discord refused none of the messages")
picky.wait(2, timeout=5)
tap.eq([r.json["embeds"][0]["title"] for r in picky.accepted_requests()
        if r.json], [m["embeds"][0]["title"] for m in fmt.messages()
                     if m["embeds"][0].get("color") == 0xF1C40F],
       "a consumer with types [speedrun.gold, speedrun.pb] hears only "
       "about golds and personal bests")

# Untrusted text: mentions neutralised, long multibyte text cut cleanly.
# A split name of 250 characters is 370 UTF-16 units: over the title's 256.
evil = ev("speedrun.split", case="fmt",
          split="@everyone <@123456> <@&42>" + "é" * 100 + "🏃" * 124,
          pace="-0:00:01.000", message="@here " + "é" * 1990)
n = len(fmt.requests)
st, _, body = d.post(evil)
tap.eq(st, 202, "ctrd accepts the long, mention-laden event")
fmt.wait(n + 1, timeout=5)
last = fmt.requests[-1]
tap.eq(last.status, 200, "a message with long multibyte text is accepted")
if last.json:
    shown = texts(last.json["embeds"][0])
    joined = " ".join(shown)
    tap.ok("@everyone" not in joined and "@here" not in joined,
           "@everyone and @here are neutralised", joined[:300])
    tap.ok("<@123456>" not in joined and "<@&42>" not in joined,
           "user and role mentions are neutralised", joined[:300])
    title = last.json["embeds"][0].get("title", "")
    tap.ok(title.endswith("…"), "a cut title ends with an ellipsis",
           title[-20:])
    tap.ok(len(title.encode("utf-16-le")) // 2 <= 256,
           "the title stays within 256 UTF-16 units")
    tap.ok("\ufffd" not in title,
           "the cut falls between characters, never inside one")

# --- rate limits: no 429 collected, order kept, bursts coalesced ----------

names = ["Split %02d" % i for i in range(12)]
t0 = time.time()
for name in names:
    st, _, _ = d.post(ev("speedrun.split", case="burst", split=name,
                         pace="-0:00:00.100"))
end = time.time() + 6
while time.time() < end:
    seen = [e.get("title", "") for e in burst.embeds()]
    if sum(1 for s in seen for nm in names if nm in s) >= len(names):
        break
    time.sleep(0.05)
seen = [e.get("title", "") for e in burst.embeds()]
order = [nm for s in seen for nm in names if nm in s]
tap.eq(order, names, "a burst of 12 splits arrives complete and in order")
tap.eq(burst.violations(), [],
       "no request is sent while the limit says 0 remaining")
msgs = burst.accepted_requests()
tap.ok(len(msgs) < len(names),
       "the burst is coalesced into fewer messages (%d)" % len(msgs))
tap.ok(all(len(r.json.get("embeds", [])) <= 10 for r in msgs),
       "no message carries more than 10 embeds")
if msgs:
    tap.ok(msgs[-1].time - t0 < 2.0,
           "the whole burst lands inside the 2 s budget (%.2f s)"
           % (msgs[-1].time - t0))
tap.eq([x for x in d.dead_letters() if x["consumer"] == "burst"], [],
       "nothing of the burst is dead-lettered")

# A forced 500 is retried; a forced 429 pauses, then delivers.
burst.force(500)
n = len(burst.requests)
time.sleep(1.1)                     # let the bucket refill
d.post(ev("speedrun.split", case="burst", split="After 500"))
got = burst.wait(n + 2, timeout=5)
tap.eq([r.status for r in got[n:n + 2]], [500, 200],
       "a 500 from Discord is retried and then delivered")
time.sleep(1.1)
burst.force(429)
n = len(burst.requests)
d.post(ev("speedrun.split", case="burst", split="After 429"))
got = burst.wait(n + 2, timeout=5)
tap.eq([r.status for r in got[n:n + 2]], [429, 200],
       "a 429 from Discord pauses the webhook, then delivers")
if len(got) >= n + 2:
    tap.ok(got[n + 1].mono - got[n].mono >= 0.2,
           "the retry after the 429 waited (%.3f s)"
           % (got[n + 1].mono - got[n].mono))

# --- budget: a webhook paused past the budget dead-letters the rest -------

t0 = time.time()
for i in range(3):
    d.post(ev("speedrun.split", case="slow", split="Slow %d" % i))
other = [r for r in slow.requests if r.webhook == "456"]
end = time.time() + 4
while time.time() < end and len([x for x in d.dead_letters()
                                 if x["consumer"] == "slow"]) < 2:
    time.sleep(0.05)
dead = [x for x in d.dead_letters() if x["consumer"] == "slow"]
tap.eq(len(dead), 2, "with the webhook paused for 5 s, the two events "
       "behind the first miss the 1 s budget and are dead-lettered")
tap.ok(all(x["reason"] == "budget_exhausted" for x in dead),
       "their reason is budget_exhausted",
       [x["reason"] for x in dead])
tap.eq(slow.violations(), [], "the paused webhook got no request early")
other = [r for r in slow.requests if r.webhook == "456"]
tap.ok(len(other) >= 1 and other[0].time - t0 < 1.0,
       "another Discord webhook is not held up by the paused one")

# --- secrets --------------------------------------------------------------

st, _, metrics = d.request("GET", "/metrics")
log = d.read_log()
tap.ok("tok-secret" not in log and "tok-other" not in log,
       "the webhook token never appears in the log")
tap.ok("tok-secret" not in str(metrics), "nor in /metrics")
tap.eq(len(hook.wait(len(cases) + 1 + 12 + 2 + 3, timeout=5)),
       len(cases) + 1 + 12 + 2 + 3,
       "the plain webhook consumer got every event meanwhile")
# A batch's failure path once read freed memory (caught by ASan): the
# daemon must have survived all of the above and stop cleanly.
tap.eq(d.stop(), 0, "ctrd exits 0 after all of that")
tap.ok("Sanitizer" not in d.read_log(), "no sanitizer report in the log")

# --- the global rate limit --------------------------------------------------

class Global(BaseHTTPRequestHandler):
    """Two webhooks; the first request to webhook 1 gets Discord's global
    429, everything else 200."""
    protocol_version = "HTTP/1.1"
    got = []                    # (time, webhook id, status)
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        wid = self.path.split("/")[3]
        with Global.lock:
            first = not any(w == "1" for _, w, _ in Global.got)
            st = 429 if wid == "1" and first else 200
            Global.got.append((time.time(), wid, st))
        out = (b'{"message": "You are being rate limited.", '
               b'"retry_after": 1.0, "global": true}' if st == 429 else
               b'{"id": "1", "content": ""}')
        self.send_response(st)
        if st == 429:
            self.send_header("Retry-After", "1")
            self.send_header("X-RateLimit-Global", "true")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


gs = ThreadingHTTPServer(("127.0.0.1", 0), Global)
threading.Thread(target=gs.serve_forever, daemon=True).start()
tap.cleanups.append(gs.shutdown)
base = "http://127.0.0.1:%d/api/webhooks/" % gs.server_address[1]
g = ctrtest.Ctrd(tap, consumers=[
    {"name": "one", "kind": "discord", "url": base + "1/tok-one",
     "budget_ms": 4000, "pattern": {"detail": {"case": ["one"]}}},
    {"name": "two", "kind": "discord", "url": base + "2/tok-two",
     "budget_ms": 4000, "pattern": {"detail": {"case": ["two"]}}},
])
if not tap.ok(g.start(), "ctrd starts with two Discord webhooks",
              g.read_log()):
    tap.finish()
g.post(ev("speedrun.start", case="one"))
end = time.time() + 5
while time.time() < end and not Global.got:
    time.sleep(0.01)
time.sleep(0.1)             # ctrd has read the 429
g.post(ev("speedrun.start", case="two"))
end = time.time() + 5
while time.time() < end and not (
        any(w == "2" for _, w, _ in Global.got) and
        any(w == "1" and st == 200 for _, w, st in Global.got)):
    time.sleep(0.02)
t429 = Global.got[0][0] if Global.got else 0
two = [t for t, w, _ in Global.got if w == "2"]
again = [t for t, w, st in Global.got if w == "1" and st == 200]
tap.ok(two and two[0] - t429 >= 0.9,
       "after a global 429 on one webhook, another webhook is not called "
       "until the pause is over", ["%.3f" % (t - t429) for t in two])
tap.ok(again and again[0] - t429 >= 0.9,
       "and the event that got the 429 goes again after it",
       ["%.3f" % (t - t429) for t in again])
tap.ok(g.wait_log(r"discord global rate limit: every Discord consumer "
                  r"paused") is not None, "the log says so")
tap.eq(g.stop(), 0, "ctrd stops cleanly")
tap.finish()
