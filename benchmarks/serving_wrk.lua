-- wrk script of benchmarks/serving_vs_mlflow.py and gateway_overhead.py: every
-- request is a POST of the same JSON body, read from the file named by $WRK_BODY; at
-- the end one line "WRK_JSON {...}" with the counts and the latency percentiles in
-- microseconds.
--
--   WRK_BODY=body.json wrk -t2 -c8 -d15s --latency -s serving_wrk.lua http://127.0.0.1:PORT/path
--
-- $WRK_PATHS (optional): comma-separated URL paths that each wrk thread's requests
-- take in turn, e.g. "/v2/models/a/infer,/v2/models/a/infer,/v2/models/a/infer,
-- /v2/models/b/infer" (no spaces) sends exactly every 4th request to b; the URL's own
-- path is then unused. The requests are built once per thread (in init), and wrk asks
-- request() for each one (a Lua call per request, even with a single path).

local path = os.getenv("WRK_BODY")
local file = assert(io.open(path or "", "rb"), "set WRK_BODY to the request body's file")
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

local cycle = os.getenv("WRK_PATHS")
if cycle and cycle ~= "" then
  local built, n, i = {}, 0, 0

  function init(args)
    for p in string.gmatch(cycle, "[^,]+") do
      n = n + 1
      built[n] = wrk.format(nil, p)
    end
  end

  function request()
    i = i % n + 1
    return built[i]
  end
end

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
