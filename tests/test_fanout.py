"""Fan-out: routing by pattern, Standard Webhooks signatures, retries,
redirects, the per-consumer budget, isolation of a hung consumer,
keep-alive, and the delivery metrics, all against one ctrd and receivers
this script starts on loopback."""

import calendar
import email.utils
import json
import re
import sys
import time
import traceback

from ctrtest import Ctrd, Receiver, Tap, free_port, new_whsec, \
    verify_signature

tap = Tap()
T_START = time.time()


ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ENVELOPE_KEYS = {"id", "seq", "type", "source", "producer", "time",
                 "detail"}


def track_ports(rcv):
    """Record the client port of each request the receiver gets, so that
    the test can count TCP connections.  Wraps the receiver's handler
    class without changing Receiver itself."""
    base = rcv.server.RequestHandlerClass
    ports = []

    class PortHandler(base):
        def do_POST(self):
            with rcv.cond:
                ports.append(self.client_address[1])
            base.do_POST(self)

    rcv.server.RequestHandlerClass = PortHandler
    return ports


def record_any_method(rcv):
    """Let the receiver record requests of every method, not just POST:
    a client that follows a redirect may turn the POST into a GET."""
    base = rcv.server.RequestHandlerClass

    class AnyHandler(base):
        do_GET = do_HEAD = do_PUT = do_PATCH = do_DELETE = base.do_POST

    rcv.server.RequestHandlerClass = AnyHandler


def widen_backlog(rcv, n=128):
    """socketserver listens with a backlog of 5: ten simultaneous
    deliveries overflow it and the kernel drops SYNs, which the client
    resends only after a second.  That would be the test's delay, not
    ctrd's; listen() again with room for all."""
    rcv.server.socket.listen(n)


def no_dup_object(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in %r" % keys)
    return dict(pairs)


def strict_json(raw):
    return json.loads(raw.decode("utf-8"), object_pairs_hook=no_dup_object)


def ids_of(rcv):
    out = []
    for g in list(rcv.got):
        try:
            out.append(json.loads(g["body"])["id"])
        except (ValueError, KeyError, TypeError):
            out.append(None)
    return out


def wait_for(pred, timeout=5.0, step=0.01):
    end = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() >= end:
            return v
        time.sleep(step)


def dl_raw(d):
    try:
        with open(d.dead_letter, "rb") as f:
            return [line for line in f.read().split(b"\n") if line]
    except FileNotFoundError:
        return []


def dl_for(d, consumer):
    return [x for x in d.dead_letters() if x.get("consumer") == consumer]


def dl_time(line):
    """The dead-letter line's "time" as seconds since the epoch; a line
    without an RFC 3339 UTC time gives -1e9, which no check accepts."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z$",
                 str(line.get("time")))
    if not m:
        return -1e9
    t = time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + int(m.group(2)) / 1000.0


def metrics(d):
    st, _, body = d.request("GET", "/metrics")
    out = {}
    if st != 200 or not isinstance(body, str):
        return out
    for line in body.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$",
                     line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def mval(mt, name, **labels):
    return mt.get((name, frozenset(labels.items())))


def ev(case, type="speedrun.split", **detail):
    det = {"case": case, "game": "Celeste", "category": "Any%",
           "split": "Forsaken City"}
    det.update(detail)
    return {"type": type, "source": "livesplit", "detail": det}


post_errors = []


def post(d, body):
    """Post one event (or a batch); return its id (or list of ids)."""
    st, _, rb = d.post(body)
    n = len(body) if isinstance(body, list) else 1
    ok = (st == 202 and isinstance(rb, dict) and rb.get("accepted") == n
          and rb.get("failed") == 0 and len(rb.get("entries", [])) == n
          and all(isinstance(e, dict) and "id" in e for e in rb["entries"]))
    if not ok:
        post_errors.append((st, rb))
        return [None] * n if isinstance(body, list) else None
    ids = [e["id"] for e in rb["entries"]]
    return ids if isinstance(body, list) else ids[0]


# ---------------------------------------------------------------------
# Receivers and consumers

target = Receiver(tap)          # where redirects point; not a consumer
r_splits = Receiver(tap)
r_super = Receiver(tap)
r_other = Receiver(tap)
r_500 = Receiver(tap, statuses=(500, 200))
r_503 = Receiver(tap, statuses=(503, 200))
r_408 = Receiver(tap, statuses=(408, 200))
r_429z = Receiver(tap, statuses=(429, 200), headers={"Retry-After": "0"})
r_429far = Receiver(tap, statuses=(429,), headers={"Retry-After": "10"})
# Retry-After as an HTTP-date: one already past, and one a minute ahead.
r_429past = Receiver(tap, statuses=(503, 200), headers={
    "Retry-After": email.utils.formatdate(time.time() - 3600, usegmt=True)})
r_429date = Receiver(tap, statuses=(429,), headers={
    "Retry-After": email.utils.formatdate(time.time() + 60, usegmt=True)})
r_404 = Receiver(tap, statuses=(404,))
r_301 = Receiver(tap, statuses=(301,), headers={"Location": target.url})
r_302 = Receiver(tap, statuses=(302,), headers={"Location": target.url})
r_hung = Receiver(tap, hang=True)
r_healthy = Receiver(tap)
r_iso_hung = Receiver(tap, hang=True)
r_iso_ok = Receiver(tap)
r_ka = Receiver(tap)
ka_ports = track_ports(r_ka)
record_any_method(target)
for _r in (r_healthy, r_iso_hung, r_iso_ok):
    widen_backlog(_r)
closed_url = "http://127.0.0.1:%d/hook" % free_port()

secrets = {}


def consumer(name, url, case, secret=True, **kw):
    c = {"name": name, "url": url}
    if secret:
        secrets[name] = c["secret"] = new_whsec()
    pat = kw.pop("pattern", None) or {}
    pat.setdefault("detail", {})["case"] = case if isinstance(case, list) \
        else [case]
    c["pattern"] = pat
    c.update(kw)
    return c


consumers = [
    consumer("route-splits", r_splits.url + "?team=blue", "route",
             headers={"X-Team": "blue", "X-Long": "v" * 1000},
             pattern={"type": ["speedrun.split"]}),
    consumer("route-super", r_super.url, "route", secret=False,
             pattern={"detail": {"game": [{"prefix": "Super"}]}}),
    consumer("route-other", r_other.url, "route",
             pattern={"type": [{"anything-but": "speedrun.split"}]}),
    consumer("retry-500", r_500.url, "retry-500"),
    consumer("retry-503", r_503.url, "retry-503"),
    consumer("retry-408", r_408.url, "retry-408"),
    consumer("retry-429-zero", r_429z.url, "retry-429-zero"),
    consumer("retry-429-far", r_429far.url, "retry-429-far",
             budget_ms=1000),
    consumer("retry-date-past", r_429past.url, "retry-date-past"),
    consumer("retry-date-far", r_429date.url, "retry-date-far"),
    consumer("reject-404", r_404.url, "reject-404"),
    consumer("redirect-301", r_301.url, "redirect-301"),
    consumer("redirect-302", r_302.url, "redirect-302"),
    consumer("hung", r_hung.url, "hang", budget_ms=800),
    # No circuit breaker: this one is about retries up to the budget.
    consumer("closed", closed_url, "closed", budget_ms=600,
             circuit_breaker=0),
    consumer("healthy", r_healthy.url, ["hang", "closed"]),
    consumer("iso-hung", r_iso_hung.url, "iso", max_in_flight=2,
             queue_max=5, budget_ms=1000),
    consumer("iso-ok", r_iso_ok.url, "iso"),
    consumer("keepalive", r_ka.url, "ka"),
]
receiver_of = {
    "route-splits": r_splits, "route-super": r_super,
    "route-other": r_other, "retry-500": r_500, "retry-503": r_503,
    "retry-408": r_408, "retry-429-zero": r_429z,
    "retry-429-far": r_429far, "reject-404": r_404,
    "retry-date-past": r_429past, "retry-date-far": r_429date,
    "redirect-301": r_301, "redirect-302": r_302, "hung": r_hung,
    "healthy": r_healthy, "iso-hung": r_iso_hung, "iso-ok": r_iso_ok,
    "keepalive": r_ka,
}
# how many events each consumer should have been handed, filled in below
expected = {c["name"]: 0 for c in consumers}

d = Ctrd(tap, consumers=consumers)
if not tap.ok(d.start(), "ctrd starts with 17 webhook consumers",
              d.read_log()[-2000:]):
    tap.finish()

# ---------------------------------------------------------------------
# Routing: each receiver gets exactly the events its pattern matches.

route_events = [
    ("split-super", ev("route", game="Super Mario 64", split="BOB"),
     {"route-splits", "route-super"}),
    ("split-celeste", ev("route", game="Celeste"), {"route-splits"}),
    ("start-super", ev("route", "speedrun.start", game="Super Metroid"),
     {"route-super", "route-other"}),
    ("finish-celeste", ev("route", "speedrun.finish"), {"route-other"}),
    ("gold-lowercase", ev("route", "speedrun.gold", game="super mario"),
     {"route-other"}),
    ("split-infix", ev("route", game="Mario Super"), {"route-splits"}),
    ("reset-superb", ev("route", "speedrun.reset", game="Superb Owl"),
     {"route-super", "route-other"}),
    ("chat", {"type": "chat.message", "source": "twitch",
              "detail": {"case": "route", "text": "gg"}},
     {"route-other"}),
    ("nobody", ev("elsewhere", game="Super Mario 64"), set()),
]
want = {"route-splits": [], "route-super": [], "route-other": []}
sent_by_id = {}
for label, body, dest in route_events:
    eid = post(d, body)
    sent_by_id[eid] = body
    for c in dest:
        want[c].append(eid)
        expected[c] += 1
tap.eq(post_errors, [], "routing: every event accepted with 202 and an id")

for name, rcv in (("route-splits", r_splits), ("route-super", r_super),
                  ("route-other", r_other)):
    rcv.wait(len(want[name]), timeout=5)
time.sleep(0.3)                 # room for a wrong extra delivery
for name, rcv in (("route-splits", r_splits), ("route-super", r_super),
                  ("route-other", r_other)):
    tap.eq(sorted(ids_of(rcv)), sorted(want[name]),
           "routing: %s gets exactly the events its pattern matches" % name)

# ---------------------------------------------------------------------
# What each delivery looks like.

now = time.time()
bad_sig, bad_id, bad_ts, bad_ct, bad_body = [], [], [], [], []
for name, rcv in (("route-splits", r_splits), ("route-other", r_other)):
    for g in rcv.got:
        h = g["headers"]
        if not verify_signature(secrets[name], h, g["body"]):
            bad_sig.append((name, h.get("webhook-signature")))
tap.eq(bad_sig, [], "signature: every delivery to a consumer with a "
       "secret verifies (independent HMAC-SHA256 of id.timestamp.body)")

g0 = r_splits.got[0] if r_splits.got else None
tap.ok(g0 is not None and not verify_signature(
    secrets["route-other"], g0["headers"], g0["body"]),
    "signature: the check fails under another consumer's secret")
tap.ok(g0 is not None and not verify_signature(
    secrets["route-splits"], g0["headers"], g0["body"] + b" "),
    "signature: the check fails for a body changed by one byte")

for name, rcv in (("route-splits", r_splits), ("route-super", r_super),
                  ("route-other", r_other)):
    for g in rcv.got:
        h = g["headers"]
        try:
            env = strict_json(g["body"])
        except ValueError as e:
            bad_body.append((name, "not strict JSON: %s" % e))
            continue
        if h.get("webhook-id") != env.get("id"):
            bad_id.append((name, h.get("webhook-id"), env.get("id")))
        ts = h.get("webhook-timestamp", "")
        if not re.match(r"^\d+$", ts) or abs(int(ts) - now) > 60:
            bad_ts.append((name, ts))
        if h.get("content-type") != "application/json":
            bad_ct.append((name, h.get("content-type")))
        sent = sent_by_id.get(env.get("id"))
        problems = []
        if sent is None:
            problems.append("unknown id")
        else:
            if set(env) != ENVELOPE_KEYS:
                problems.append("keys %r" % sorted(env))
            if env.get("type") != sent["type"]:
                problems.append("type")
            if env.get("source") != sent["source"]:
                problems.append("source")
            if env.get("producer") != "runner":
                problems.append("producer")
            if env.get("detail") != sent["detail"]:
                problems.append("detail %r" % env.get("detail"))
            if not isinstance(env.get("seq"), int) or env["seq"] < 1:
                problems.append("seq %r" % env.get("seq"))
            if not TIME_RE.match(str(env.get("time"))):
                problems.append("time %r" % env.get("time"))
            if not ID_RE.match(str(env.get("id"))):
                problems.append("id %r" % env.get("id"))
        if problems:
            bad_body.append((name, env.get("id"), problems))
tap.eq(bad_id, [], "signature: webhook-id equals the envelope id")
tap.eq(bad_ts, [], "signature: webhook-timestamp is Unix seconds within "
       "60 s of now")
tap.eq(bad_ct, [], "delivery: Content-Type is application/json")
tap.eq(bad_body, [], "delivery: the body is the envelope as strict JSON "
       "(id, seq, type, source, producer, time, detail as sent)")

# One event to two consumers: the same bytes, and different signatures
# only where the secret differs.
split_super = want["route-splits"][0]
b1 = [g["body"] for g in r_splits.got
      if json.loads(g["body"]).get("id") == split_super]
b2 = [g["body"] for g in r_super.got
      if json.loads(g["body"]).get("id") == split_super]
tap.ok(len(b1) == 1 and b1 == b2, "delivery: both consumers of one event "
       "get the same body bytes")

tap.eq(sorted(set(g["headers"].get("webhook-signature", "<none>")
                  for g in r_super.got)), ["<none>"],
       "signature: a consumer without a secret gets no webhook-signature")
tap.eq(sorted(set("webhook-id" in g["headers"] and
                  "webhook-timestamp" in g["headers"]
                  for g in r_super.got)), [True],
       "signature: a consumer without a secret still gets webhook-id and "
       "webhook-timestamp")
tap.eq(sorted(set(g["headers"].get("x-team") for g in r_splits.got)),
       ["blue"], "delivery: the configured header X-Team: blue arrives")
# Header lines used to be built in a 512-byte buffer and cut silently.
tap.eq(sorted(set(len(g["headers"].get("x-long", "")) for g in r_splits.got)),
       [1000], "delivery: a configured 1000-character header arrives whole")
tap.eq(sorted(set(g["headers"].get("x-team") for g in r_super.got)),
       [None], "delivery: a header configured for one consumer is not "
       "sent to another")
tap.eq(sorted(set(g["path"] for g in r_splits.got)), ["/hook?team=blue"],
       "delivery: the request goes to the configured path and query")

posted = list(sent_by_id)      # in posting order (dicts keep it)
seq_bad = sorted(set((json.loads(g["body"])["id"], json.loads(g["body"])
                      .get("seq")) for rcv in (r_splits, r_super, r_other)
                     for g in rcv.got
                     if json.loads(g["body"]).get("seq") !=
                     posted.index(json.loads(g["body"])["id"]) + 1))
tap.eq(seq_bad, [], "delivery: seq counts the producer's events from 1, "
       "one per accepted event")

# ---------------------------------------------------------------------
# Retries.


def check_retry(name, rcv, first):
    t0 = time.time()
    eid = post(d, ev(name))
    expected[name] += 1
    rcv.wait(2, timeout=5)
    time.sleep(0.3)             # a third attempt would show up by now
    got = list(rcv.got)
    hid = [g["headers"].get("webhook-id") for g in got]
    tap.ok(len(got) == 2 and hid == [eid, eid] and
           got[0]["body"] == got[1]["body"],
           "retry: after %d the consumer gets the same event exactly twice"
           % first, "ids: %r (want 2 x %r)" % (hid, eid))
    tap.ok(len(got) == 2 and all(verify_signature(secrets[name],
                                                  g["headers"], g["body"])
                                 for g in got),
           "retry: both attempts after %d carry valid signatures" % first)
    mt = wait_for(lambda: (lambda m: m if mval(
        m, "ctrd_deliveries_total", consumer=name, outcome="delivered")
        == 1 else None)(metrics(d)), timeout=3) or metrics(d)
    tap.eq((mval(mt, "ctrd_deliveries_total", consumer=name,
                 outcome="delivered"),
            mval(mt, "ctrd_deliveries_total", consumer=name,
                 outcome="dead_lettered"),
            mval(mt, "ctrd_delivery_attempts_total", consumer=name),
            mval(mt, "ctrd_delivery_retries_total", consumer=name)),
           (1.0, 0.0, 2.0, 1.0),
           "retry: after %d then 200 metrics show delivered 1, dead "
           "lettered 0, 2 attempts, 1 retry" % first)
    tap.eq(dl_for(d, name), [], "retry: after %d then 200 nothing is "
           "dead-lettered" % first)
    return time.time() - t0


check_retry("retry-500", r_500, 500)
check_retry("retry-503", r_503, 503)
check_retry("retry-408", r_408, 408)
check_retry("retry-429-zero", r_429z, 429)

# 429 asking for 10 s when the budget is 1 s: give up at once.
t0 = time.time()
eid = post(d, ev("retry-429-far"))
expected["retry-429-far"] += 1
lines = wait_for(lambda: dl_for(d, "retry-429-far"), timeout=3)
tap.eq([(x.get("event", {}).get("id"), x.get("reason"), x.get("attempts"),
         x.get("last_status")) for x in lines or []],
       [(eid, "retry_after_beyond_budget", 1, 429)],
       "retry: 429 with Retry-After beyond the budget is dead-lettered "
       "with reason retry_after_beyond_budget after one attempt")
tap.ok(lines and dl_time(lines[0]) - t0 < 0.5,
       "retry: that dead letter is written at once, not at the budget",
       "written %.3f s after posting" % (dl_time(lines[0]) - t0)
       if lines else "no line")
time.sleep(0.2)
tap.eq(len(r_429far.got), 1, "retry: the 429 consumer got one request only")

check_retry("retry-date-past", r_429past, 503)
eid = post(d, ev("retry-date-far"))
expected["retry-date-far"] += 1
lines = wait_for(lambda: dl_for(d, "retry-date-far"), timeout=3)
tap.eq([(x.get("event", {}).get("id"), x.get("reason"), x.get("attempts"))
        for x in lines or []], [(eid, "retry_after_beyond_budget", 1)],
       "retry: a Retry-After HTTP-date a minute ahead is beyond the 2 s "
       "budget: dead-lettered after one attempt")

# ---------------------------------------------------------------------
# Never retry other 4xx; never follow redirects.

eid = post(d, ev("reject-404"))
expected["reject-404"] += 1
r_404.wait(1, timeout=5)
wait_for(lambda: dl_for(d, "reject-404"), timeout=3)
time.sleep(0.4)
tap.eq(len(r_404.got), 1, "4xx: a 404 consumer gets exactly one request")
tap.eq([(x.get("event", {}).get("id"), x.get("reason"), x.get("attempts"),
         x.get("last_status")) for x in dl_for(d, "reject-404")],
       [(eid, "http_404", 1, 404)],
       "4xx: the 404 is dead-lettered with reason http_404, attempts 1, "
       "last_status 404")

for code, rcv in ((301, r_301), (302, r_302)):
    name = "redirect-%d" % code
    eid = post(d, ev(name))
    expected[name] += 1
    rcv.wait(1, timeout=5)
    wait_for(lambda: dl_for(d, name), timeout=3)
    time.sleep(0.3)
    tap.eq(len(rcv.got), 1, "redirect: a %d consumer gets exactly one "
           "request" % code)
    tap.eq([(x.get("event", {}).get("id"), x.get("reason"),
             x.get("attempts"), x.get("last_status"))
            for x in dl_for(d, name)],
           [(eid, "http_%d" % code, 1, code)],
           "redirect: %d is dead-lettered (reason http_%d, attempts 1), "
           "not followed" % (code, code))
tap.eq(len(target.got), 0, "redirect: the Location target never gets a "
       "request")

# ---------------------------------------------------------------------
# Budget: a hung consumer is dead-lettered at its budget; another
# consumer of the same event gets it at once.

t0 = time.time()
eid = post(d, ev("hang", split="Old Site"))
expected["hung"] += 1
expected["healthy"] += 1
wait_for(lambda: eid in ids_of(r_healthy), timeout=5)
t_healthy = [g["time"] for g in r_healthy.got
             if json.loads(g["body"]).get("id") == eid]
pending_then = dl_for(d, "hung")
tap.ok(t_healthy and t_healthy[0] - t0 < 0.5 and pending_then == [],
       "budget: the healthy consumer gets its copy within 500 ms while the "
       "hung one is still pending",
       "healthy after %s s; hung dead letters then: %r" %
       (["%.3f" % (t - t0) for t in t_healthy], pending_then))
lines = wait_for(lambda: dl_for(d, "hung"), timeout=5)
tap.eq([(x.get("event", {}).get("id"), x.get("reason"), x.get("attempts"),
         "last_status" in x) for x in lines or []],
       [(eid, "timeout", 1, False)],
       "budget: the hung delivery is dead-lettered with reason timeout "
       "after one attempt, with no last_status")
dt = dl_time(lines[0]) - t0 if lines else None
tap.ok(dt is not None and 0.75 <= dt <= 3.0,
       "budget: the hung delivery is dead-lettered at its 800 ms budget",
       "dead-lettered %s s after posting" % dt)
hb = [g["body"] for g in r_healthy.got
      if json.loads(g["body"]).get("id") == eid]
raw = [r for r in dl_raw(d) if eid.encode() in r and b'"hung"' in r]
tap.ok(len(hb) == 1 and len(raw) == 1 and
       raw[0].endswith(b',"event":' + hb[0] + b"}"),
       "budget: the dead-letter line holds the full envelope under "
       "\"event\", byte for byte as delivered", raw)
tap.eq(len(r_hung.got), 1, "budget: the hung consumer got one request")

# A consumer at a closed port: retried while the budget allows.
t0 = time.time()
eid = post(d, ev("closed", split="Crossing"))
expected["closed"] += 1
expected["healthy"] += 1
wait_for(lambda: eid in ids_of(r_healthy), timeout=5)
t_healthy = [g["time"] for g in r_healthy.got
             if json.loads(g["body"]).get("id") == eid]
tap.ok(t_healthy and t_healthy[0] - t0 < 0.5,
       "budget: a consumer at a closed port does not delay another")
lines = wait_for(lambda: dl_for(d, "closed"), timeout=5)
tap.eq([(x.get("event", {}).get("id"), x.get("reason"))
        for x in lines or []], [(eid, "connect_failed")],
       "budget: the closed-port delivery is dead-lettered with reason "
       "connect_failed")
tap.ok(lines and isinstance(lines[0].get("attempts"), int) and
       lines[0]["attempts"] > 1,
       "budget: connect errors are retried within the budget (attempts > 1)",
       lines)
dt = dl_time(lines[0]) - t0 if lines else None
tap.ok(dt is not None and 0.2 <= dt <= 3.0,
       "budget: the closed-port delivery gives up near its 600 ms budget",
       "dead-lettered %s s after posting" % dt)

# ---------------------------------------------------------------------
# Isolation: in-flight cap and bounded queue on a hung consumer.

batch = [ev("iso", split="Golden Ridge %d" % i, split_index=i)
         for i in range(10)]
t0 = time.time()
iso_ids = post(d, batch)
expected["iso-hung"] += 10
expected["iso-ok"] += 10
# Dead-letter lines are written at the end of ctrd's loop turn.
first = wait_for(lambda: dl_for(d, "iso-hung"), timeout=0.5)
tap.eq([(x.get("event", {}).get("id"), x.get("reason")) for x in first],
       [(i, "queue_full") for i in iso_ids[7:]],
       "isolation: with max_in_flight 2 and queue_max 5, the 3 events over "
       "the cap are dead-lettered queue_full at once")
mt = metrics(d)
tap.eq((mval(mt, "ctrd_in_flight", consumer="iso-hung"),
        mval(mt, "ctrd_queue_depth", consumer="iso-hung")), (2.0, 5.0),
       "isolation: metrics show 2 in flight and 5 queued for the hung "
       "consumer")
wait_for(lambda: set(iso_ids) <= set(ids_of(r_iso_ok)), timeout=5)
arr = {json.loads(g["body"])["id"]: g["time"] for g in r_iso_ok.got}
late = [i for i in iso_ids if i not in arr or arr[i] - t0 > 0.5]
tap.ok(late == [], "isolation: all 10 reach the healthy consumer within "
       "500 ms of posting",
       "late: %r\narrivals after posting (s): %r" % (late, [
           "%.3f" % (arr[i] - t0) if i in arr else None for i in iso_ids]))
wait_for(lambda: len(dl_for(d, "iso-hung")) >= 10, timeout=5)
time.sleep(0.2)
lines = dl_for(d, "iso-hung")
reasons = {x.get("event", {}).get("id"): x.get("reason") for x in lines}
tap.eq(sorted(x.get("event", {}).get("id") for x in lines), sorted(iso_ids),
       "isolation: every one of the 10 events is dead-lettered exactly "
       "once for the hung consumer")
tap.eq([reasons.get(i) for i in iso_ids],
       ["timeout"] * 2 + ["budget_exhausted"] * 5 + ["queue_full"] * 3,
       "isolation: the 2 in flight time out, the 5 queued expire at the "
       "budget, the 3 overflowing were queue_full")
late_ok = [x for x in lines if x.get("reason") != "queue_full" and
           not (0.95 <= dl_time(x) - t0 <= 4.0)]
tap.eq(late_ok, [], "isolation: the timeouts and expiries happen at the "
       "1000 ms budget")
tap.eq(len(r_iso_hung.got), 2, "isolation: the hung consumer never had "
       "more than max_in_flight 2 requests")
tap.eq(sorted(ids_of(r_iso_ok)), sorted(iso_ids),
       "isolation: the healthy consumer got each of the 10 exactly once")

# ---------------------------------------------------------------------
# Keep-alive: sequential deliveries share a connection.

ka_ids = []
for i in range(20):
    eid = post(d, ev("ka", split="split %d" % i, split_index=i))
    ka_ids.append(eid)
    expected["keepalive"] += 1
    r_ka.wait(i + 1, timeout=3)
tap.eq(ids_of(r_ka), ka_ids, "keep-alive: 20 sequential events arrive, "
       "in order")
print("# keep-alive: 20 deliveries over %d connection(s)" %
      len(set(ka_ports)))
tap.ok(len(ka_ports) == 20 and len(set(ka_ports)) <= 2,
       "keep-alive: 20 sequential deliveries use at most 2 TCP connections",
       "%d connections (client ports %r)" % (len(set(ka_ports)),
                                             sorted(set(ka_ports))))

# ---------------------------------------------------------------------
# Metrics agree with what receivers and the dead-letter file show.

tap.eq(post_errors, [], "every event in this script was accepted with 202")


def settled():
    mt = metrics(d)
    busy = [k for k, v in mt.items()
            if k[0] in ("ctrd_in_flight", "ctrd_queue_depth") and v != 0]
    return mt if not busy else None


mt = wait_for(settled, timeout=5) or metrics(d)
tap.ok(settled() is not None, "metrics: nothing left in flight or queued")
dls = d.dead_letters()
bad = []
for c in consumers:
    name = c["name"]
    dead = [x["event"]["id"] for x in dls if x.get("consumer") == name]
    rcv = receiver_of.get(name)
    got = set(ids_of(rcv)) if rcv is not None else set()
    want_deliv = len(got - set(dead))
    m_del = mval(mt, "ctrd_deliveries_total", consumer=name,
                 outcome="delivered")
    m_dead = mval(mt, "ctrd_deliveries_total", consumer=name,
                  outcome="dead_lettered")
    if (m_del, m_dead) != (want_deliv, len(dead)):
        bad.append((name, "metrics", (m_del, m_dead),
                    "receiver/file", (want_deliv, len(dead))))
    if want_deliv + len(dead) != expected[name]:
        bad.append((name, "delivered+dead", want_deliv + len(dead),
                    "routed", expected[name]))
tap.eq(bad, [], "metrics: delivered and dead_lettered per consumer equal "
       "the receivers and the dead-letter file, and add up to the events "
       "routed to it")
total = len(route_events) + 4 + 1 + 2 + 1 + 2 + 1 + 1 + 10 + 20
tap.eq(mval(mt, "ctrd_events_total", producer="runner", result="accepted"),
       float(total), "metrics: ctrd_events_total accepted counts every "
       "event posted")
tap.ok(time.time() - T_START < 50, "script ran in under 50 s",
       "%.1f s" % (time.time() - T_START))
tap.finish()
