-- conversion-soak: 1,000 VUs for 30+ minutes of realistic journeys. Validates that
-- conversions, bounces and completions are counted correctly over a long period: no drift,
-- no counter corruption, bounce marks expire, live sessions do not leak. 34 minutes.
--
--   engine run --serve --time-scale 34 --vu-scale 0.1 lua/conversion-soak.lua
local helpers = require "journey-helpers"
local cfg = require "config"

options = {
  stages = {
    { duration = "2m",  target = 1000 },  -- Phase 1: Ramp
    { duration = "30m", target = 1000 },  -- Phase 2: Sustained
    { duration = "2m",  target = 0 },     -- Phase 3: Cool-down
  },
  thresholds = {
    http_req_duration = { "p(95)<3000", "p(99)<5000" },
    http_req_failed = { "rate<0.01" },
    funnel_entry_success = { "rate>0.99" },
    funnel_exit_success = { "rate>0.99" },
    funnel_complete_success = { "rate>0.99" },
    heartbeat_success = { "rate>0.99" },
    beacon_latency_ms = { "p(95)<2000", "p(99)<5000" },
    ["checks{integrity:true}"] = { "rate==1" },
  },
  teardownTimeout = "3m",
}

function setup()
  return helpers.funnelBaseline(cfg.SOURCES.SOAK)
end

function default()
  helpers.runJourney(cfg.DWELL_TIMES, cfg.SOURCES.SOAK)
end

function teardown(data)
  helpers.checkFunnelIntegrity(cfg.SOURCES.SOAK, data, { conversions = true })
end
