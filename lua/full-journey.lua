-- full-journey: the main event. Every VU walks the funnel as a real ambassador would
-- (website -> tutorial -> webinar -> contract -> congrats -> brand-steps) with realistic
-- dwell times, heartbeats, tab-switch bounces, drop-offs and the two separate completion
-- events. 38-minute ramp to 25,000 VUs.
--
--   engine run lua/full-journey.lua                                     # against engine serve
--   engine run --serve --time-scale 60 --vu-scale 0.01 lua/full-journey.lua   # a small trial
local helpers = require "journey-helpers"
local cfg = require "config"

options = {
  stages = {
    { duration = "2m",  target = 100 },    -- Phase 1: Warm-up
    { duration = "5m",  target = 5000 },   -- Phase 2: Ramp up
    { duration = "10m", target = 10000 },  -- Phase 3: Sustained load
    { duration = "1m",  target = 25000 },  -- Phase 4: Spike
    { duration = "5m",  target = 25000 },  -- Phase 5: Spike hold
    { duration = "2m",  target = 10000 },  -- Phase 6: Scale back
    { duration = "10m", target = 10000 },  -- Phase 7: Sustained
    { duration = "3m",  target = 0 },      -- Phase 8: Cool-down
  },
  -- http_req_duration p(95)<3000 p(99)<5000, http_req_failed rate<0.01, the success Rates
  -- > 0.99, beacon_latency_ms p(95)<2000 p(99)<5000, and the integrity checks == 1
  thresholds = helpers.JOURNEY_THRESHOLDS,
  funnel = helpers.FUNNEL,  -- the web dashboard's funnel panel
  teardownTimeout = "3m",
}

function setup()
  return helpers.funnelBaseline(cfg.SOURCES.JOURNEY)
end

function default()
  helpers.runJourney(cfg.DWELL_TIMES, cfg.SOURCES.JOURNEY)
end

function teardown(data)
  helpers.checkFunnelIntegrity(cfg.SOURCES.JOURNEY, data, { conversions = true })
end
