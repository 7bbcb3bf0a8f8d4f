-- wrk script of benchmarks/serving_vs_mlflow.py: every request is the same POST,
-- its JSON body read from the file named by $WRK_BODY; at the end one line
-- "WRK_JSON {...}" with the counts and the latency percentiles in microseconds.
--
--   WRK_BODY=body.json wrk -t2 -c8 -d15s --latency -s serving_wrk.lua http://127.0.0.1:PORT/path

local path = os.getenv("WRK_BODY")
local file = assert(io.open(path or "", "rb"), "set WRK_BODY to the request body's file")
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"timeouts": %d, "non_2xx": %d, "mean_us": %.1f, "stdev_us": %.1f, '
      .. '"p50_us": %d, "p75_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, '
      .. '"max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
