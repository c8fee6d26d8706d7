-- Idle VUs: each sleeps forever. Measures the memory and start-up cost of a VU.
-- Run by bench/vu-memory.sh; VUS comes from the environment.
local N = tonumber(__ENV.VUS or "100000")
options = {
  scenarios = {
    idle = { executor = "constant-vus", vus = N, duration = __ENV.HOLD or "5s", gracefulStop = "0s" },
  },
}
function default()
  if __VU == N and __ITER == 0 then console.log("last VU started") end
  while true do sleep(60) end
end
