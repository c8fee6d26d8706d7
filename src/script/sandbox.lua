-- What a load-test script may not do by default: run programs, write or delete files,
-- load C code or binary chunks, or reach into the VM with the debug library. A script
-- reviewed in a pull request and run in CI stays a load test. `engine run --unsafe-lua`
-- skips this file. Reading stays: open() in init code (k6's), io.open/io.lines for reading,
-- require of Lua files; handleSummary's files are written by the engine, not the script.
local function removed(name)
  return function()
    error(name .. " is not available to load-test scripts (engine run --unsafe-lua allows it)", 2)
  end
end

for _, name in ipairs { "execute", "exit", "remove", "rename", "tmpname", "setlocale" } do
  os[name] = removed("os." .. name)
end

local io_open = io.open
io.open = function(path, mode)
  if mode ~= nil and not (mode == "r" or mode == "rb") then
    error("io.open(" .. tostring(path) .. ", " .. tostring(mode) ..
      "): only reading is available to load-test scripts (engine run --unsafe-lua allows writing)", 2)
  end
  return io_open(path, mode)
end
io.popen = removed("io.popen")
io.tmpfile = removed("io.tmpfile")
io.output = function(file)
  if file ~= nil then removed("io.output(file)")() end
  return io.stdout
end

package.loadlib = removed("package.loadlib")
package.cpath = ""
-- Keep the preload and Lua-file searchers; drop the C and all-in-one C searchers.
package.searchers[3], package.searchers[4] = nil, nil

local traceback = debug.traceback
debug = setmetatable({ traceback = traceback }, {
  __index = function(_, name) return removed("debug." .. tostring(name)) end,
})
package.loaded.debug = debug

-- Text chunks only: a binary chunk can break the VM's invariants.
local raw_load, raw_loadfile = load, loadfile
load = function(chunk, name, mode, env)
  return raw_load(chunk, name, "t", env == nil and _G or env)
end
loadfile = function(path, mode, env)
  return raw_loadfile(path, "t", env == nil and _G or env)
end
dofile = function(path)
  local f, err = raw_loadfile(path, "t")
  if f == nil then error(err, 2) end
  return f()
end
