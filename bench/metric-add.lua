-- What recording costs from a script, end to end on one worker (Lua call, crossing into
-- Rust, tag set, worker buffer): `engine run -q --no-summary bench/metric-add.lua`.
options = { vus = 1, iterations = 1 }
local rate = Rate("bench_rate")
local trend = Trend("bench_trend")

function default()
  local n = 1000000
  local t0 = os.clock()
  for i = 1, n do
    rate:add(true)
    trend:add(i)
  end
  local adds = (os.clock() - t0) / (2 * n)
  local m = 300000
  t0 = os.clock()
  for i = 1, m do
    check(i, { ["positive"] = function(x) return x > 0 end })
  end
  local checks = (os.clock() - t0) / m
  console.log(string.format("metric add: %.0f ns; check with one predicate (its table and closure included): %.0f ns",
    adds * 1e9, checks * 1e9))
end
