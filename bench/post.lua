-- post.lua: wrk script POSTing one realistic speedrun.split with the key.
--
-- The same request goes to ctrd and to the nginx baseline, so that both
-- parse the same headers and read the same body.  The API key comes from
-- $BENCH_KEY; sent_ns is zero because wrk cannot stamp each request (the
-- open-loop generator, bench/openloop.c, does that for latency).

local key = os.getenv("BENCH_KEY") or "ctr_missing"

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v1/events"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type":"speedrun.split","source":"livesplit",' ..
    '"detail":{"game":"Super Mario 64","category":"16 Star",' ..
    '"split":"Bob-omb Battlefield","split_index":1,' ..
    '"pace":"-0:00:05.000","segment_time":"0:01:02.345",' ..
    '"attempt":1234,"sent_ns":"0000000000000000000"}}'

-- One line that bench/run parses: counts, and latency in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
      "wrk_result requests=%d duration_us=%d bytes=%d " ..
      "connect=%d read=%d write=%d status=%d timeout=%d " ..
      "p50_us=%d p99_us=%d p999_us=%d max_us=%d\n",
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end
