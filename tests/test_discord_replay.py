"""Every real splits file, replayed at full speed by ctrctl replay through
ctrd, reaches a Discord webhook (the local stand-in, rate-limited like
Discord at 5 requests per 2 s) and a plain webhook as exactly the events
replay sent, in order, with no request made while the limit said 0."""

import glob
import json
import os
import subprocess
import time

import ctrtest
from discord_standin import DiscordStandin

tap = ctrtest.Tap()
files = sorted(glob.glob(os.path.join(ctrtest.DATA, "lss", "*.lss")))
if not files:
    print("1..0 # SKIP no splits files under %s" % ctrtest.DATA)
    os._exit(0)

standin = DiscordStandin(tap, limit=5, window=2.0)
rcv = ctrtest.Receiver(tap)
# At 5 messages per 2 s a 111-event burst needs about 5 s, so this test
# gives Discord a budget that fits: it checks order and completeness.
d = ctrtest.Ctrd(tap, consumers=[
    {"name": "discord", "kind": "discord", "url": standin.url,
     "budget_ms": 30000},
    {"name": "hook", "url": rcv.url, "max_in_flight": 1},
])
if not tap.ok(d.start(), "ctrd starts", d.read_log()):
    tap.finish()
keyfile = os.path.join(d.dir, "key")
fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT, 0o600)
os.write(fd, (d.keys["runner"] + "\n").encode())
os.close(fd)
url = "http://127.0.0.1:%d/v1/events" % d.port


def plain(title):
    """An embed title as a viewer reads it (markdown escapes removed)."""
    return title.replace("\\", "")


for path in files:
    name = os.path.basename(path)
    dry = subprocess.run([ctrtest.CTRCTL, "replay", "--dry-run", path],
                         capture_output=True, timeout=30)
    want = [json.loads(line) for line in dry.stdout.decode().splitlines()
            if line.startswith("{")]
    n_hook, n_embeds = len(rcv.got), len(standin.embeds())
    run = subprocess.run([ctrtest.CTRCTL, "replay", "-u", url, "-k",
                          keyfile, "--speed", "0", path],
                         capture_output=True, timeout=60)
    tap.eq(run.returncode, 0, "%s: ctrctl replay sends all %d events"
           % (name, len(want)))
    got = [json.loads(g["body"]) for g in
           rcv.wait(n_hook + len(want), timeout=15)[n_hook:]]
    tap.eq([(e["type"], e["detail"].get("split")) for e in got],
           [(e["type"], e["detail"].get("split")) for e in want],
           "%s: the webhook gets exactly that sequence" % name)
    end = time.time() + 20
    while time.time() < end and \
            len(standin.embeds()) < n_embeds + len(want):
        time.sleep(0.05)
    embeds = standin.embeds()[n_embeds:]
    tap.eq(len(embeds), len(want),
           "%s: Discord gets one embed per event" % name)
    order_ok = len(embeds) == len(want)
    for e, w in zip(embeds, want):
        split = w["detail"].get("split")
        if w["type"] in ("speedrun.split", "speedrun.gold") and split and \
                split not in plain(e.get("title", "")):
            order_ok = False
            tap.ok(False, "%s: embed %r names split %r"
                   % (name, e.get("title"), split))
            break
    tap.ok(order_ok, "%s: the embeds follow the run's order" % name)

tap.eq(standin.violations(), [],
       "no request reached Discord while its limit said 0 remaining")
tap.eq(standin.refused(), [], "Discord refused no message")
reqs = standin.accepted_requests()
tap.ok(len(reqs) < len(standin.embeds()),
       "bursts were coalesced (%d messages for %d events)"
       % (len(reqs), len(standin.embeds())))
tap.eq(d.dead_letters(), [], "nothing was dead-lettered")
tap.eq(d.stop(), 0, "ctrd stops cleanly")
tap.finish()
