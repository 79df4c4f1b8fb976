-- Runs Argo CD health checks (health.lua) the way Argo CD does, on Debian's Lua 5.1 (hack/fetch-lua.sh).
--
-- Usage: lua argocd_harness.lua CASES [--coverage]
--   CASES: a Lua chunk returning { {id=..., script=<path>, obj=<table>}, ... }
-- Prints one JSON object per case and line: {"id": ..., "status": ..., "message": ...} or {"id": ..., "error": ...};
-- with --coverage, then one line per script: {"script": ..., "lines": "<the script's lines that ran, comma-separated>"}.
--
-- What is mirrored from Argo CD (util/lua/lua.go, gopher-lua with SkipOpenLibs):
-- - each evaluation starts from a fresh global environment holding `obj` and only the libraries Argo CD opens for a
--   custom check: package (require), base, table, and a safe os with time and date. No string, math, io or debug
--   library, and strings have no methods (gopher-lua sets the string metatable only when it opens the string library);
-- - the chunk's return value must be a table (or nil) whose status is one of Argo CD's health codes.
-- Not mirrored: gopher-lua's own quirks, and the one-second time limit.

local VALID = { Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true, Unknown = true }

local function json_string(s)
  s = string.gsub(tostring(s), '[%c"\\]', function(ch)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    return named[ch] or string.format("\\u%04x", string.byte(ch))
  end)
  return '"' .. s .. '"'
end

local function emit(fields)
  local parts = {}
  for _, key in ipairs({ "id", "status", "message", "error", "script", "lines" }) do
    if fields[key] ~= nil then
      table.insert(parts, json_string(key) .. ": " .. json_string(fields[key]))
    end
  end
  io.write("{" .. table.concat(parts, ", ") .. "}\n")
end

local BASE = {
  "assert", "collectgarbage", "dofile", "error", "getfenv", "getmetatable", "ipairs", "load", "loadfile", "loadstring",
  "next", "pairs", "pcall", "print", "rawequal", "rawget", "rawset", "select", "setfenv", "setmetatable", "tonumber",
  "tostring", "type", "unpack", "xpcall", "_VERSION",
}

local function sandbox(object)
  local env = {}
  for _, name in ipairs(BASE) do
    env[name] = _G[name]
  end
  env._G = env
  env.table = {
    concat = table.concat, insert = table.insert, maxn = table.maxn, remove = table.remove, sort = table.sort,
    getn = table.getn,
  }
  local safe_os = { time = os.time, date = os.date }
  env.os = safe_os
  env.require = function(name)
    if name == "os" then
      return safe_os
    end
    error("module '" .. tostring(name) .. "' not found (Argo CD preloads only os)", 2)
  end
  env.obj = object
  return env
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local cases = assert(loadfile(arg[1]))()
local coverage = arg[2] == "--coverage"
local covered = {}  -- source ("@" .. path) -> set of lines that ran
if coverage then
  debug.sethook(function(_, line)
    local source = debug.getinfo(2, "S").source
    if covered[source] then
      covered[source][line] = true
    end
  end, "l")
end
local string_meta = getmetatable("")
local scripts = {}
for _, case in ipairs(cases) do
  covered["@" .. case.script] = covered["@" .. case.script] or {}
  scripts[case.script] = scripts[case.script] or read(case.script)
  local chunk, err = loadstring(scripts[case.script], "@" .. case.script)
  if chunk == nil then
    emit({ id = case.id, error = "compile: " .. err })
  else
    setfenv(chunk, sandbox(case.obj))
    local index = string_meta.__index
    string_meta.__index = nil
    local ok, result = pcall(chunk)
    string_meta.__index = index
    if not ok then
      emit({ id = case.id, error = "run: " .. tostring(result) })
    elseif result == nil then
      emit({ id = case.id, status = "", message = "" })
    elseif type(result) ~= "table" then
      emit({ id = case.id, error = "expect table output from Lua script, not " .. type(result) })
    elseif not VALID[result.status] then
      emit({ id = case.id, error = "Lua returned an invalid health status: " .. tostring(result.status) })
    else
      emit({ id = case.id, status = result.status, message = result.message or "" })
    end
  end
end
debug.sethook()
if coverage then
  for source, lines in pairs(covered) do
    local sorted = {}
    for line in pairs(lines) do
      table.insert(sorted, line)
    end
    table.sort(sorted)
    emit({ script = string.sub(source, 2), lines = table.concat(sorted, ",") })
  end
end
