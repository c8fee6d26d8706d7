-- smoke-test: always first. 5 VUs hit the health endpoints and send one enter/exit pair
-- each iteration; if this fails, do not run anything else. 1 minute.
--
--   engine run --serve lua/smoke-test.lua
local http = require "k6/http"
local cfg = require "config"
local helpers = require "journey-helpers"

options = {
  vus = 5,
  duration = "1m",
  thresholds = {
    http_req_failed = { "rate<0.01" },
    http_req_duration = { "p(95)<3000" },
    checks = { "rate>0.99" },
  },
}

function default()
  local health = http.get(cfg.DASHBOARD_API_URL .. "/health", { tags = { name = "health" } })
  check(health, { ["dashboard health is 200"] = function(r) return r.status == 200 end })
  local sessionId = string.format("k6-smoke-%d-%d-%d", __VU, __ITER, Date.now())
  local enter = helpers.sendBeacon("funnel_enter", "website", sessionId, cfg.SOURCES.SMOKE)
  local exit = helpers.sendBeacon("funnel_exit", "website", sessionId, cfg.SOURCES.SMOKE, { time_on_page = 1000 })
  check(enter, { ["beacon accepted"] = function(b) return b.ok and exit.ok end })
  sleep(1)
end
