-- bounce-storm: the bounce/unbounce cycle under extreme concurrency. Every VU enters a
-- random step, then exit -> reenter -> reexit -> reenter -> final leave, rapid-fire.
-- After the run each step's net bounces must equal the VUs that ended on the final leave.
-- 9 minutes to 5,000 VUs.
--
--   engine run --serve --time-scale 9 --vu-scale 0.02 lua/bounce-storm.lua
local helpers = require "journey-helpers"
local cfg = require "config"

local finalExits = Counter("bounce_final_exits")

options = {
  stages = {
    { duration = "1m", target = 500 },   -- Phase 1: Ramp
    { duration = "5m", target = 2000 },  -- Phase 2: Sustained
    { duration = "2m", target = 5000 },  -- Phase 3: Spike
    { duration = "1m", target = 0 },     -- Phase 4: Cool-down
  },
  thresholds = {
    http_req_duration = { "p(95)<3000" },
    http_req_failed = { "rate<0.01" },
    funnel_reenter_success = { "rate>0.99" },
    funnel_reexit_success = { "rate>0.99" },
    ["checks{integrity:true}"] = { "rate==1" },
  },
  teardownTimeout = "3m",
}

function setup()
  return helpers.funnelBaseline(cfg.SOURCES.BOUNCE)
end

function default()
  local sessionId = string.format("k6-bounce-%d-%d-%d", __VU, __ITER, Date.now())
  local page = cfg.FUNNEL_STEPS[math.random(#cfg.FUNNEL_STEPS)]
  helpers.sendBeacon("funnel_enter", page, sessionId, cfg.SOURCES.BOUNCE)
  sleep(2)
  local last = helpers.rapidBounceSequence(page, sessionId, cfg.SOURCES.BOUNCE)
  if last.ok then
    finalExits:add(1, { page = page })
  end
end

function teardown(data)
  helpers.checkFunnelIntegrity(cfg.SOURCES.BOUNCE, data, { finalExits = true })
end
