-- Shared helpers of the journey suite (port of lib/journey-helpers.js from the k6 spec):
-- sendBeacon, dwellOnPage, simulateTabSwitch, rapidBounceSequence, the journey walk that
-- full-journey, journey-blitz and conversion-soak share, and the integrity checks their
-- teardown runs against the dashboard API.
local http = require "k6/http"
local k6 = require "k6"
local metrics = require "k6/metrics"
local cfg = require "config"

local M = {}
local sleep, check = k6.sleep, k6.check
local TRACKING_URL, DASHBOARD_API_URL, HEARTBEAT_INTERVAL = cfg.TRACKING_URL, cfg.DASHBOARD_API_URL, cfg.HEARTBEAT_INTERVAL

-- Success rates (tagged with the page, so teardown can compare per step with the server)
local entrySuccess     = metrics.Rate("funnel_entry_success")
local exitSuccess      = metrics.Rate("funnel_exit_success")
local completeSuccess  = metrics.Rate("funnel_complete_success")
local heartbeatSuccess = metrics.Rate("heartbeat_success")
local reenterSuccess   = metrics.Rate("funnel_reenter_success")
local reexitSuccess    = metrics.Rate("funnel_reexit_success")
local SUCCESS = {
  funnel_enter = entrySuccess, funnel_exit = exitSuccess, funnel_complete = completeSuccess,
  heartbeat = heartbeatSuccess, funnel_reenter = reenterSuccess, funnel_reexit = reexitSuccess,
}

-- Latency (tagged with the beacon type: beacon_latency_ms{type:heartbeat})
local beaconLatency = metrics.Trend("beacon_latency_ms")

-- Funnel counts
local totalEntries          = metrics.Counter("total_entries")
local totalExits            = metrics.Counter("total_exits")
local totalBounces          = metrics.Counter("total_bounce_cycles")     -- tab switch out+in
local totalCompletes        = metrics.Counter("total_funnel_completes")  -- congrats completions
local totalMissionCompletes = metrics.Counter("total_mission_completes") -- brand-steps completions
local droppedUsers          = metrics.Counter("dropped_users")
local fullJourneyUsers      = metrics.Counter("full_journey_users")      -- made it to brand-steps

-- The spec's thresholds for the journey scripts (full-journey, journey-blitz,
-- conversion-soak), plus the integrity checks their teardown records.
M.JOURNEY_THRESHOLDS = {
  http_req_duration = { "p(95)<3000", "p(99)<5000" },
  http_req_failed = { "rate<0.01" },
  funnel_entry_success = { "rate>0.99" },
  funnel_exit_success = { "rate>0.99" },
  funnel_complete_success = { "rate>0.99" },
  beacon_latency_ms = { "p(95)<2000", "p(99)<5000" },
  ["checks{integrity:true}"] = { "rate==1" },
}

-- The dashboard's funnel panel (options.funnel, an engine option): entries per step in
-- the funnel's order, live and in the HTML report.
M.FUNNEL = { metric = "funnel_entry_success", tag = "page", steps = cfg.FUNNEL_STEPS }

local HEADERS = {
  ["Content-Type"] = "application/json",
  ["Origin"] = "https://k6-load-test.pages.dev",
}

--- Send a tracking beacon to the tracking worker.
--- Returns { ok, status, duration, body }; ok if accepted (2xx).
function M.sendBeacon(type, page, sessionId, source, extraFields)
  local payload = { type = type, page = page, session_id = sessionId, source = source }
  for k, v in pairs(extraFields or {}) do payload[k] = v end -- ...extraFields

  local res = http.post(TRACKING_URL .. "/track", json.encode(payload), {
    headers = HEADERS,
    timeout = "10s",
  })

  local ok = res.status >= 200 and res.status < 300
  beaconLatency:add(res.timings.duration, { type = type })
  SUCCESS[type]:add(ok, { page = page })
  return { ok = ok, status = res.status, duration = res.timings.duration, body = res.body }
end

--- Simulate dwelling on a page with periodic heartbeats.
--- Returns total dwell time in milliseconds.
function M.dwellOnPage(page, sessionId, source, minSec, maxSec, heartbeatInterval)
  local interval = heartbeatInterval or HEARTBEAT_INTERVAL
  local totalTime = minSec + math.random() * (maxSec - minSec)
  local elapsed = 0

  while elapsed < totalTime do
    local chunk = math.min(interval, totalTime - elapsed)
    sleep(chunk)
    elapsed = elapsed + chunk

    -- Send heartbeat if we have more time left (don't heartbeat at the very end)
    if elapsed < totalTime then
      M.sendBeacon("heartbeat", page, sessionId, source)
    end
  end

  return math.floor(totalTime * 1000 + 0.5)
end

--- Simulate a tab-switch bounce cycle: exit (bounce recorded), tab hidden, reenter
--- (bounce reversed), watching again. Returns additional time spent in ms.
--- `scale` compresses the away/return times (journey-blitz uses 0.2, like its heartbeats).
function M.simulateTabSwitch(page, sessionId, source, timeOnPageMs, scale)
  scale = scale or 1
  -- Tab switch away
  M.sendBeacon("funnel_exit", page, sessionId, source, { time_on_page = timeOnPageMs })

  -- Time away (5-30s)
  local awayTime = (5 + math.random() * 25) * scale
  sleep(awayTime)

  -- Come back
  M.sendBeacon("funnel_reenter", page, sessionId, source)

  -- Continue on page
  local extraTime = (10 + math.random() * 20) * scale
  sleep(extraTime)

  return math.floor(extraTime * 1000 + 0.5)
end

--- Simulate a rapid bounce cycle (for bounce-storm test).
--- exit -> reenter -> reexit -> reenter -> final reexit
function M.rapidBounceSequence(page, sessionId, source)
  local timeOnPage = 2000 -- 2s simulated

  -- 1. First exit (bounce)
  M.sendBeacon("funnel_exit", page, sessionId, source, { time_on_page = timeOnPage })
  sleep(1 + math.random() * 4)

  -- 2. Reenter (unbounce)
  M.sendBeacon("funnel_reenter", page, sessionId, source)
  sleep(2)

  -- 3. Re-exit (re-bounce via reexit)
  M.sendBeacon("funnel_reexit", page, sessionId, source)
  sleep(1 + math.random() * 4)

  -- 4. Reenter again (unbounce again)
  M.sendBeacon("funnel_reenter", page, sessionId, source)
  sleep(2)

  -- 5. Final exit (bounce stays — user actually leaves)
  return M.sendBeacon("funnel_reexit", page, sessionId, source)
end

--- One ambassador journey through the funnel, the spec's per-VU event sequence:
--- enter, dwell with heartbeats, tab-switch bounce at BOUNCE_RATES, the two completion
--- events kept separate, drop-off at DROP_OFF_RATES (a dropping user sends funnel_exit).
--- opts: heartbeatInterval (default HEARTBEAT_INTERVAL), tabSwitchScale (default 1).
--- Returns true if the user made it through brand-steps.
function M.runJourney(dwellTimes, source, opts)
  opts = opts or {}
  local sessionId = string.format("k6-journey-%d-%d-%d", __VU, __ITER, Date.now())

  for _, step in ipairs(cfg.FUNNEL_STEPS) do
    M.sendBeacon("funnel_enter", step, sessionId, source)
    totalEntries:add(1)
    if step == "brand-steps" then fullJourneyUsers:add(1) end

    local dwell = dwellTimes[step]
    local timeOnPage = M.dwellOnPage(step, sessionId, source, dwell.min, dwell.max, opts.heartbeatInterval)

    if math.random() < cfg.BOUNCE_RATES[step] then
      timeOnPage = timeOnPage + M.simulateTabSwitch(step, sessionId, source, timeOnPage, opts.tabSwitchScale)
      totalBounces:add(1)
    end

    local dropsHere = math.random() < cfg.DROP_OFF_RATES[step]

    -- THE CONGRATS CONVERSION — only users who click "Complete Brand Steps" (go on)
    if step == "congrats" and not dropsHere then
      M.sendBeacon("funnel_complete", "congrats", sessionId, source)
      totalCompletes:add(1)
    end

    -- THE BRAND MISSIONS COMPLETION — all 10 missions done
    if step == "brand-steps" and math.random() < cfg.MISSION_COMPLETION_RATE then
      M.sendBeacon("funnel_complete", "brand-steps", sessionId, source)
      totalMissionCompletes:add(1)
    end

    M.sendBeacon("funnel_exit", step, sessionId, source, { time_on_page = timeOnPage })
    totalExits:add(1)

    if dropsHere then
      droppedUsers:add(1)
      return false
    end
  end
  return true
end

---------------------------------------------------------------- integrity checks

local function funnel(source)
  local res = http.get(DASHBOARD_API_URL .. "/funnel?source=" .. source, { tags = { name = "funnel" } })
  if res.status ~= 200 then return nil end
  return res:json()
end

--- setup(): stop at once, with one line that says what to do, when the tracking endpoint
--- or the dashboard API does not answer /health (a 38-minute run against a dead target
--- would otherwise only print warnings).
function M.requireTargets()
  local exec = require "k6/execution"
  for _, target in ipairs { { "TRACKING_URL", TRACKING_URL }, { "DASHBOARD_API_URL", DASHBOARD_API_URL } } do
    local name, url = target[1], target[2]
    local res = http.get(url .. "/health", { timeout = "3s", tags = { name = "health" } })
    if res.status ~= 200 then
      local why = res.error ~= nil and res.error ~= "" and res.error or ("status " .. res.status)
      exec.test.abort(string.format(
        "%s %s does not answer GET /health (%s): start the reference server with `engine serve` in another terminal, run with --serve, or point the script at your target with -e %s=...",
        name, url, why, name))
    end
  end
end

--- setup(): checks the targets answer, then takes the dashboard's numbers for this source
--- before the run, so that teardown compares only what this run added (the server may
--- hold earlier runs).
function M.funnelBaseline(source)
  M.requireTargets()
  return { funnel = funnel(source) }
end

local function delta(now, before, page, field)
  local b = before and before.steps and before.steps[page] and before.steps[page][field] or 0
  return (now.steps[page][field] or 0) - b
end

local function near(actual, expected, tolerance)
  return math.abs(actual - expected) <= tolerance
end

--- teardown(): what the server counted for this source matches what the engine sent.
--- Entries per step must match exactly (both sides count; an iteration cut off while a
--- request was in flight may add at most one each), conversions must sit near the
--- configured rates, and live sessions must drain to 0 (no leak).
function M.checkFunnelIntegrity(source, baseline, opts)
  opts = opts or {}
  local engine = require "engine"
  local exec = require "k6/execution"
  local tags = { integrity = "true" }
  local now = funnel(source)
  check(now, { ["integrity: dashboard answers /funnel"] = function(f) return f ~= nil end }, tags)
  if now == nil then return end
  local before = baseline and baseline.funnel
  local interrupted = exec.instance.iterationsInterrupted
  local rows = {}
  for _, page in ipairs(cfg.FUNNEL_STEPS) do
    local sent = engine.metric("funnel_entry_success", { page = page }).passes
    local counted = delta(now, before, page, "entries")
    rows[#rows + 1] = string.format("  %-12s sent %7d  server %7d  bounces %6d", page, sent, counted, delta(now, before, page, "bounces"))
    check(counted, {
      ["integrity: server entries per step == engine's accepted funnel_enter"] = function(c)
        return c >= sent and c <= sent + interrupted
      end,
    }, tags)
  end
  console.log("funnel for source " .. source .. " (this run):\n" .. table.concat(rows, "\n"))

  if opts.conversions then
    local steps = cfg.FUNNEL_STEPS
    for i = 1, #steps - 1 do
      local from, to = delta(now, before, steps[i], "entries"), delta(now, before, steps[i + 1], "entries")
      if from >= 200 then
        -- A journey cut off by a ramp-down (an interrupted iteration) entered `from` but
        -- never had the chance to reach `to`: up to `interrupted` of them may be missing.
        local expected = 1 - cfg.DROP_OFF_RATES[steps[i]]
        local low, high = to / from, math.min(1, (to + interrupted) / from)
        check({ low, high }, {
          ["integrity: step conversions near the configured drop-off rates"] = function(r)
            return r[2] >= expected - 0.1 and r[1] <= expected + 0.1
          end,
        }, tags)
        console.log(string.format("  %s -> %s: %.3f (configured %.2f; %d journeys were cut off)", steps[i], steps[i + 1], low, expected, interrupted))
      end
    end
    local congratsEntries = delta(now, before, "congrats", "entries")
    local brandEntries = delta(now, before, "brand-steps", "entries")
    if congratsEntries >= 100 and brandEntries >= 100 then
      local congrats = delta(now, before, "congrats", "completes") / congratsEntries
      local missions = delta(now, before, "brand-steps", "completes") / brandEntries
      console.log(string.format("  congrats conversion %.3f, brand missions completion %.3f", congrats, missions))
      check(congrats, { ["integrity: congrats conversion near 95%"] = function(r) return near(r, 1 - cfg.DROP_OFF_RATES.congrats, 0.06) end }, tags)
      check(missions, { ["integrity: brand missions completion near 30%"] = function(r) return near(r, cfg.MISSION_COMPLETION_RATE, 0.1) end }, tags)
    end
  end

  if opts.finalExits then
    -- bounce-storm: each VU that finished its sequence leaves exactly one net bounce.
    for _, page in ipairs(cfg.FUNNEL_STEPS) do
      local finals = engine.metric("bounce_final_exits", { page = page }).count
      local bounces = delta(now, before, page, "bounces")
      check(bounces, {
        ["integrity: net bounces == VUs that ended on a final exit"] = function(b)
          return b >= finals and b <= finals + interrupted
        end,
      }, tags)
    end
  end

  -- Live sessions of this source drain: exits end a session at once; a journey cut off by
  -- a ramp-down or a stop leaves its session live until the server's TTL expires it. So
  -- wait a little for them to drain (sleeps are scaled by --time-scale, and so is the TTL
  -- of `--serve`), then accept at most one live session per cut-off journey: a standalone
  -- server keeps its own, unscaled TTL (session_ttl_ms in /stats). Other sources' traffic
  -- on a shared server is not counted (live_by_source).
  local function live_now()
    local res = http.get(DASHBOARD_API_URL .. "/stats", { tags = { name = "stats" } })
    if res.status ~= 200 then return -1 end
    local stats = res:json()
    if stats.live_by_source ~= nil then return stats.live_by_source[source] or 0 end
    return stats.live_sessions or -1
  end
  local live = live_now()
  for _ = 1, 16 do
    if live == 0 then break end
    sleep(5)
    live = live_now()
  end
  console.log(string.format("  live sessions of %s after the run: %d (%d journeys were cut off)", source, live, interrupted))
  check(live, {
    ["integrity: live sessions left <= journeys cut off"] = function(l) return l >= 0 and l <= interrupted end,
  }, tags)
end

return M
