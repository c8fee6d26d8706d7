-- dashboard-under-load: the CEO dashboard watched during launch. Run it beside
-- full-journey against the same server: /funnel every 5 s, /stats every 10 s, /health
-- every 30 s, with response times under 3 s and data actually flowing.
--
--   engine serve &                                    # one server for both runs
--   engine run lua/full-journey.lua &
--   engine run lua/dashboard-under-load.lua
local http = require "k6/http"
local cfg = require "config"

local DURATION = __ENV.DASHBOARD_DURATION or "38m"

options = {
  scenarios = {
    -- Arrival rate, not sleep loops: a poll starts every 5 s even when the last one was slow,
    -- as a dashboard's timer does (a slow answer must not thin out the polling).
    funnel = { executor = "constant-arrival-rate", rate = 1, timeUnit = "5s", duration = DURATION,
               preAllocatedVUs = 1, maxVUs = 2, exec = "watchFunnel", gracefulStop = "5s" },
    stats = { executor = "constant-arrival-rate", rate = 1, timeUnit = "10s", duration = DURATION,
              preAllocatedVUs = 1, maxVUs = 2, exec = "watchStats", gracefulStop = "5s" },
    health = { executor = "constant-arrival-rate", rate = 1, timeUnit = "30s", duration = DURATION,
               preAllocatedVUs = 1, maxVUs = 2, exec = "watchHealth", gracefulStop = "5s" },
  },
  thresholds = {
    http_req_duration = { "p(95)<3000" },
    http_req_failed = { "rate<0.01" },
    ["checks{endpoint:funnel}"] = { "rate>0.9" },
  },
}

function watchFunnel()
  local funnelRes = http.get(cfg.DASHBOARD_API_URL .. "/funnel", { tags = { name = "funnel" } })
  -- Validate data is actually moving
  check(funnelRes, {
    ["funnel data has entries"] = function(r)
      local ok, data = pcall(json.decode, r.body)
      if not ok then return false end
      local steps = data.steps or (data.funnel or {}).steps or {}
      return ((steps.website or {}).entries or 0) > 0
    end,
    ["conversion rates present"] = function(r)
      local ok, data = pcall(json.decode, r.body)
      return ok and (data.conversions ~= nil or data.conversion_rates ~= nil)
    end,
    ["funnel under 3s"] = function(r) return r.timings.duration < 3000 end,
  }, { endpoint = "funnel" })
end

function watchStats()
  local res = http.get(cfg.DASHBOARD_API_URL .. "/stats", { tags = { name = "stats" } })
  check(res, {
    ["stats is 200"] = function(r) return r.status == 200 end,
    ["stats under 3s"] = function(r) return r.timings.duration < 3000 end,
  })
end

function watchHealth()
  local res = http.get(cfg.DASHBOARD_API_URL .. "/health", { tags = { name = "health" } })
  check(res, { ["health is 200"] = function(r) return r.status == 200 end })
end
