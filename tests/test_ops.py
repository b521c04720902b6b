#!/usr/bin/env python3
"""Operations: reload on SIGHUP, drain on SIGTERM, start-up refusals,
ctrctl, and a producer key change with two hashes at once."""

import os
import re
import signal
import stat
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctrtest import (CTRCTL, CTRD, Ctrd, Receiver, Tap, key_hash,  # noqa: E402
                     new_key)

tap = Tap()


EVENT = {"type": "speedrun.split", "source": "livesplit",
         "detail": {"game": "Celeste", "split": "1A",
                    "pace": "-0:00:01.000"}}


def event_id(resp):
    st, h, b = resp
    if st == 202 and isinstance(b, dict) and b.get("accepted") == 1:
        return b["entries"][0]["id"]
    return None



def has_id(rcv, ev_id):
    return any(e.get("id") == ev_id for e in rcv.events())


def wait_count(d, pattern, n, timeout=5.0):
    """Wait until pattern occurs n times in the log; the count."""
    end = time.time() + timeout
    while True:
        c = len(re.findall(pattern, d.read_log()))
        if c >= n or time.time() >= end:
            return c
        time.sleep(0.02)


def conf_text(d, body):
    """A config for d: its listen, secret and dead-letter lines, then
    body (lines joined with newlines)."""
    head = ['listen: "127.0.0.1:0"',
            "secret_file: %s" % d.secret_file,
            "dead_letter_file: %s" % d.dead_letter]
    return "\n".join(head + body) + "\n"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def run(args, stdin=None, timeout=15):
    p = subprocess.run(args, input=stdin, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def positions(text, conf):
    """The "file:line:col" places named in text for conf."""
    return sorted(set(re.findall(re.escape(conf) + r":(\d+):(\d+):", text)))


# --- SIGHUP ----------------------------------------------------------------

old = Receiver(tap)
new = Receiver(tap)
d = Ctrd(tap, consumers=[{"name": "old", "url": old.url}])
if not tap.ok(d.start(), "ctrd starts", d.read_log()):
    tap.finish()
hash_runner = key_hash(d.secret, d.keys["runner"])

d.write_config([{"name": "runner"}],
               [{"name": "old", "url": old.url},
                {"name": "new", "url": new.url}],
               extra="max_connections_per_ip: 0")
d.signal(signal.SIGHUP)
m = d.wait_log(r"reloaded \S+: 1 producers, 2 consumers")
tap.ok(m is not None, "after SIGHUP with a valid config the log says "
       "reloaded, with 2 consumers", d.read_log())
# These reach libmicrohttpd only at start; a reload used to say nothing.
tap.ok(re.search(r"max_connections_per_ip .*restart only", d.read_log()),
       "a reload that changes a connection cap says it waits for a "
       "restart")
eid = event_id(d.post(EVENT))
tap.ok(eid is not None and old.wait_for_id(eid) is not None and
       new.wait_for_id(eid) is not None,
       "after the reload an event reaches the old and the new consumer",
       "%r old=%d new=%d" % (eid, len(old.got), len(new.got)))

# A YAML syntax error, in a file that would also drop consumer "new":
# the running configuration (old and new) must stay.
third = Receiver(tap)
broken = conf_text(d, [
    "producers:",
    "  - name: runner",
    "    key_hash: %s" % hash_runner,
    "consumers:",
    "  - name: old",
    '    url: "%s"' % old.url,
    "  - name: third",
    '     url: "%s"' % third.url,		# line 11: one space too many
])
write(d.conf, broken)
bad_line = broken.split("\n")[10]
syntax_at = ("11", str(bad_line.index(":") + 1))
d.signal(signal.SIGHUP)
c = wait_count(d, r"reload failed: keeping the running configuration", 1)
tap.eq(c, 1, "SIGHUP with a YAML syntax error logs that the running "
       "configuration is kept")
log = d.read_log()
tap.eq(positions(log, d.conf), [syntax_at],
       "the log names the syntax error as file:line:col")
eid = event_id(d.post(EVENT))
tap.ok(eid is not None and old.wait_for_id(eid) is not None and
       new.wait_for_id(eid) is not None and not has_id(third, eid),
       "after the broken reload events still go to the old "
       "configuration's consumers, not to the broken file's",
       "%r old=%d new=%d third=%d" % (eid, len(old.got), len(new.got),
                                      len(third.got)))

# An unknown key and a bad value: both named, old configuration kept.
mark = len(d.read_log())
broken = conf_text(d, [
    "bogus_key: 1",				# line 4, col 1
    "producers:",
    "  - name: runner",
    "    key_hash: %s" % hash_runner,
    "consumers:",
    "  - name: old",
    '    url: "%s"' % old.url,
    "  - name: third",
    '    url: "%s"' % third.url,
    "    budget_ms: 0",				# line 13, col 16
])
write(d.conf, broken)
d.signal(signal.SIGHUP)
c = wait_count(d, r"reload failed: keeping the running configuration", 2)
tap.eq(c, 2, "SIGHUP with an unknown key and a bad value logs that the "
       "running configuration is kept")
log = d.read_log()[mark:]
tap.ok(re.search(re.escape(d.conf) + r":4:1: .*bogus_key", log) is not None
       and re.search(re.escape(d.conf) +
                     r":13:16: .*consumers\[1\]\.budget_ms", log)
       is not None and positions(log, d.conf) == [("13", "16"), ("4", "1")],
       "the log names both errors, and only them, as file:line:col "
       "(4:1 bogus_key, 13:16 budget_ms)", log)
eid = event_id(d.post(EVENT))
tap.ok(eid is not None and old.wait_for_id(eid) is not None and
       new.wait_for_id(eid) is not None and not has_id(third, eid),
       "after the second broken reload events still follow the old "
       "configuration", "%r old=%d new=%d third=%d"
       % (eid, len(old.got), len(new.got), len(third.got)))
st, h, b = d.request("GET", "/healthz")
tap.eq((st, b), (200, {"status": "ok"}),
       "ctrd still serves /healthz after two broken reloads")
tap.eq(d.stop(), 0, "ctrd exits 0 on SIGTERM when idle")

# --- SIGTERM drains deliveries in flight -----------------------------------

slow = Receiver(tap, delay=0.5)
d = Ctrd(tap, consumers=[{"name": "slow", "url": slow.url}])
if tap.ok(d.start(), "ctrd with a slow consumer starts", d.read_log()):
    st, h, b = d.post([EVENT, EVENT, EVENT])
    ids = [e.get("id") for e in b.get("entries", [])] if st == 202 else []
    slow.wait(3, 5.0)			# all three are being answered
    t0 = time.time()
    d.signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(15)
    except subprocess.TimeoutExpired:
        rc = None
    elapsed = time.time() - t0
    log = d.read_log()
    tap.eq(rc, 0, "SIGTERM with deliveries in flight: ctrd exits 0")
    tap.ok(len(ids) == 3 and all(
        re.search(r"delivered event=%s consumer=slow " % i, log)
        for i in ids), "ctrd waited: every in-flight delivery was "
        "delivered", log)
    tap.eq(d.dead_letters(), [], "nothing was dead-lettered")
    tap.ok(elapsed < 5.0, "ctrd exited soon after the deliveries landed "
           "(%.2f s)" % elapsed)

# A hanging consumer, budget shorter than the drain: the delivery misses
# its budget during the drain and ctrd exits then.
hang1 = Receiver(tap, hang=True)
d = Ctrd(tap, consumers=[{"name": "hang1", "url": hang1.url,
                          "budget_ms": 600}])
if tap.ok(d.start(), "ctrd with a hanging consumer (budget 600 ms) starts",
          d.read_log()):
    eid = event_id(d.post(EVENT))
    hang1.wait(1, 5.0)
    t0 = time.time()
    d.signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(15)
    except subprocess.TimeoutExpired:
        rc = None
    elapsed = time.time() - t0
    tap.eq(rc, 0, "SIGTERM with a hanging consumer: ctrd exits 0")
    tap.ok(elapsed < 4.0, "ctrd exited within the default drain time "
           "(%.2f s)" % elapsed)
    dl = d.dead_letters()
    tap.ok(len(dl) == 1 and dl[0].get("consumer") == "hang1" and
           dl[0].get("event", {}).get("id") == eid and eid is not None and
           dl[0].get("reason") == "timeout",
           "the hung delivery is one dead-letter line for that event and "
           "consumer, reason timeout", dl)

# A hanging consumer, drain shorter than the budget: ctrd stops waiting at
# drain_ms and dead-letters the delivery as shutdown.
hang2 = Receiver(tap, hang=True)
d = Ctrd(tap, consumers=[{"name": "hang2", "url": hang2.url,
                          "budget_ms": 20000}], extra="drain_ms: 1000")
if tap.ok(d.start(), "ctrd with drain_ms 1000 and a hanging consumer "
          "starts", d.read_log()):
    eid = event_id(d.post(EVENT))
    hang2.wait(1, 5.0)
    t0 = time.time()
    d.signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(15)
    except subprocess.TimeoutExpired:
        rc = None
    elapsed = time.time() - t0
    tap.eq(rc, 0, "SIGTERM past drain_ms: ctrd exits 0")
    tap.ok(0.8 <= elapsed < 4.0, "ctrd waited about drain_ms (1 s) and no "
           "longer (%.2f s)" % elapsed)
    dl = d.dead_letters()
    tap.ok(len(dl) == 1 and dl[0].get("consumer") == "hang2" and
           dl[0].get("event", {}).get("id") == eid and eid is not None and
           dl[0].get("reason") == "shutdown",
           "the delivery cut off by the drain is one dead-letter line for "
           "that event and consumer, reason shutdown", dl)

# --- start-up refusals -----------------------------------------------------

d = Ctrd(tap)
os.chmod(d.secret_file, 0o644)
rc, out = run([CTRD, "-f", "-c", d.conf])
tap.ok(rc == 1 and "chmod 600" in out and
       re.search(re.escape(d.conf) + r":2:14: secret_file", out),
       "a secret file of mode 0644: ctrd exits 1, names secret_file at "
       "2:14 and says chmod 600", "rc=%r\n%s" % (rc, out))
os.chmod(d.secret_file, 0o600)

bad = conf_text(d, [
    "queue_max: lots",				# 4:12
    "frobnicate: yes",				# 5:1
    "producers:",
    "  - name: runner",
    "    key_hash: abc",			# 8:15
    "consumers:",
    "  - name: rx",
    '    url: "ftp://127.0.0.1:9/hook"',	# 11:10
    "    budget_ms: 0",				# 12:16
    "    colour: red",				# 13:5
])
bad_conf = os.path.join(d.dir, "bad.conf")
write(bad_conf, bad)
want_pos = sorted([("4", "12"), ("5", "1"), ("8", "15"), ("11", "10"),
                   ("12", "16"), ("13", "5")])
rc, out = run([CTRD, "-f", "-c", bad_conf])
tap.eq(rc, 1, "a config with errors: ctrd exits 1")
tap.eq(positions(out, bad_conf), want_pos,
       "ctrd names every error of the config as file:line:col")

rc, out = run([CTRD, "-n", "-c", d.conf])
tap.ok(rc == 0 and "configuration OK" in out,
       "ctrd -n -c good.conf exits 0 saying configuration OK",
       "rc=%r\n%s" % (rc, out))
rc, out = run([CTRD, "-n", "-c", bad_conf])
tap.ok(rc == 1 and "configuration OK" not in out,
       "ctrd -n -c bad.conf exits 1", "rc=%r\n%s" % (rc, out))

# --- ctrctl ----------------------------------------------------------------

sec = os.path.join(d.dir, "new-secret")
rc, out = run([CTRCTL, "secret-gen", sec])
st_ = os.stat(sec) if os.path.exists(sec) else None
tap.ok(rc == 0 and st_ is not None and st_.st_size == 32 and
       stat.S_IMODE(st_.st_mode) == 0o600,
       "ctrctl secret-gen makes a 32-byte file of mode 0600",
       "rc=%r %s %s" % (rc, out, st_ and oct(st_.st_mode)))
with open(sec, "rb") as f:
    secret = f.read()
rc, out = run([CTRCTL, "secret-gen", sec])
with open(sec, "rb") as f:
    after = f.read()
tap.ok(rc == 1 and after == secret,
       "ctrctl secret-gen refuses to overwrite an existing file",
       "rc=%r %s" % (rc, out))

rc, out = run([CTRCTL, "keygen", "-s", sec, "alice"])
km = re.search(r"^(ctr_[A-Za-z0-9_-]{43})$", out, re.M)
hm = re.search(r"^  - name: alice\n    key_hash: ([0-9a-f]{64})$", out, re.M)
tap.ok(rc == 0 and km is not None and hm is not None,
       "ctrctl keygen -s FILE NAME prints a ctr_ key and a key_hash stanza",
       "rc=%r\n%s" % (rc, out))
key = km.group(1) if km else None
tap.ok(key is not None and hm is not None and
       hm.group(1) == key_hash(secret, key),
       "the printed key_hash is the keyed BLAKE2b-256 of the key")
rc, out = run([CTRCTL, "hash", "-s", sec], stdin=(key or "") + "\n")
tap.ok(rc == 0 and hm is not None and out.strip() == hm.group(1),
       "ctrctl hash -s FILE < key prints the same hash",
       "rc=%r %r" % (rc, out))
rc, out = run([CTRCTL, "hash", "-s", sec], stdin="not a key\n")
tap.eq(rc, 1, "ctrctl hash refuses input that is not an API key")
os.chmod(sec, 0o640)
rc, out = run([CTRCTL, "keygen", "-s", sec, "bob"])
tap.ok(rc == 1 and "chmod 600" in out and "ctr_" not in out,
       "ctrctl keygen refuses a secret readable by group",
       "rc=%r %s" % (rc, out))
os.chmod(sec, 0o600)

rc, out = run([CTRCTL, "check", d.conf])
tap.eq(rc, 0, "ctrctl check on a good config exits 0")
rc, out = run([CTRCTL, "check", bad_conf])
tap.ok(rc == 1 and positions(out, bad_conf) == want_pos,
       "ctrctl check on a bad config exits 1 naming every error as "
       "line:col", "rc=%r\n%s" % (rc, out))

# --- key rotation ----------------------------------------------------------

rx = Receiver(tap)
d = Ctrd(tap)
k_old, k_new, k_other = new_key(), new_key(), new_key()
write(d.conf, conf_text(d, [
    "producers:",
    "  - name: rotating",
    "    key_hash:",
    "      - %s" % key_hash(d.secret, k_old),
    "      - %s" % key_hash(d.secret, k_new),
    "consumers:",
    '  - {"name": "rx", "url": "%s"}' % rx.url,
]))
if tap.ok(d.start(), "ctrd with a producer of two key hashes starts",
          d.read_log()):
    got = {}
    for label, k in (("old", k_old), ("new", k_new), ("other", k_other)):
        st, h, b = d.post(EVENT, producer=None,
                          headers={"Authorization": "Bearer " + k})
        got[label] = (st, b)
    ids = [event_id((got[k][0], None, got[k][1])) for k in ("old", "new")]
    envs = [rx.wait_for_id(i) if i else None for i in ids]
    tap.ok(None not in envs and
           [e["producer"] for e in envs] == ["rotating", "rotating"],
           "both keys of a key_hash list are accepted, as the same "
           "producer", got)
    tap.eq((got["other"][0], (got["other"][1] or {}).get("error", {})
            .get("code")), (401, "unknown_key"),
           "a third key is still refused")
    log = d.read_log()
    tap.ok(not any(k in log for k in (k_old, k_new, k_other)),
           "no key of the rotation appears in the log")

tap.finish()
