-- k6-shaped sugar over the engine's Rust primitives, run once per Lua state before the
-- script. Rust passes its primitives as `native`; nothing here is global unless k6 makes it so.
--
-- Suspending calls (sleep, http.*) yield an intent `(YIELD_MARK, op, ...)` to the Rust driver of the
-- VU, which does the waiting and resumes the coroutine with the result: no Rust future is
-- ever left behind as Lua garbage (see notes/runtime-findings.md, trap 2).
local native = ...
-- The incremental collector stays: the generational one saved ~1k instructions per request
-- in a tight POST loop but cost 9% more CPU on full-journey (long-lived VU state).
-- Hot paths read these as upvalues, not through the global table.
local type, next, setmetatable, tostring = type, next, setmetatable, tostring
local YIELD_MARK = native.yield_mark
local OP_HTTP, OP_BATCH = 2, 3 -- intent.rs; sleep (1) yields from C
local raw_yield = coroutine.yield
local co_resume, co_create, co_status = coroutine.resume, coroutine.create, coroutine.status
local pack, unpack = table.pack, table.unpack

-- VU code (iterations, setup, teardown) runs in coroutines the driver resumes; init code
-- does not, so "can this yield" tells them apart without a call into Rust.
local in_vu = coroutine.isyieldable

local function suspend(what, op, ...)
  if not in_vu() then
    error(what .. " can only be called in VU code, setup() or teardown(), not in init code", 3)
  end
  local res, err = raw_yield(YIELD_MARK, op, ...)
  if err ~= nil then error(err, 3) end
  return res
end

-- A script's own coroutines forward the engine's intents to the VU driver, so
-- coroutine.wrap(function() http.get(...) end) works instead of swallowing the yield.
local function resume_forwarding(co, ...)
  local r = pack(co_resume(co, ...))
  while r[1] and r[2] == YIELD_MARK and co_status(co) == "suspended" do
    r = pack(co_resume(co, raw_yield(unpack(r, 2, r.n))))
  end
  return unpack(r, 1, r.n)
end
coroutine.resume = resume_forwarding
coroutine.wrap = function(f)
  local co = co_create(f)
  return function(...)
    local r = pack(resume_forwarding(co, ...))
    if not r[1] then error(r[2], 2) end
    return unpack(r, 2, r.n)
  end
end

---------------------------------------------------------------- json
local json_encode, json_decode = native.json_encode, native.json_decode
local json_encode_plain = native.json_encode_plain
local json = {
  null = native.json_null,
  encode = function(v)
    -- Plain tables in C; the rest (metatables, NaN, mixed keys...) through serde.
    local text = json_encode_plain(v)
    if text ~= nil then return text end
    local err
    text, err = json_encode(v)
    if err ~= nil then error(err, 2) end
    return text
  end,
  decode = function(text)
    local v, err = json_decode(text)
    if err ~= nil then error(err, 2) end
    return v
  end,
}

-- An error value as a message: a table that error() was given (a k6 script throws objects)
-- as its JSON or __tostring, nil as what happened, so no log says "table: 0x..." or only
-- "stack traceback". exec.test.abort's marker stays a table for the driver. The driver
-- calls it on the error of a VU coroutine that died, and adds the traceback of that
-- coroutine (intent.rs).
local function describe_error(e)
  if type(e) == "table" and e.__abort ~= nil then return e end
  if e == nil then
    e = "error() was called without a message"
  elseif type(e) == "table" and getmetatable(e) == nil then
    local ok, text = pcall(json.encode, e)
    e = ok and ("error: " .. text) or tostring(e)
  elseif type(e) ~= "string" then
    e = tostring(e)
  end
  return e
end

-- Every VU coroutine runs the iteration's function itself, with no `xpcall` or Lua loop
-- around it: a sleeping VU keeps one call frame (64 bytes) less, and its stack stays within
-- the coroutine's initial 40 slots (a wrapper frame made Lua double it: ~0.7 KB per VU).
native.set_vu_main(describe_error)

---------------------------------------------------------------- k6
local k6 = {}

-- A C function that yields (YIELD_MARK, OP_SLEEP, seconds) itself (intent.rs): no Lua frame
-- of the engine's under a sleeping VU.
k6.sleep = native.sleep

-- A C function (modules/k6.rs): the loop over the checks and the samples without a Lua
-- frame or an mlua callback per check.
k6.check = native.check

function k6.group(name, fn)
  native.group_enter(name)
  local r = pack(pcall(fn))
  native.group_exit()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

function k6.fail(msg)
  error(msg == nil and "fail" or tostring(msg), 2)
end

k6.randomSeed = native.random_seed

---------------------------------------------------------------- k6/http
local Response = {}
local res_extra = native.res_extra
-- Fields most scripts never read are built on first access.
local LAZY = { headers = true, cookies = true, request = true, url = true, proto = true, status_text = true, tls_version = true }
Response.__index = function(t, k)
  local m = Response[k]
  if m ~= nil then return m end
  if LAZY[k] then return res_extra(t, k) end
  return nil
end

function Response:json(selector)
  if self.body == nil then error("the response has no body (responseType 'none'?)", 2) end
  local v, err = json_decode(self.body)
  if err ~= nil then error(err, 2) end
  if selector then
    for part in string.gmatch(selector, "[^%.]+") do
      if type(v) ~= "table" then return nil end
      v = v[tonumber(part) and tonumber(part) + 1 or part]
    end
  end
  return v
end

local http = {}

-- A response from the parts the driver passes (see to_lua_parts in modules/http/response.rs),
-- or the error raised at the script's line when the driver passed (nil, message).
local function build_response(status, rbody, err, code, timings, extra)
  if status == nil then error(rbody, 2) end
  return setmetatable({
    status = status, body = rbody, error = err or "", error_code = code, _extra = extra,
    timings = timings, -- a userdata read by name (modules/http/timings.rs)
  }, Response)
end

-- The driver answers an OP_HTTP intent with the response's parts (or nil and an error);
-- the table is built in Lua, where a constructor is cheap. Every http.* function tail-calls
-- this one, which tail-calls build_response, so error level 2 is the script's line. The 6
-- parts arrive as build_response's arguments, not as locals here: this frame stays small
-- under the yield (and with it every VU's stack that waits for a response).
local function http_call(what, method, url, body, params)
  if not in_vu() then
    error(what .. " can only be called in VU code, setup() or teardown(), not in init code", 2)
  end
  return build_response(raw_yield(YIELD_MARK, OP_HTTP, method, url, body, params))
end

-- One closure per method (each tail-calls http_call).
local function with_body(method, what)
  return function(url, body, params)
    return http_call(what, method, url, body, params)
  end
end
local function without_body(method, what)
  return function(url, params)
    return http_call(what, method, url, nil, params)
  end
end
http.get = without_body("GET", "http.get()")
http.head = without_body("HEAD", "http.head()")
http.post = with_body("POST", "http.post()")
http.put = with_body("PUT", "http.put()")
http.patch = with_body("PATCH", "http.patch()")
http.del = with_body("DELETE", "http.del()")
http.options = with_body("OPTIONS", "http.options()")
function http.request(method, url, body, params)
  return http_call("http.request()", string.upper(method), url, body, params)
end

-- http.batch({ {"GET", url}, {method="POST", url=..., body=..., params=...}, "http://..." })
function http.batch(requests)
  local list = {}
  for k, r in pairs(requests) do
    if type(r) == "string" then r = { "GET", r } end
    list[#list + 1] = { key = k, method = r.method or r[1], url = r.url or r[2], body = r.body or r[3], params = r.params or r[4] }
  end
  local results = suspend("http.batch()", OP_BATCH, list)
  local out = {}
  for i, item in ipairs(list) do out[item.key] = build_response(unpack(results[i], 1, 6)) end
  return out
end

function http.cookieJar()
  return {
    cookiesForURL = function(_, url) return native.jar_cookies(url) end,
    set = function(_, url, name, value) native.jar_set(url, name, value) end,
    clear = function(_, url) native.jar_clear(url) end,
  }
end

-- http.expectedStatuses(200, 204, { min = 300, max = 399 }): which statuses count as
-- expected (the `expected_response` tag and `http_req_failed`). The object is the flat list
-- lo1, hi1, lo2, hi2, ... that Rust reads (modules/http/callback.rs, Expected).
local Expected = {}
function http.expectedStatuses(...)
  local bounds = setmetatable({}, Expected)
  for i = 1, select("#", ...) do
    local s = select(i, ...)
    local lo, hi
    if math.type(s) == "integer" then
      lo, hi = s, s
    elseif type(s) == "table" and math.type(s.min) == "integer" and math.type(s.max) == "integer" then
      lo, hi = s.min, s.max
    else
      error("http.expectedStatuses: argument " .. i .. " must be a status or { min = ..., max = ... }", 2)
    end
    bounds[#bounds + 1], bounds[#bounds + 2] = lo, hi
  end
  return bounds
end

-- http.setResponseCallback(http.expectedStatuses(...)) for every request of this state;
-- nil or json.null: no callback (no `expected_response` tag, no `http_req_failed`).
function http.setResponseCallback(cb)
  if cb == nil or cb == json.null or cb == false then
    native.set_response_callback(false)
  elseif getmetatable(cb) == Expected then
    native.set_response_callback(true, table.unpack(cb))
  else
    error("http.setResponseCallback: expected http.expectedStatuses(...) or nil", 2)
  end
end

---------------------------------------------------------------- k6/metrics
local function metric_type(kind)
  local function new(name, is_time)
    local id = native.metric_register(name, kind, is_time and true or false)
    local m = { name = name }
    -- Callable as m:add(v, tags) (Lua) and m.add(v, tags) (a JS line ported as is): a C
    -- function that tells the two apart by its first argument (modules/metrics.rs).
    m.add = native.metric_adder(id, m)
    return m
  end
  return setmetatable({ new = new }, { __call = function(_, ...) return new(...) end })
end

local metrics = {
  Counter = metric_type("counter"),
  Gauge = metric_type("gauge"),
  Rate = metric_type("rate"),
  Trend = metric_type("trend"),
}

---------------------------------------------------------------- k6/encoding, k6/crypto
-- Byte strings in and out: k6's ArrayBuffer results ("binary", b64decode) are Lua strings.
local encoding = {
  b64encode = function(data, variant) return native.b64encode(data, variant) end,
  b64decode = function(data, variant) return native.b64decode(data, variant) end,
}

local crypto = {
  hmac = function(alg, secret, data, enc) return native.hmac(alg, secret, data, enc) end,
  randomBytes = native.random_bytes,
}
for _, alg in ipairs { "md5", "sha1", "sha256", "sha384", "sha512", "sha512_256" } do
  crypto[alg] = function(data, enc) return native.hash(alg, data, enc) end
end
-- createHash / createHMAC: update(data) any number of times, then digest(encoding). Both
-- h:update(x) and h.update(x) (a JS line ported as is) work.
local function hasher(finish)
  local parts, h = {}, {}
  h.update = function(a, b)
    parts[#parts + 1] = tostring(a == h and b or a)
    return h
  end
  h.digest = function(a, b)
    local enc = a == h and b or a
    return finish(table.concat(parts), enc)
  end
  return h
end
function crypto.createHash(alg)
  native.hash(alg, "") -- an unknown algorithm fails here, as in k6
  return hasher(function(data, enc) return native.hash(alg, data, enc) end)
end
function crypto.createHMAC(alg, secret)
  native.hmac(alg, secret, "")
  return hasher(function(data, enc) return native.hmac(alg, secret, data, enc) end)
end

---------------------------------------------------------------- k6/execution
local function live(getter)
  return setmetatable({}, { __index = function(_, k) return getter(k) end })
end

local execution = {
  vu = live(native.exec_vu),
  scenario = live(native.exec_scenario),
  instance = live(native.exec_instance),
  test = {
    abort = function(msg)
      error({ __abort = msg == nil and "test aborted" or tostring(msg) }, 2)
    end,
  },
}

---------------------------------------------------------------- console
local function log(level)
  return function(...)
    local parts = pack(...)
    for i = 1, parts.n do
      local v = parts[i]
      parts[i] = type(v) == "table" and (pcall(json.encode, v) and json.encode(v) or tostring(v)) or tostring(v)
    end
    native.log(level, table.concat(parts, " ", 1, parts.n))
  end
end
local console = { log = log("info"), info = log("info"), debug = log("debug"), warn = log("warn"), error = log("error") }

---------------------------------------------------------------- modules and globals
package.preload["k6"] = function() return k6 end
package.preload["k6/http"] = function() return http end
package.preload["k6/metrics"] = function() return metrics end
package.preload["k6/execution"] = function() return execution end
package.preload["k6/crypto"] = function() return crypto end
package.preload["k6/encoding"] = function() return encoding end
package.preload["json"] = function() return json end
-- engine extensions (not k6): metric totals for integrity checks in teardown().
package.preload["engine"] = function() return { metric = native.metric_value } end

math.random = native.random
math.randomseed = native.random_seed

sleep, check, group, fail = k6.sleep, k6.check, k6.group, k6.fail
Counter, Gauge, Rate, Trend = metrics.Counter, metrics.Gauge, metrics.Rate, metrics.Trend
_G.http, _G.json, _G.console = http, json, console
JSON = { stringify = json.encode, parse = json.decode }
Date = { now = native.now_ms }
open = native.open

-- __ENV: a scenario's `env` overrides the run's environment for that scenario's VUs.
function __wrap_env(base)
  local scenario_env = native.scenario_env
  return setmetatable({}, {
    __index = function(_, k)
      local v = scenario_env(k)
      if v ~= nil then return v end
      return base[k]
    end,
    __newindex = base,
    __pairs = function()
      local merged = {}
      for k, v in pairs(base) do merged[k] = v end
      for k, v in pairs(native.scenario_env_all() or {}) do merged[k] = v end
      return next, merged, nil
    end,
  })
end

-- __VU and __ITER belong to the VU that is running, so they are looked up, not stored
-- (modules/execution.rs).
setmetatable(_G, { __index = native.globals_index })
