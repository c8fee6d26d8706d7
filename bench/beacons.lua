-- wrk: funnel beacons with distinct sessions (enter, exit, reenter cycling over the pages),
-- for bench/serve-throughput.sh.
local pages = { "website", "tutorial", "webinar", "contract", "congrats", "brand-steps" }
local types = { "funnel_enter", "funnel_exit", "funnel_reenter", "heartbeat" }
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local body = string.format('{"type":"%s","page":"%s","session_id":"wrk-%d","source":"k6-bench","time_on_page":1200}',
    types[n % 4 + 1], pages[n % 6 + 1], math.floor(n / 4))
  return wrk.format(nil, "/track", nil, body)
end
