-- d1-contention (kept baseline): every VU hits the same step in the same instant, over
-- and over, to find the write-contention limit of the store. 2 minutes, 1,000 VUs.
--
--   engine run --serve --time-scale 4 --vu-scale 0.1 lua/d1-contention.lua
local cfg = require "config"
local helpers = require "journey-helpers"

options = {
  vus = 1000,
  duration = "2m",
  thresholds = {
    http_req_failed = { "rate<0.01" },
    http_req_duration = { "p(95)<3000" },
  },
}

function default()
  -- Line up on the next whole second so all VUs fire together.
  local now = Date.now()
  sleep((1000 - now % 1000) / 1000)
  local sessionId = string.format("k6-d1-%d-%d-%d", __VU, __ITER, now)
  helpers.sendBeacon("funnel_enter", "webinar", sessionId, cfg.SOURCES.D1)
  helpers.sendBeacon("funnel_exit", "webinar", sessionId, cfg.SOURCES.D1, { time_on_page = 1000 })
end
