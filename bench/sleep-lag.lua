-- Time-keeping: VUS VUs loop sleep(1) for HOLD; the engine's vu_sleep_lag Trend records how
-- late every sleep woke. Run by bench/sleep-lag.sh.
local N = tonumber(__ENV.VUS or "100000")
options = {
  scenarios = {
    sleepers = { executor = "constant-vus", vus = N, duration = __ENV.HOLD or "20s", gracefulStop = "2s" },
  },
}
function default()
  sleep(1)
end
