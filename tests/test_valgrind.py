"""ctrd's normal life cycle under valgrind: start, deliver (with a retry
and a dead letter), reload, stop; no leak and no memory error."""

import os
import signal
import time

import ctrtest

tap = ctrtest.Tap()
if os.environ.get("CTR_SANITIZERS"):
    print("1..0 # SKIP built with sanitizers, which valgrind cannot run")
    os._exit(0)
if not os.path.exists("/usr/bin/valgrind"):
    print("1..0 # SKIP valgrind is not installed")
    os._exit(0)

ok_rcv = ctrtest.Receiver(tap)
flaky = ctrtest.Receiver(tap, statuses=(500, 200))
closed = "http://127.0.0.1:%d/hook" % ctrtest.free_port()
consumers = [
    {"name": "ok", "url": ok_rcv.url, "secret": ctrtest.new_whsec()},
    {"name": "flaky", "url": flaky.url, "budget_ms": 3000},
    # circuit_breaker 2: its first two failed deliveries open it.
    {"name": "closed", "url": closed, "budget_ms": 300,
     "circuit_breaker": 2},
]
d = ctrtest.Ctrd(tap, consumers=consumers)
started = d.start(prefix=["valgrind", "--leak-check=full",
                          "--show-leak-kinds=definite,indirect,possible",
                          "--errors-for-leak-kinds=definite,indirect,"
                          "possible", "--error-exitcode=99"], wait=60)
tap.ok(started, "ctrd starts under valgrind")
if not started:
    tap.finish()

ev = {"type": "speedrun.split", "source": "livesplit",
      "detail": {"game": "Super Mario 64", "category": "16 Star",
                 "split": "BoB", "pace": "-0:00:01.500"}}
statuses = [d.post(ev)[0] for _ in range(5)]
tap.eq(statuses, [202] * 5, "five events accepted under valgrind")
tap.eq(len(ok_rcv.wait(5, timeout=20)), 5, "all five delivered")
tap.eq(len(flaky.wait(6, timeout=20)), 6,
       "the flaky consumer got its first event again after a 500")
status, _, _ = d.post("{\"type\": 1", producer="runner")
tap.eq(status, 400, "bad JSON refused under valgrind")
# Once the closed port's first deliveries have failed, its circuit is
# open and the next event is dead-lettered circuit_open.
end = time.time() + 20
while time.time() < end and len([x for x in d.dead_letters()
                                 if x.get("consumer") == "closed"]) < 5:
    time.sleep(0.1)
tap.eq(d.post(ev)[0], 202, "a sixth event is accepted")
tap.eq(len(ok_rcv.wait(6, timeout=20)), 6, "and delivered")
d.signal(signal.SIGHUP)
tap.ok(d.wait_log(r"reloaded", timeout=20) is not None, "reload logged")
tap.eq(d.post(ev)[0], 202, "accepted after reload")
tap.eq(len(ok_rcv.wait(7, timeout=20)), 7, "delivered after reload")
time.sleep(1.0)             # let the closed-port deliveries expire
rc = d.stop(timeout=60)
tap.eq(rc, 0, "exits 0 with no leak and no memory error")
log = d.read_log()
tap.ok("ERROR SUMMARY: 0 errors" in log, "valgrind reports 0 errors",
       "\n".join(l for l in log.splitlines() if "==" in l)[-3000:])
tap.ok("definitely lost" not in log or "definitely lost: 0" in log,
       "nothing definitely lost")
reasons = {x.get("reason") for x in d.dead_letters()
           if x.get("consumer") == "closed"}
tap.ok(reasons & {"connect_failed", "timeout"} and
       "circuit_open" in reasons,
       "the closed port's failures opened its circuit, so that path ran "
       "under valgrind too", reasons)
tap.finish()
