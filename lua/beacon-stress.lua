-- beacon-stress (kept baseline): pure throughput, 10,000 VUs sending funnel_enter beacons
-- for random steps as fast as the server answers. 5 minutes.
--
--   engine run --serve --time-scale 10 --vu-scale 0.01 lua/beacon-stress.lua
local cfg = require "config"
local helpers = require "journey-helpers"

options = {
  stages = {
    { duration = "1m", target = 10000 },
    { duration = "3m", target = 10000 },
    { duration = "1m", target = 0 },
  },
  thresholds = {
    http_req_failed = { "rate<0.01" },
    http_req_duration = { "p(95)<3000" },
    funnel_entry_success = { "rate>0.99" },
  },
}

function default()
  local page = cfg.FUNNEL_STEPS[math.random(#cfg.FUNNEL_STEPS)]
  local sessionId = string.format("k6-stress-%d-%d-%d", __VU, __ITER, Date.now())
  helpers.sendBeacon("funnel_enter", page, sessionId, cfg.SOURCES.BEACON)
  sleep(0.1 + math.random() * 0.4)
end
