-- journey-blitz: the same journey as full-journey with compressed timing (1-3 s per step,
-- heartbeats every 3 s, tab-switch away/return times compressed by the same factor),
-- to push more journeys through in less wall-clock time. 12.5 minutes to 15,000 VUs.
--
--   engine run --serve --time-scale 12 --vu-scale 0.01 lua/journey-blitz.lua   # ~1 minute
local helpers = require "journey-helpers"
local cfg = require "config"

local BLITZ_HEARTBEAT_INTERVAL = 3
local TAB_SWITCH_SCALE = BLITZ_HEARTBEAT_INTERVAL / cfg.HEARTBEAT_INTERVAL -- 15 s -> 3 s

options = {
  stages = {
    { duration = "1m",  target = 500 },    -- Phase 1: Warm-up
    { duration = "2m",  target = 5000 },   -- Phase 2: Ramp
    { duration = "5m",  target = 5000 },   -- Phase 3: Sustained
    { duration = "30s", target = 15000 },  -- Phase 4: Spike
    { duration = "3m",  target = 15000 },  -- Phase 5: Spike hold
    { duration = "1m",  target = 0 },      -- Phase 6: Cool-down
  },
  -- http_req_duration p(95)<3000 p(99)<5000, http_req_failed rate<0.01, the success Rates
  -- > 0.99, beacon_latency_ms p(95)<2000 p(99)<5000, and the integrity checks == 1
  thresholds = helpers.JOURNEY_THRESHOLDS,
  funnel = helpers.FUNNEL,  -- the web dashboard's funnel panel
  teardownTimeout = "3m",
}

function setup()
  return helpers.funnelBaseline(cfg.SOURCES.BLITZ)
end

function default()
  helpers.runJourney(cfg.BLITZ_DWELL_TIMES, cfg.SOURCES.BLITZ, {
    heartbeatInterval = BLITZ_HEARTBEAT_INTERVAL,
    tabSwitchScale = TAB_SWITCH_SCALE,
  })
end

function teardown(data)
  helpers.checkFunnelIntegrity(cfg.SOURCES.BLITZ, data, { conversions = true })
end
