#!/usr/bin/env python3
"""Load protection: a consumer's circuit breaker, ctrd refusing events
with 503 overloaded while its own deliveries fall behind, and producers'
rate limits."""

import http.client
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctrtest import Ctrd, Receiver, Tap  # noqa: E402

tap = Tap()


def ev(n):
    return {"type": "speedrun.split", "source": "livesplit",
            "detail": {"game": "Celeste", "split": "1A", "n": n}}


def post_id(d, body):
    st, _, b = d.post(body)
    if st == 202 and isinstance(b, dict) and b.get("accepted") == 1:
        return b["entries"][0]["id"]
    return None


def dead(d, consumer, eid, timeout=5.0):
    """The dead-letter line of event eid for consumer, once written."""
    end = time.time() + timeout
    while time.time() < end:
        for x in d.dead_letters():
            if x.get("consumer") == consumer and \
               x.get("event", {}).get("id") == eid:
                return x
        time.sleep(0.02)
    return None


def metric(d, name):
    _, _, text = d.request("GET", "/metrics")
    m = re.search(r"^%s (\S+)$" % re.escape(name), str(text), re.M)
    return float(m.group(1)) if m else None


# --- circuit breaker --------------------------------------------------------

down = Receiver(tap, statuses=[500])
never = Receiver(tap, statuses=[500])
blip = Receiver(tap, statuses=[500, 500, 200])
picky = Receiver(tap, statuses=[422])
healthy = Receiver(tap)


def only(name, body):
    e = dict(body)
    e["detail"] = dict(body["detail"], to=name)
    return e


d = Ctrd(tap, consumers=[
    {"name": "down", "url": down.url, "circuit_breaker": 2,
     "budget_ms": 300, "pattern": {"detail": {"to": ["down", "all"]}}},
    {"name": "never", "url": never.url, "circuit_breaker": 0,
     "budget_ms": 300, "pattern": {"detail": {"to": ["down", "all"]}}},
    {"name": "blip", "url": blip.url, "circuit_breaker": 1,
     "pattern": {"detail": {"to": ["blip"]}}},
    {"name": "picky", "url": picky.url, "circuit_breaker": 2,
     "pattern": {"detail": {"to": ["picky"]}}},
    {"name": "healthy", "url": healthy.url},
])
if not tap.ok(d.start(), "ctrd starts with five consumers", d.read_log()):
    tap.finish()

# A delivery's own retries are never cut short: with circuit_breaker 1,
# two 500s and then a 200 still deliver.
e0 = post_id(d, only("blip", ev(0)))
blip.wait(3)
tap.ok(d.wait_log(r"delivered event=%s consumer=blip status=200 "
                  r"attempts=3 " % e0) is not None,
       "a delivery keeps its retries whatever the breaker: 500, 500, then "
       "delivered on the third attempt", len(blip.got))

# Refusals are answers: a consumer that says 422 is there.
ps = [post_id(d, only("picky", ev(i))) for i in range(4)]
xs = [dead(d, "picky", i) for i in ps]
tap.eq([((x or {}).get("reason"), (x or {}).get("attempts")) for x in xs],
       [("http_422", 1)] * 4, "four events a consumer refuses with 422 are "
       "dead-lettered http_422, none circuit_open: a 4xx is no failure")

e1 = post_id(d, only("down", ev(1)))
x = dead(d, "down", e1)
tap.ok(x is not None and x.get("reason") == "http_500" and
       x.get("attempts", 0) > 1, "a failing consumer's first event is "
       "retried to its budget, then dead-lettered http_500", x)
tap.ok("consumer=down circuit open" not in d.read_log(),
       "one failed delivery does not open circuit_breaker 2")
e2 = post_id(d, only("down", ev(2)))
opened = d.wait_log(r"consumer=down circuit open for 500 ms after 2 "
                    r"failed deliveries in a row")
t_open = time.time()
tap.ok(opened is not None, "a second failed delivery in a row opens the "
       "circuit for 500 ms, and the log says so", d.read_log()[-1500:])
x = dead(d, "down", e2)
tap.ok(x is not None and x.get("reason") == "http_500" and
       x.get("attempts", 0) > 1, "that delivery, too, had all its retries "
       "and keeps its own reason", x)
n_down = len(down.got)
e3 = post_id(d, only("down", ev(3)))
x = dead(d, "down", e3)
tap.ok(time.time() - t_open < 0.45, "the next event was posted while the "
       "circuit was open", "%.3f s after it opened" % (time.time() - t_open))
tap.eq(((x or {}).get("reason"), (x or {}).get("attempts")),
       ("circuit_open", 0), "while it is open, an event for the consumer is "
       "dead-lettered circuit_open without an attempt")
tap.eq(len(down.got), n_down, "the broken consumer got no request while "
       "open")
e_all = post_id(d, only("all", ev(4)))
tap.ok(healthy.wait_for_id(e_all) is not None, "the healthy consumer gets "
       "events all the same")
tap.eq((metric(d, 'ctrd_circuit_open{consumer="down"}'),
        metric(d, 'ctrd_circuit_opens_total{consumer="down"}')),
       (1.0, 1.0), "/metrics shows the circuit open, opened once")
xs = [dead(d, "never", i) for i in (e1, e2, e3)]
tap.ok(all(x is not None and x.get("reason") == "http_500" and
           x.get("attempts", 0) > 1 for x in xs),
       "with circuit_breaker 0 every event is retried to its budget, "
       "however many failed before", xs)
tap.eq(metric(d, 'ctrd_circuit_opens_total{consumer="never"}'), 0.0,
       "and its circuit never opens")

# Half open: after 500 ms one delivery goes through; its success closes.
time.sleep(max(0.0, t_open + 0.6 - time.time()))
down.statuses = [500] * len(down.got) + [200]
e5 = post_id(d, only("down", ev(5)))
tap.ok(down.wait_for_id(e5) is not None, "after 500 ms the next event is "
       "attempted again, and delivered")
tap.ok(d.wait_log(r"consumer=down circuit closed") is not None,
       "its success closes the circuit, and the log says so")
tap.eq(metric(d, 'ctrd_circuit_open{consumer="down"}'), 0.0,
       "/metrics shows the circuit closed")

# Open again; a failed delivery while half open doubles the time.
down.statuses = [200] * len(down.got) + [500]
e6, e7 = post_id(d, only("down", ev(6))), post_id(d, only("down", ev(7)))
tap.ok(dead(d, "down", e6) is not None and dead(d, "down", e7) is not None
       and d.wait_log(r"(?s)circuit closed.*consumer=down circuit open "
                      r"for 500 ms") is not None,
       "two more failed deliveries open it again, for 500 ms: the success "
       "reset the count", d.read_log()[-1500:])
time.sleep(0.6)
e8 = post_id(d, only("down", ev(8)))
x = dead(d, "down", e8)
tap.ok(x is not None and x.get("reason") == "http_500" and
       x.get("attempts", 0) > 1, "half open, the deciding delivery still "
       "has its retries", x)
tap.ok(d.wait_log(r"consumer=down circuit open for 1000 ms after 3 ") is
       not None, "its failure opens the circuit for twice as long",
       d.read_log()[-1500:])
d.signal(signal.SIGHUP)
tap.ok(d.wait_log(r"reloaded") is not None, "ctrd reloads")
tap.eq(metric(d, 'ctrd_circuit_open{consumer="down"}'), 0.0,
       "a reload starts the consumer closed, and /metrics says so")
tap.eq(d.stop(), 0, "ctrd stops cleanly")

# A healthy consumer that is merely slow: what waited in its queue too long
# to be answered in time is not sent at all, so the consumer does no work
# for an event that is then dead-lettered, and its circuit stays closed.
lag_rcv = Receiver(tap, delay=0.3)
d = Ctrd(tap, consumers=[{"name": "lagging", "url": lag_rcv.url,
                          "max_in_flight": 1, "budget_ms": 1000}])
if not tap.ok(d.start(), "ctrd with a slow consumer starts", d.read_log()):
    tap.finish()
ids = [post_id(d, ev(i)) for i in range(8)]
time.sleep(1.5)
dl = {x["event"]["id"]: x for x in d.dead_letters()}
delivered = [i for i in ids if i not in dl]
tap.ok(2 <= len(delivered) <= 4 and len(lag_rcv.got) == len(delivered),
       "the consumer got exactly the requests that were delivered: none "
       "was sent only to time out", (len(delivered), len(lag_rcv.got)))
tap.eq(sorted({(x["reason"], x["attempts"]) for x in dl.values()}),
       [("budget_exhausted", 0)], "the others are dead-lettered "
       "budget_exhausted, never attempted")
tap.eq(metric(d, 'ctrd_circuit_opens_total{consumer="lagging"}'), 0.0,
       "and the circuit of a consumer that answers everything stays shut")
tap.eq(d.stop(), 0, "ctrd stops cleanly")

# --- overload ---------------------------------------------------------------

# overload_busy_pct 0 stands in for a loop busy all the time, so that
# only the wait of the oldest queued delivery decides.  The consumer
# answers in 30 ms, one request at a time: eight events make a queue whose
# head has soon waited 100 ms, longer than the consumer takes to answer.
quick = Receiver(tap, delay=0.03)
o = Ctrd(tap, consumers=[{"name": "quick", "url": quick.url,
                          "max_in_flight": 1}],
         extra="overload_busy_pct: 0")
if not tap.ok(o.start(), "a ctrd with overload_busy_pct 0 starts",
              o.read_log()):
    tap.finish()
t0 = time.time()
first = [post_id(o, ev(i)) for i in range(8)]
tap.ok(None not in first, "eight events are accepted: one in flight, the "
       "others waiting")
time.sleep(max(0.0, t0 + 0.15 - time.time()))
# One keep-alive connection for the refused event and the next one.
conn = http.client.HTTPConnection("127.0.0.1", o.port, timeout=5)
hdrs = {"Content-Type": "application/json",
        "Authorization": "Bearer " + o.keys["runner"]}
conn.request("POST", "/v1/events", json.dumps(ev(9)), hdrs)
resp = conn.getresponse()
st, retry_after, body = resp.status, resp.getheader("Retry-After"), \
    json.loads(resp.read() or b"null")
sock = conn.sock
tap.eq((st, retry_after, (body or {}).get("error", {}).get("code")),
       (503, "1", "overloaded"), "once a delivery has waited 100 ms, a new "
       "event gets 503 overloaded with Retry-After: 1")
tap.ok(resp.getheader("Connection", "").lower() != "close" and
       sock is not None, "the refusal keeps the connection open",
       resp.getheaders())
tap.ok(o.wait_log(r"overloaded: refusing events with 503") is not None,
       "the log says ctrd is refusing events")
tap.eq(metric(o, 'ctrd_events_total{producer="runner",result="overloaded"}'),
       1.0, "/metrics counts the refused event as overloaded")
tap.ok(all(o.wait_log(r"delivered event=%s " % i) is not None
           for i in first), "all eight accepted events are delivered")
time.sleep(0.05)
conn.request("POST", "/v1/events", json.dumps(ev(10)), hdrs)
resp = conn.getresponse()
body = json.loads(resp.read() or b"null")
c = body["entries"][0]["id"] if resp.status == 202 else None
tap.ok(c is not None and conn.sock is sock and
       quick.wait_for_id(c, 3) is not None,
       "with nothing waiting, events are accepted again, on the same "
       "connection", resp.status)
conn.close()
tap.eq(len(quick.got), 9, "the refused event was never delivered")
tap.eq(o.stop(), 0, "ctrd stops cleanly")

# A consumer that takes longer to answer than the wait that counts holds
# its queue up itself: even with the loop taken as busy, no refusal.
slow = Receiver(tap, delay=0.4)
o = Ctrd(tap, consumers=[{"name": "slow", "url": slow.url,
                          "max_in_flight": 1}],
         extra="overload_busy_pct: 0")
if not tap.ok(o.start(), "a ctrd with overload_busy_pct 0 and a slow "
              "consumer starts", o.read_log()):
    tap.finish()
a = post_id(o, ev(1))
o.wait_log(r"delivered event=%s " % a)      # its answer time is known
ids = [post_id(o, ev(i)) for i in range(2, 5)]
time.sleep(0.2)
late = post_id(o, ev(5))
tap.ok(a is not None and None not in ids and late is not None,
       "a consumer slower to answer than 100 ms is no reason to refuse "
       "anybody, however long its queue waits")
tap.eq(o.stop(), 0, "ctrd stops cleanly")

# The defaults: a consumer that is merely slow, while ctrd idles, is no
# reason to refuse anybody.
slow2 = Receiver(tap, delay=0.4)
q = Ctrd(tap, consumers=[{"name": "slow", "url": slow2.url,
                          "max_in_flight": 1}])
if not tap.ok(q.start(), "a ctrd with the default overload settings "
              "starts", q.read_log()):
    tap.finish()
a, b = post_id(q, ev(1)), post_id(q, ev(2))
time.sleep(0.2)
c = post_id(q, ev(3))
tap.ok(None not in (a, b, c), "a slow consumer alone does not make an idle "
       "ctrd refuse events")
tap.ok(slow2.wait_for_id(c, 5) is not None, "and all three are delivered")
tap.eq(q.stop(), 0, "ctrd stops cleanly")

# --- producer rate limits ---------------------------------------------------

sink = Receiver(tap)
r = Ctrd(tap, producers=[{"name": "runner"},
                         {"name": "limited", "rate_limit": 5,
                          "rate_burst": 10}],
         consumers=[{"name": "all", "url": sink.url}])
if not tap.ok(r.start(), "a ctrd with a rate-limited producer starts",
              r.read_log()):
    tap.finish()
got = [r.post(ev(i), producer="limited") for i in range(11)]
tap.eq([g[0] for g in got], [202] * 10 + [429], "rate_limit 5 with "
       "rate_burst 10: ten events at once get in, the eleventh gets 429")
st, h, body = got[10]
tap.eq((h.get("retry-after"), (body or {}).get("error", {}).get("code")),
       ("1", "rate_limited"), "the 429 is rate_limited, with Retry-After: 1")
tap.eq(r.post(ev(0), producer="runner")[0], 202,
       "another producer is not held back")
tap.ok(r.wait_log(r"rate-limited producer=limited: over 5 events a "
                  r"second") is not None, "the log names the producer")
time.sleep(1.1)             # five or so tokens again
st, _, body = r.post([ev(i) for i in range(5)], producer="limited")
tap.eq((st, (body or {}).get("accepted")), (202, 5),
       "a second later a batch of five gets in")
st, _, body = r.post([ev(i) for i in range(3)], producer="limited")
tap.eq((st, (body or {}).get("error", {}).get("code")),
       (429, "rate_limited"), "a batch the bucket cannot hold whole is "
       "refused whole")
r.signal(signal.SIGHUP)
tap.ok(r.wait_log(r"reloaded") is not None, "ctrd reloads")
tap.eq(r.post(ev(0), producer="limited")[0], 429,
       "a reload does not refill the producer's allowance")
tap.eq(metric(r, 'ctrd_events_total{producer="limited",'
              'result="accepted"}'), 15.0,
       "/metrics: the limited producer had 15 events accepted")
# A request refused before its body is read counts as one event.
tap.ok((metric(r, 'ctrd_events_total{producer="limited",'
               'result="rate_limited"}') or 0) >= 3,
       "and counts its refused requests as rate_limited")
ids = [e["id"] for e in sink.wait(16, 5) and sink.events()]
tap.eq(len(ids), 16, "exactly the 16 accepted events were delivered")
tap.eq(r.stop(), 0, "ctrd stops cleanly")

tap.finish()
