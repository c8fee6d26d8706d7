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
  -- the journey thresholds (see full-journey), plus heartbeats over the long haul
  thresholds = (function()
    local t = { heartbeat_success = { "rate>0.99" } }
    for k, v in pairs(helpers.JOURNEY_THRESHOLDS) do t[k] = v end
    return t
  end)(),
  funnel = helpers.FUNNEL,  -- the web dashboard's funnel panel
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
