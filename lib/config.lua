-- Configuration of the journey suite (port of lib/config.js from the k6 journey spec).
-- URLs come from __ENV and default to the local reference server (`engine serve`), never
-- to a public URL: point them at staging with -e TRACKING_URL=... -e DASHBOARD_API_URL=...
local M = {}

local LOCAL = "http://127.0.0.1:8787"

-- Existing (keep)
M.TRACKING_URL = __ENV.TRACKING_URL or LOCAL
M.DASHBOARD_API_URL = __ENV.DASHBOARD_API_URL or LOCAL
M.CANARY_URL = __ENV.CANARY_URL or LOCAL
M.FUNNEL_STEPS = { "website", "tutorial", "webinar", "contract", "congrats", "brand-steps" }

-- NEW — Drop-off rates (% who DON'T continue to next step)
M.DROP_OFF_RATES = {
  ["website"] = 0.40,
  ["tutorial"] = 0.30,
  ["webinar"] = 0.25,
  ["contract"] = 0.10,
  ["congrats"] = 0.05,
  ["brand-steps"] = 0.0,
}

-- NEW — Realistic dwell times per step (seconds)
M.DWELL_TIMES = {
  ["website"]     = { min = 5,  max = 30 },
  ["tutorial"]    = { min = 10, max = 60 },
  ["webinar"]     = { min = 30, max = 120 },
  ["contract"]    = { min = 5,  max = 30 },
  ["congrats"]    = { min = 2,  max = 8 },
  ["brand-steps"] = { min = 5,  max = 60 },
}

-- NEW — Compressed dwell times for blitz mode (seconds)
M.BLITZ_DWELL_TIMES = {
  ["website"]     = { min = 1,   max = 2 },
  ["tutorial"]    = { min = 1,   max = 3 },
  ["webinar"]     = { min = 2,   max = 4 },
  ["contract"]    = { min = 1,   max = 2 },
  ["congrats"]    = { min = 0.5, max = 1 },
  ["brand-steps"] = { min = 1,   max = 3 },
}

-- NEW — Bounce simulation rates (% of VUs that do tab-switch on this step)
M.BOUNCE_RATES = {
  ["website"] = 0.10,
  ["tutorial"] = 0.10,
  ["webinar"] = 0.20,      -- highest — people get distracted during webinar
  ["contract"] = 0.05,
  ["congrats"] = 0.02,
  ["brand-steps"] = 0.15,  -- people leave and come back during missions
}

-- NEW — Brand missions completion rate (% of brand-steps entrants who complete all 10)
M.MISSION_COMPLETION_RATE = 0.30

-- NEW — Heartbeat interval (seconds)
M.HEARTBEAT_INTERVAL = 15

-- NEW — source tags for filtering test data
M.SOURCES = {
  JOURNEY = "k6-full-journey",
  BLITZ = "k6-journey-blitz",
  SOAK = "k6-conversion-soak",
  BOUNCE = "k6-bounce-storm",
  BEACON = "k6-beacon-stress",
  D1 = "k6-d1-contention",
  SMOKE = "k6-smoke",
}

return M
