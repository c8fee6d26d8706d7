-- engine: an open-model load, one 150-byte POST per iteration at a fixed arrival rate
-- (bench/arrival-rate.sh). RATE and DURATION come from the environment.
local body = '{"type":"funnel_enter","page":"website","session_id":"k6-journey-1-0-1795000000000","source":"k6-full-journey","padding":"xxxxxxxxxxxxxxxxxxxxxxxxxx"}'
local url = __ENV.URL or "http://127.0.0.1:18080/track"
local params = { headers = { ["Content-Type"] = "application/json" } }

options = {
  scenarios = {
    open = {
      executor = "constant-arrival-rate",
      rate = tonumber(__ENV.RATE or "20000"),
      timeUnit = "1s",
      duration = __ENV.DURATION or "10s",
      preAllocatedVUs = 200,
      maxVUs = 2000,
    },
  },
}

function default()
  http.post(url, body, params)
end
