-- engine: the same 150-byte POST in a loop (bench/http-vs-wrk.sh). With METRICS=1 each
-- request also feeds a Rate, a Trend and a check, as the journey scripts do.
local body = '{"type":"funnel_enter","page":"website","session_id":"k6-journey-1-0-1795000000000","source":"k6-full-journey","padding":"xxxxxxxxxxxxxxxxxxxxxxxxxx"}'
local url = __ENV.URL or "http://127.0.0.1:18080/track"
local params = { headers = { ["Content-Type"] = "application/json" } }
local with_metrics = __ENV.METRICS == "1"
local ok_rate = Rate("beacon_ok")
local latency = Trend("beacon_latency_ms", true)

function default()
  local res = http.post(url, body, params)
  if with_metrics then
    ok_rate:add(res.status >= 200 and res.status < 300)
    latency:add(res.timings.duration)
    check(res, { ["status is 2xx"] = function(r) return r.status < 300 end })
  end
end
