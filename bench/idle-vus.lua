-- Idle VUs: each sleeps forever. Measures the memory and start-up cost of a VU.
-- Run by bench/vu-memory.sh; VUS and HOLD come from -e.
local exec = require "k6/execution"
local N = tonumber(__ENV.VUS or "100000")
options = {
  scenarios = {
    idle = { executor = "constant-vus", vus = N, duration = __ENV.HOLD or "5s", gracefulStop = "0s" },
  },
}
function default()
  if __VU == N and __ITER == 0 then
    console.log(string.format("last VU started %.0f ms after the process began", exec.instance.currentTestRunDuration))
  end
  while true do sleep(60) end
end
